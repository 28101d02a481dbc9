package dev.seqscore.offline;

import dev.seqscore.events.InputRecord;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Timestamps;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.core.fs.Path;
import org.apache.flink.util.Collector;

/**
 * Reads a history file (any Flink file system: a local path, file://, s3://, hdfs://) with the backtest's readers and
 * cleaning contract, one reader for the whole file (line numbers and headers stay whole), and emits each valid row as
 * the {@link InputRecord} the backtest feeds the job: origin (file name, partition 0, line number). The file's history
 * must end before T: a valid row at or after T fails the run at once, naming the row. Memory: one line at a time.
 *
 * <p>A flat map over one trigger element rather than a source: with a single reader a source gives nothing more.
 */
final class FileHistory extends RichFlatMapFunction<String, InputRecord> {
    private static final long serialVersionUID = 1L;

    static final String ROWS = "bootstrap-file-rows";
    static final String REJECTED = "bootstrap-file-rows-rejected";

    private final String file;
    private final EventFileReader.Format format;
    private final long untilMs;
    private transient LongCounter rows;
    private transient LongCounter rejected;

    FileHistory(String file, EventFileReader.Format format, long untilMs) {
        this.file = file;
        this.format = format;
        this.untilMs = untilMs;
    }

    @Override
    public void open(OpenContext ctx) {
        rows = new LongCounter();
        rejected = new LongCounter();
        getRuntimeContext().addAccumulator(ROWS, rows);
        getRuntimeContext().addAccumulator(REJECTED, rejected);
    }

    static EventFileReader open(String file, EventFileReader.Format format) throws IOException {
        Path p = new Path(file);
        Reader in = new InputStreamReader(p.getFileSystem().open(p), StandardCharsets.UTF_8);
        try {
            return EventFileReader.of(in, format, p.getName());
        } catch (IOException | RuntimeException e) {
            in.close();
            throw e;
        }
    }

    @Override
    public void flatMap(String trigger, Collector<InputRecord> out) throws IOException {
        String source = new Path(file).getName();
        long valid = 0;
        try (EventFileReader reader = open(file, format)) {
            while (reader.hasNext()) {
                FileRecord r = reader.next();
                rows.add(1);
                if (!r.isValid()) {
                    rejected.add(1);
                    continue;
                }
                long t = r.event().getEventTime().toEpochMilli();
                if (t >= untilMs) {
                    throw new ConfigException("the history ends after --until " + Timestamps.format(untilMs)
                            + ": line " + r.lineNumber() + " of " + file + " is at " + Timestamps.format(t)
                            + ". The history must be what came before T, and the job reads Kafka from T on; give a "
                            + "later --until, or cut the file at T");
                }
                valid++;
                out.collect(InputRecord.decoded(r.event(), source, 0, r.lineNumber(), null));
            }
        }
        if (valid == 0) {
            throw new ConfigException("empty history: " + file + " has no valid " + format.cliName() + " row ("
                    + rows.getLocalValue() + " rows read); check --format");
        }
    }

    /** What a first pass over the file finds: valid rows and the newest event time among them. */
    record Extent(long rows, long valid, long newestMs) {}

    static Extent extent(String file, EventFileReader.Format format) throws IOException {
        long rows = 0;
        long valid = 0;
        long newest = Long.MIN_VALUE;
        try (EventFileReader reader = open(file, format)) {
            while (reader.hasNext()) {
                FileRecord r = reader.next();
                rows++;
                if (r.isValid()) {
                    valid++;
                    newest = Math.max(newest, r.event().getEventTime().toEpochMilli());
                }
            }
        }
        return new Extent(rows, valid, newest);
    }
}
