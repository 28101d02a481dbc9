package dev.seqscore.events;

import java.io.BufferedReader;
import java.io.Closeable;
import java.io.IOException;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.time.format.ResolverStyle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.seqscore.avro.ClickEvent;

/**
 * Reads a clickstream data file line by line and maps every data line onto the canonical {@link ClickEvent} of
 * {@code docs/feature-contract.md}, or says why it cannot. It feeds replay into Kafka, backtests and tests from the
 * real public datasets and from canonical files, without loading the whole file.
 *
 * <p>Formats ({@link Format}):
 * <ul>
 *   <li>{@code taobao}: no header; {@code user_id,item_id,category_id,behavior_type,timestamp_seconds};
 *       {@code pv→view, cart, fav, buy}; time = seconds × 1000.</li>
 *   <li>{@code rees46}: header; {@code event_time} "YYYY-MM-DD HH:MM:SS UTC", {@code event_type}
 *       {@code view, cart, purchase→buy, remove_from_cart}, {@code product_id→item_id}, {@code category_id},
 *       {@code price}, {@code user_id}, {@code user_session→session_id}. Columns are found by header name.</li>
 *   <li>{@code canonical}: CSV with header {@code user_id,event_type,item_id,category_id,event_time,price,session_id}
 *       (epoch ms; an empty cell is null) or JSONL with the same keys, told apart by the extension
 *       ({@code .jsonl}/{@code .json} vs {@code .csv}) or else by whether the first non-blank line starts with
 *       <code>{</code>. {@code event_type} is passed through unchecked: the job validates it against the model's
 *       vocabulary, which this reader does not know.</li>
 * </ul>
 *
 * <p>Every data line yields one {@link FileRecord}; blank lines carry no event and are skipped (line numbers stay
 * physical). A header that lacks a required column fails {@link #open} instead, since then no line could be read.
 * Not thread-safe; close it (or the {@link #stream()}) to release the file.
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

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final DateTimeFormatter REES46_TIME =
            DateTimeFormatter.ofPattern("uuuu-MM-dd HH:mm:ss 'UTC'", Locale.ROOT).withResolverStyle(ResolverStyle.STRICT);

    private static final Map<String, String> TAOBAO_TYPES = Map.of(
            "pv", "view", "cart", "cart", "fav", "fav", "buy", "buy");
    private static final Map<String, String> REES46_TYPES = Map.of(
            "view", "view", "cart", "cart", "purchase", "buy", "remove_from_cart", "remove_from_cart");

    private static final List<String> REES46_REQUIRED = List.of(
            "event_time", "event_type", "product_id", "category_id", "price", "user_id", "user_session");
    private static final List<String> CANONICAL_REQUIRED = List.of("user_id", "event_type", "item_id", "event_time");

    /** Turns one non-blank data line into its record. */
    private interface LineParser {
        FileRecord parse(long lineNumber, String line);
    }

    private final BufferedReader in;
    private final Format format;
    private final LineParser parser;
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
        String firstLine = readNonBlank();
        if (firstLine != null) {
            firstLine = stripBom(firstLine);
        }
        switch (format) {
            case TAOBAO -> {
                json = false;
                keepPending(firstLine);
                parser = EventFileReader::parseTaobao;
            }
            case REES46 -> {
                json = false;
                parser = firstLine == null ? null : rees46Parser(header(firstLine, REES46_REQUIRED, sourceName));
            }
            case CANONICAL -> {
                json = isJson(sourceName, firstLine);
                if (json) {
                    keepPending(firstLine);
                    parser = EventFileReader::parseCanonicalJson;
                } else {
                    parser = firstLine == null
                            ? null : canonicalCsvParser(header(firstLine, CANONICAL_REQUIRED, sourceName));
                }
            }
            default -> throw new IllegalStateException("unhandled format " + format);
        }
        exhausted = parser == null;
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
        return parser.parse(number, line);
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

    private void keepPending(String line) {
        pendingLine = line;
        pendingLineNumber = lineNumber;
    }

    private static String stripBom(String line) {
        // Spreadsheet exports often start with a UTF-8 byte order mark, which would glue itself to the first cell.
        return line.startsWith("\uFEFF") ? line.substring(1) : line;
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

    private static Map<String, Integer> header(String line, List<String> required, String sourceName)
            throws IOException {
        List<String> names;
        try {
            names = splitCsv(line);
        } catch (IllegalArgumentException e) {
            throw new IOException(sourceName + ": unreadable header: " + e.getMessage());
        }
        Map<String, Integer> index = new HashMap<>();
        for (int i = 0; i < names.size(); i++) {
            index.putIfAbsent(names.get(i).trim().toLowerCase(Locale.ROOT), i);
        }
        List<String> missing = required.stream().filter(c -> !index.containsKey(c)).toList();
        if (!missing.isEmpty()) {
            throw new IOException(sourceName + ": header lacks column(s) " + missing + "; found " + names
                    + "; expected at least " + required);
        }
        index.put("", names.size()); // the header's width, for the column-count check
        return index;
    }

    // ---------------------------------------------------------------- taobao

    private static FileRecord parseTaobao(long n, String line) {
        List<String> c;
        try {
            c = cells(line, 5);
        } catch (BadCell e) {
            return FileRecord.rejected(n, line, null, e.kind, e.getMessage());
        }
        String rawTs = c.get(4).trim();
        String userId = c.get(0).trim();
        String itemId = c.get(1).trim();
        String rawType = c.get(3).trim();
        FileRecord bad = checkIds(n, line, rawTs, userId, itemId);
        if (bad != null) {
            return bad;
        }
        String type = TAOBAO_TYPES.get(rawType);
        if (type == null) {
            return unknownType(n, line, rawTs, rawType);
        }
        long seconds;
        try {
            seconds = parseEpoch(rawTs);
        } catch (BadTimestamp e) {
            return FileRecord.rejected(n, line, rawTs, e.kind, e.getMessage());
        }
        long millis;
        try {
            millis = Math.multiplyExact(seconds, 1000L);
        } catch (ArithmeticException e) {
            return FileRecord.rejected(n, line, rawTs, "timestamp_out_of_range", "timestamp out of range '" + rawTs + "'");
        }
        return FileRecord.valid(n, line, rawTs, event(userId, type, itemId, c.get(2).trim(), millis, null, null));
    }

    // ---------------------------------------------------------------- rees46

    private static LineParser rees46Parser(Map<String, Integer> h) {
        int width = h.get("");
        int time = h.get("event_time");
        int type = h.get("event_type");
        int product = h.get("product_id");
        int category = h.get("category_id");
        int price = h.get("price");
        int user = h.get("user_id");
        int session = h.get("user_session");
        return (n, line) -> {
            List<String> c;
            try {
                c = cells(line, width);
            } catch (BadCell e) {
                return FileRecord.rejected(n, line, null, e.kind, e.getMessage());
            }
            String rawTs = c.get(time).trim();
            String userId = c.get(user).trim();
            String itemId = c.get(product).trim();
            FileRecord bad = checkIds(n, line, rawTs, userId, itemId);
            if (bad != null) {
                return bad;
            }
            String rawType = c.get(type).trim();
            String mapped = REES46_TYPES.get(rawType);
            if (mapped == null) {
                return unknownType(n, line, rawTs, rawType);
            }
            if (rawTs.isEmpty()) {
                return FileRecord.rejected(n, line, rawTs, "empty_timestamp", "empty event_time");
            }
            long millis;
            try {
                millis = LocalDateTime.parse(rawTs, REES46_TIME).toInstant(ZoneOffset.UTC).toEpochMilli();
            } catch (DateTimeParseException e) {
                return FileRecord.rejected(n, line, rawTs, "bad_timestamp",
                        "unparseable timestamp '" + rawTs + "', expected YYYY-MM-DD HH:MM:SS UTC");
            }
            Double p;
            try {
                p = parsePrice(c.get(price).trim());
            } catch (BadCell e) {
                return FileRecord.rejected(n, line, rawTs, e.kind, e.getMessage());
            }
            return FileRecord.valid(n, line, rawTs, event(userId, mapped, itemId, c.get(category).trim(), millis, p,
                    emptyToNull(c.get(session).trim())));
        };
    }

    // ---------------------------------------------------------------- canonical

    private static LineParser canonicalCsvParser(Map<String, Integer> h) {
        int width = h.get("");
        int user = h.get("user_id");
        int type = h.get("event_type");
        int item = h.get("item_id");
        int time = h.get("event_time");
        Integer category = h.get("category_id");
        Integer price = h.get("price");
        Integer session = h.get("session_id");
        return (n, line) -> {
            List<String> c;
            try {
                c = cells(line, width);
            } catch (BadCell e) {
                return FileRecord.rejected(n, line, null, e.kind, e.getMessage());
            }
            String rawTs = c.get(time).trim();
            String userId = c.get(user).trim();
            String itemId = c.get(item).trim();
            FileRecord bad = checkIds(n, line, rawTs, userId, itemId);
            if (bad != null) {
                return bad;
            }
            String eventType = c.get(type).trim();
            if (eventType.isEmpty()) {
                return FileRecord.rejected(n, line, rawTs, "empty_event_type", "empty event_type");
            }
            long millis;
            try {
                millis = parseEpoch(rawTs);
            } catch (BadTimestamp e) {
                return FileRecord.rejected(n, line, rawTs, e.kind, e.getMessage());
            }
            Double p;
            try {
                p = price == null ? null : parsePrice(c.get(price).trim());
            } catch (BadCell e) {
                return FileRecord.rejected(n, line, rawTs, e.kind, e.getMessage());
            }
            String categoryId = category == null ? "" : c.get(category).trim();
            String sessionId = session == null ? null : emptyToNull(c.get(session).trim());
            return FileRecord.valid(n, line, rawTs, event(userId, eventType, itemId, categoryId, millis, p, sessionId));
        };
    }

    private static FileRecord parseCanonicalJson(long n, String line) {
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            return FileRecord.rejected(n, line, null, "invalid_json", "invalid JSON: " + e.getOriginalMessage());
        }
        JsonNode t = node == null ? null : node.get("event_time");
        String rawTs = t == null || t.isNull() ? null : t.asText();
        ClickEvent e;
        try {
            e = ClickEventJson.fromJson(node);
        } catch (ClickEventJson.InvalidClickEventException ex) {
            String kind = ex.field() == null ? "invalid_json" : "invalid_" + ex.field();
            return FileRecord.rejected(n, line, rawTs, kind, ex.getMessage());
        }
        FileRecord bad = checkIds(n, line, rawTs, e.getUserId().trim(), e.getItemId().trim());
        if (bad != null) {
            return bad;
        }
        if (e.getEventType().isBlank()) {
            return FileRecord.rejected(n, line, rawTs, "empty_event_type", "empty event_type");
        }
        if (e.getEventTime().toEpochMilli() < 0) {
            return FileRecord.rejected(n, line, rawTs, "negative_timestamp", "negative timestamp '" + rawTs + "'");
        }
        if (e.getPrice() != null && !validPrice(e.getPrice())) {
            return FileRecord.rejected(n, line, rawTs, "invalid_price", "invalid price '" + e.getPrice() + "'");
        }
        return FileRecord.valid(n, line, rawTs, e);
    }

    // ---------------------------------------------------------------- shared cell rules

    private static FileRecord checkIds(long n, String line, String rawTs, String userId, String itemId) {
        if (userId.isEmpty()) {
            return FileRecord.rejected(n, line, rawTs, "empty_user_id", "empty user_id");
        }
        if (itemId.isEmpty()) {
            return FileRecord.rejected(n, line, rawTs, "empty_item_id", "empty item_id");
        }
        return null;
    }

    private static FileRecord unknownType(long n, String line, String rawTs, String rawType) {
        return FileRecord.rejected(n, line, rawTs, "unknown_event_type", "unknown event type '" + rawType + "'");
    }

    /** A time cell that is not a non-negative integer; carries the rejection kind. */
    private static final class BadTimestamp extends Exception {
        private static final long serialVersionUID = 1L;
        final String kind;

        BadTimestamp(String kind, String message) {
            super(message, null, false, false);
            this.kind = kind;
        }
    }

    /** A price cell that is not a finite, non-negative number; carries the rejection kind. */
    /** The line's CSV cells, or why it is not a row of {@code width} cells. */
    private static List<String> cells(String line, int width) throws BadCell {
        List<String> c;
        try {
            c = splitCsv(line);
        } catch (IllegalArgumentException e) {
            throw new BadCell("unterminated_quote", e.getMessage());
        }
        if (c.size() != width) {
            throw new BadCell("wrong_column_count", "wrong column count: " + c.size() + ", expected " + width);
        }
        return c;
    }

    /** A cell or line that cannot be read, with a value-free kind for counting; thrown without a stack trace. */
    private static final class BadCell extends Exception {
        private static final long serialVersionUID = 1L;
        final String kind;

        BadCell(String kind, String message) {
            super(message, null, false, false);
            this.kind = kind;
        }
    }

    private static long parseEpoch(String raw) throws BadTimestamp {
        if (raw.isEmpty()) {
            throw new BadTimestamp("empty_timestamp", "empty timestamp");
        }
        boolean negative = raw.charAt(0) == '-';
        for (int i = negative ? 1 : 0; i < raw.length(); i++) {
            if (raw.charAt(i) < '0' || raw.charAt(i) > '9') {
                throw new BadTimestamp("non_numeric_timestamp", "non-numeric timestamp '" + raw + "'");
            }
        }
        if (negative) {
            throw new BadTimestamp(raw.length() == 1 ? "non_numeric_timestamp" : "negative_timestamp",
                    (raw.length() == 1 ? "non-numeric" : "negative") + " timestamp '" + raw + "'");
        }
        try {
            return Long.parseLong(raw);
        } catch (NumberFormatException e) {
            throw new BadTimestamp("timestamp_out_of_range", "timestamp out of range '" + raw + "'");
        }
    }

    private static Double parsePrice(String raw) throws BadCell {
        if (raw.isEmpty()) {
            return null;
        }
        double p;
        try {
            p = Double.parseDouble(raw);
        } catch (NumberFormatException e) {
            throw new BadCell("non_numeric_price", "non-numeric price '" + raw + "'");
        }
        if (!validPrice(p)) {
            throw new BadCell("invalid_price", "invalid price '" + raw + "'");
        }
        return p;
    }

    private static boolean validPrice(double p) {
        return Double.isFinite(p) && p >= 0;
    }

    private static String emptyToNull(String s) {
        return s.isEmpty() ? null : s;
    }

    private static ClickEvent event(String userId, String type, String itemId, String categoryId, long millis,
                                    Double price, String sessionId) {
        return ClickEvent.newBuilder()
                .setUserId(userId)
                .setEventType(type)
                .setItemId(itemId)
                .setCategoryId(categoryId)
                .setEventTime(Instant.ofEpochMilli(millis))
                .setPrice(price)
                .setSessionId(sessionId)
                .build();
    }

    /**
     * Splits one CSV line (RFC 4180 quoting: a quoted cell may hold commas and doubled quotes; cells do not span
     * lines, which none of the supported sources do).
     *
     * @throws IllegalArgumentException on an unterminated quote
     */
    static List<String> splitCsv(String line) {
        List<String> cells = new ArrayList<>();
        StringBuilder cell = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < line.length(); i++) {
            char ch = line.charAt(i);
            if (quoted) {
                if (ch == '"') {
                    if (i + 1 < line.length() && line.charAt(i + 1) == '"') {
                        cell.append('"');
                        i++;
                    } else {
                        quoted = false;
                    }
                } else {
                    cell.append(ch);
                }
            } else if (ch == ',') {
                cells.add(cell.toString());
                cell.setLength(0);
            } else if (ch == '"' && cell.length() == 0) {
                quoted = true;
            } else {
                cell.append(ch);
            }
        }
        if (quoted) {
            throw new IllegalArgumentException("unterminated quote");
        }
        cells.add(cell.toString());
        return cells;
    }
}
