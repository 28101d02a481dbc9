package dev.seqscore.offline.files;

import java.io.BufferedReader;
import java.io.Closeable;
import java.io.IOException;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.Locale;
import java.util.NoSuchElementException;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

import dev.seqscore.avro.ClickEvent;

/**
 * Reads a clickstream data file line by line and maps every data line onto the canonical {@link ClickEvent} of
 * {@code docs/feature-contract.md}, or says which cleaning rule drops it. It feeds replay into Kafka, backtests and
 * tests from the real public datasets and from canonical files, without loading the whole file.
 *
 * <p>This class opens the file, finds its layout and walks its lines; one {@link RowReader} per format maps the rows
 * ({@link TaobaoReader}, {@link Rees46Reader}, {@link CanonicalCsvReader}, {@link CanonicalJsonReader}), with the
 * shared cell rules in {@link CsvCells} and the field rules in {@link dev.seqscore.events.ClickRules}. Canonical files are CSV or JSONL,
 * told apart by the extension ({@code .jsonl}/{@code .json}/{@code .ndjson} vs {@code .csv}) or else by whether the
 * first non-blank line starts with <code>{</code>. Exact duplicates need the whole file: {@link DuplicateFilter}.
 *
 * <p>Every data line yields one {@link FileRecord}; blank lines carry no event and are skipped (line numbers stay
 * physical); a leading UTF-8 byte order mark is ignored. A header that lacks a required column fails {@link #open}
 * instead, since then no line could be read. Not thread-safe; close it (or the {@link #stream()}) to release the file.
 */
public final class EventFileReader implements Iterator<FileRecord>, Closeable {

    /** The layout of an input file. */
    public enum Format {
        TAOBAO, REES46, CANONICAL;

        /** The name used on command lines, e.g. {@code rees46}. */
        public String cliName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /**
         * Parses a command-line name, case-insensitively.
         *
         * @throws IllegalArgumentException naming the valid values
         */
        public static Format parse(String s) {
            if (s != null) {
                for (Format f : values()) {
                    if (f.name().equalsIgnoreCase(s.trim())) {
                        return f;
                    }
                }
            }
            throw new IllegalArgumentException("unknown format '" + s + "'; valid formats are "
                    + Arrays.stream(values()).map(Format::cliName).collect(Collectors.joining(", ")));
        }
    }

    private final BufferedReader in;
    private final Format format;
    private final RowReader rows;
    private final boolean json;
    private long lineNumber;
    /** A data line already read while sniffing the layout, returned before reading on. */
    private String pendingLine;
    private long pendingLineNumber;
    private FileRecord next;
    private boolean exhausted;

    private EventFileReader(BufferedReader in, Format format, String sourceName) throws IOException {
        this.in = in;
        this.format = format;
        String first = readNonBlank();
        if (first != null && first.startsWith("\uFEFF")) {
            // Spreadsheet exports often start with a byte order mark, which would glue itself to the first cell.
            first = first.substring(1);
        }
        json = format == Format.CANONICAL && isJson(sourceName, first);
        if (first == null) {
            rows = null;
        } else {
            rows = switch (format) {
                case TAOBAO -> keepPending(first, new TaobaoReader());
                case REES46 -> new Rees46Reader(first, sourceName);
                case CANONICAL -> json ? keepPending(first, new CanonicalJsonReader())
                        : new CanonicalCsvReader(first, sourceName);
            };
        }
        exhausted = rows == null;
    }

    /**
     * Opens a UTF-8 file. For {@code canonical}, the extension or else the content selects CSV or JSONL.
     *
     * @throws IOException if the file cannot be read or its header lacks a required column
     */
    public static EventFileReader open(Path file, Format format) throws IOException {
        BufferedReader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8);
        try {
            return new EventFileReader(reader, format, file.getFileName().toString());
        } catch (IOException | RuntimeException e) {
            reader.close();
            throw e;
        }
    }

    /**
     * Reads from any reader; {@code sourceName} is used like a file name (its extension selects canonical CSV or
     * JSONL) and in error messages.
     */
    public static EventFileReader of(Reader reader, Format format, String sourceName) throws IOException {
        BufferedReader buffered = reader instanceof BufferedReader b ? b : new BufferedReader(reader);
        return new EventFileReader(buffered, format, sourceName);
    }

    /** The file's records as a lazy stream; closing the stream closes the file. */
    public static Stream<FileRecord> lines(Path file, Format format) throws IOException {
        return open(file, format).stream();
    }

    /** The remaining records as a lazy, ordered stream that closes this reader when closed. */
    public Stream<FileRecord> stream() {
        return StreamSupport.stream(
                        Spliterators.spliteratorUnknownSize(this, Spliterator.ORDERED | Spliterator.NONNULL), false)
                .onClose(() -> {
                    try {
                        close();
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
    }

    public Format format() {
        return format;
    }

    /** True when the file is canonical JSONL rather than CSV. */
    public boolean isJson() {
        return json;
    }

    @Override
    public boolean hasNext() {
        if (next == null && !exhausted) {
            next = advance();
        }
        return next != null;
    }

    @Override
    public FileRecord next() {
        if (!hasNext()) {
            throw new NoSuchElementException();
        }
        FileRecord r = next;
        next = null;
        return r;
    }

    @Override
    public void close() throws IOException {
        exhausted = true;
        in.close();
    }

    private FileRecord advance() {
        String line;
        long number;
        if (pendingLine != null) {
            line = pendingLine;
            number = pendingLineNumber;
            pendingLine = null;
        } else {
            try {
                line = readNonBlank();
            } catch (IOException e) {
                throw new UncheckedIOException("reading line " + (lineNumber + 1), e);
            }
            number = lineNumber;
        }
        if (line == null) {
            exhausted = true;
            return null;
        }
        return rows.read(number, line);
    }

    private String readNonBlank() throws IOException {
        String line;
        do {
            line = in.readLine();
            if (line == null) {
                return null;
            }
            lineNumber++;
        } while (line.isBlank());
        return line;
    }

    private RowReader keepPending(String line, RowReader reader) {
        pendingLine = line;
        pendingLineNumber = lineNumber;
        return reader;
    }

    private static boolean isJson(String sourceName, String firstLine) {
        String name = sourceName == null ? "" : sourceName.toLowerCase(Locale.ROOT);
        if (name.endsWith(".jsonl") || name.endsWith(".json") || name.endsWith(".ndjson")) {
            return true;
        }
        if (name.endsWith(".csv")) {
            return false;
        }
        return firstLine != null && firstLine.stripLeading().startsWith("{");
    }
}
