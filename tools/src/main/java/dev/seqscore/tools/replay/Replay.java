package dev.seqscore.tools.replay;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.EventFileReader.Format;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.options.CommandLine;
import dev.seqscore.job.JobConfig;
import dev.seqscore.registry.Framing;
import dev.seqscore.registry.RegistryEndpoint;
import dev.seqscore.registry.SubjectRegistration;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;

/**
 * {@code seqscore replay}: sends the events of a data file (Taobao, REES46 or canonical) to a Kafka topic as plain
 * Avro-binary {@link ClickEvent}s keyed by user id, the job's input format, optionally paced at a fixed rate. With
 * {@code --schema-registry} it registers the ClickEvent schema under {@code <topic>-value} first, as a
 * registry-aware serializer would, and frames every value with its id. Rows the reader rejects are counted by
 * reason and skipped, so a replay of real data states exactly what it did not send.
 */
public final class Replay {

    /** How records are keyed. */
    enum KeyBy {
        /** The user id, so that a user's events stay in one partition and in order. */
        USER_ID,
        /** No key: the producer spreads records over partitions. */
        NONE
    }

    /** Parsed flags. */
    record Options(Path input, Format format, String bootstrapServers, String topic, double rate, long limit,
                   boolean sortByTime, KeyBy key, RegistryEndpoint registry) {}

    static final Option<Path> INPUT = Option.of("input", "FILE", "", "data file to read (required)",
            t -> Path.of(t.trim()));
    public static final Option<Format> FORMAT = Option.of("format", "taobao|rees46|canonical", "",
            "the file's format (required)", Format::parse);
    static final Option<String> BOOTSTRAP_SERVERS = Option.of("bootstrap-servers", "H:P", "localhost:9092",
            "Kafka bootstrap servers", Replay::nonBlank);
    static final Option<String> TOPIC = Option.of("topic", "T", "clicks", "topic to write to", Replay::nonBlank);
    static final Option<Double> RATE = Option.of("rate", "N", "0", "events per second; 0 = as fast as possible",
            t -> {
                double r;
                try {
                    r = Double.parseDouble(t.trim());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("'" + t + "' is not a number");
                }
                if (!(r >= 0) || Double.isInfinite(r)) {
                    throw new IllegalArgumentException("must be a finite number >= 0, got " + t);
                }
                return r;
            });
    static final Option<Long> LIMIT = Option.of("limit", "N", "0", "send at most N events; 0 = all", t -> {
        long n;
        try {
            n = Long.parseLong(t.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + t + "' is not an integer");
        }
        if (n < 0) {
            throw new IllegalArgumentException("must be >= 0, got " + n);
        }
        return n;
    });
    static final Option<Boolean> SORT_BY_TIME = Option.bool("sort-by-time", "true",
            "send in event-time order, ties in file order; reads the whole file into memory first");
    static final Option<String> KEY = Option.oneOf("key", "user_id", "record key", "user_id", "none");
    public static final OptionSet OPTIONS = new OptionSet()
            .add(INPUT, FORMAT, BOOTSTRAP_SERVERS, TOPIC, RATE, LIMIT, SORT_BY_TIME, KEY,
                    JobConfig.SCHEMA_REGISTRY, JobConfig.SCHEMA_REGISTRY_PROPERTIES, OptionSet.HELP);

    static final String USAGE = OPTIONS.usage("bin/seqscore replay --input FILE --format taobao|rees46|canonical "
            + "[options]", "Sends each valid row of FILE to Kafka as an Avro-binary ClickEvent; rejected rows are "
            + "counted by reason.");

    private static final long PROGRESS_EVERY = 10_000;

    private Replay() {}

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs the command; returns the process exit code (0 ok, 1 failure, 2 usage error). */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        Options options;
        try {
            // USAGE ends with its line break; CommandLine prints the usage as a line.
            options = new CommandLine(OPTIONS, USAGE.stripTrailing()).errorPrefix("replay: ")
                    .parse(args, out, err, Replay::options);
        } catch (ConfigException e) {
            return CommandLine.USAGE_ERROR;
        }
        if (options == null) {
            return 0;
        }
        try {
            Summary summary = replay(options, out);
            out.println(summary.describe(options.topic()));
            return summary.failed() == 0 ? 0 : 1;
        } catch (IOException | RuntimeException e) {
            err.println("replay: " + e.getMessage());
            return 1;
        }
    }

    static Options parse(String[] args) {
        return options(OPTIONS.parse(args));
    }

    private static Options options(OptionValues v) {
        Path file = v.get(INPUT);
        if (file == null) {
            throw new ConfigException("--input is required");
        }
        if (!Files.isReadable(file)) {
            throw new ConfigException("--input: cannot read '" + file + "'");
        }
        if (v.get(FORMAT) == null) {
            throw new ConfigException("--format is required (taobao, rees46 or canonical)");
        }
        KeyBy keyBy = v.get(KEY).equals("none") ? KeyBy.NONE : KeyBy.USER_ID;
        RegistryEndpoint registry = RegistryEndpoint.from(v.get(JobConfig.SCHEMA_REGISTRY),
                v.get(JobConfig.SCHEMA_REGISTRY_PROPERTIES), System.getenv());
        return new Options(file, v.get(FORMAT), v.get(BOOTSTRAP_SERVERS), v.get(TOPIC), v.get(RATE), v.get(LIMIT),
                v.get(SORT_BY_TIME), keyBy, registry);
    }

    private static String nonBlank(String t) {
        if (t.isBlank()) {
            throw new IllegalArgumentException("must not be empty");
        }
        return t.trim();
    }

    /** What a replay did. */
    record Summary(long sent, long failed, Map<String, Long> rejectedByKind, Map<String, String> exampleByKind,
                   long elapsedNanos, String firstFailure) {

        long rejected() {
            return rejectedByKind.values().stream().mapToLong(Long::longValue).sum();
        }

        String describe(String topic) {
            double seconds = elapsedNanos / 1e9;
            StringBuilder sb = new StringBuilder();
            sb.append(String.format("replay: sent %d events to %s in %.1f s (%.0f/s); rejected %d rows",
                    sent, topic, seconds, seconds > 0 ? sent / seconds : 0.0, rejected()));
            rejectedByKind.forEach((kind, n) -> sb.append(String.format("%n  %-24s %d  (e.g. %s)",
                    kind, n, exampleByKind.get(kind))));
            if (failed > 0) {
                sb.append(String.format("%nreplay: %d sends FAILED, first: %s", failed, firstFailure));
            }
            return sb.toString();
        }
    }

    static Summary replay(Options o, PrintStream out) throws IOException {
        Map<String, Long> rejected = new TreeMap<>();
        Map<String, String> examples = new TreeMap<>();
        long start = System.nanoTime();
        AtomicLong failed = new AtomicLong();
        AtomicReference<String> firstFailure = new AtomicReference<>();
        long sent = 0;
        Integer schemaId = null;
        if (o.registry() != null) {
            schemaId = SubjectRegistration.register(o.registry(), o.topic(), ClickEvent.getClassSchema());
            out.printf("replay: ClickEvent is schema id %d under %s at %s; values are registry-framed%n", schemaId,
                    SubjectRegistration.valueSubject(o.topic()), o.registry().url());
        }

        try (Stream<FileRecord> lines = EventFileReader.lines(o.input(), o.format());
             KafkaProducer<byte[], byte[]> producer = producer(o.bootstrapServers())) {
            Iterator<FileRecord> rows = lines.filter(r -> {
                if (!r.isValid()) {
                    rejected.merge(r.rejectionKind(), 1L, Long::sum);
                    examples.putIfAbsent(r.rejectionKind(), "line " + r.lineNumber() + ": " + r.rejection());
                }
                return r.isValid();
            }).iterator();
            if (o.sortByTime()) {
                // Sources like the Taobao sample are grouped by user, not by time; the job wants a live-like stream.
                List<FileRecord> all = new ArrayList<>();
                rows.forEachRemaining(all::add);
                all.sort(Comparator.comparing((FileRecord r) -> r.event().getEventTime())
                        .thenComparingLong(FileRecord::lineNumber));
                rows = all.iterator();
            }
            long pacingStart = System.nanoTime();
            long lastProgress = pacingStart;
            while (rows.hasNext() && (o.limit() == 0 || sent < o.limit())) {
                ClickEvent e = rows.next().event();
                if (o.rate() > 0) {
                    long due = pacingStart + (long) (sent * 1e9 / o.rate());
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        LockSupport.parkNanos(wait); // pacing to the requested rate, not synchronisation
                    }
                }
                byte[] key = o.key() == KeyBy.USER_ID ? e.getUserId().getBytes(StandardCharsets.UTF_8) : null;
                byte[] value = schemaId == null ? ClickEventAvro.encode(e) : Framing.frame(schemaId, ClickEventAvro.encode(e));
                producer.send(new ProducerRecord<>(o.topic(), key, value), (meta, ex) -> {
                    if (ex != null) {
                        failed.incrementAndGet();
                        firstFailure.compareAndSet(null, ex.toString());
                    }
                });
                sent++;
                long now = System.nanoTime();
                if (sent % PROGRESS_EVERY == 0 || now - lastProgress > 5_000_000_000L) {
                    out.printf("replay: sent %d (%.0f/s)%n", sent, sent / ((now - pacingStart) / 1e9));
                    lastProgress = now;
                }
            }
            producer.flush();
        }
        return new Summary(sent - failed.get(), failed.get(), rejected, examples, System.nanoTime() - start,
                firstFailure.get());
    }

    private static KafkaProducer<byte[], byte[]> producer(String bootstrapServers) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        // Idempotence keeps a user's events in order and unduplicated across the producer's own retries.
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "10");
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "seqscore-replay");
        // An unreachable broker should fail the replay within a minute rather than hang for the default 2 minutes+.
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "60000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }
}
