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
import dev.seqscore.events.EventFileReader;
import dev.seqscore.events.EventFileReader.Format;
import dev.seqscore.events.FileRecord;

/**
 * {@code seqscore replay}: sends the events of a data file (Taobao, REES46 or canonical) to a Kafka topic as plain
 * Avro-binary {@link ClickEvent}s keyed by user id, the job's input format, optionally paced at a fixed rate. Rows the
 * reader rejects are counted by reason and skipped, so a replay of real data states exactly what it did not send.
 */
public final class Replay {

    /** A command-line mistake: the message names the flag; the caller prints usage and exits 2. */
    static final class UsageException extends Exception {
        private static final long serialVersionUID = 1L;

        UsageException(String message) {
            super(message);
        }
    }

    /** How records are keyed. */
    enum KeyBy {
        /** The user id, so that a user's events stay in one partition and in order. */
        USER_ID,
        /** No key: the producer spreads records over partitions. */
        NONE
    }

    /** Parsed flags. */
    record Options(Path input, Format format, String bootstrapServers, String topic, double rate, long limit,
                   boolean sortByTime, KeyBy key) {}

    static final String USAGE = """
            Usage: seqscore replay --input FILE --format taobao|rees46|canonical [options]

            Sends each valid row of FILE to Kafka as an Avro-binary ClickEvent; rejected rows are counted by reason.

              --input FILE               data file to read (required)
              --format F                 taobao, rees46 or canonical (required)
              --bootstrap-servers H:P    Kafka bootstrap servers (default: localhost:9092)
              --topic T                  topic to write to (default: clicks)
              --rate N                   events per second; 0 = as fast as possible (default: 0)
              --limit N                  send at most N events; 0 = all (default: 0)
              --sort-by-time true|false  send in event-time order, ties in file order; reads the whole file
                                         into memory first (default: true)
              --key user_id|none         record key (default: user_id)
              --help                     print this help and exit
            """;

    private static final long PROGRESS_EVERY = 10_000;

    private Replay() {}

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs the command; returns the process exit code (0 ok, 1 failure, 2 usage error). */
    static int run(String[] args, PrintStream out, PrintStream err) {
        for (String a : args) {
            if (a.equals("--help") || a.equals("-h")) {
                out.print(USAGE);
                return 0;
            }
        }
        Options options;
        try {
            options = parse(args);
        } catch (UsageException e) {
            err.println("replay: " + e.getMessage());
            err.println();
            err.print(USAGE);
            return 2;
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

    static Options parse(String[] args) throws UsageException {
        Map<String, String> flags = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String flag = args[i];
            String value;
            if (!flag.startsWith("--")) {
                throw new UsageException("unexpected argument '" + flag + "'");
            }
            int eq = flag.indexOf('=');
            if (eq > 0) {
                value = flag.substring(eq + 1);
                flag = flag.substring(0, eq);
            } else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
                value = args[++i];
            } else {
                throw new UsageException(flag + " needs a value");
            }
            if (!List.of("--input", "--format", "--bootstrap-servers", "--topic", "--rate", "--limit",
                    "--sort-by-time", "--key").contains(flag)) {
                throw new UsageException("unknown flag " + flag);
            }
            if (flags.put(flag, value) != null) {
                throw new UsageException(flag + " given twice");
            }
        }

        String input = flags.get("--input");
        if (input == null || input.isBlank()) {
            throw new UsageException("--input is required");
        }
        Path file = Path.of(input);
        if (!Files.isReadable(file)) {
            throw new UsageException("--input: cannot read '" + input + "'");
        }
        String formatName = flags.get("--format");
        if (formatName == null) {
            throw new UsageException("--format is required (taobao, rees46 or canonical)");
        }
        Format format;
        try {
            format = Format.parse(formatName);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--format: " + e.getMessage());
        }
        String bootstrap = flags.getOrDefault("--bootstrap-servers", "localhost:9092");
        if (bootstrap.isBlank()) {
            throw new UsageException("--bootstrap-servers must not be empty");
        }
        String topic = flags.getOrDefault("--topic", "clicks");
        if (topic.isBlank()) {
            throw new UsageException("--topic must not be empty");
        }
        double rate;
        try {
            rate = Double.parseDouble(flags.getOrDefault("--rate", "0"));
        } catch (NumberFormatException e) {
            throw new UsageException("--rate: '" + flags.get("--rate") + "' is not a number");
        }
        if (!(rate >= 0) || Double.isInfinite(rate)) {
            throw new UsageException("--rate: must be a finite number >= 0, got " + flags.get("--rate"));
        }
        long limit;
        try {
            limit = Long.parseLong(flags.getOrDefault("--limit", "0"));
        } catch (NumberFormatException e) {
            throw new UsageException("--limit: '" + flags.get("--limit") + "' is not an integer");
        }
        if (limit < 0) {
            throw new UsageException("--limit: must be >= 0, got " + limit);
        }
        String sort = flags.getOrDefault("--sort-by-time", "true");
        if (!sort.equals("true") && !sort.equals("false")) {
            throw new UsageException("--sort-by-time: '" + sort + "' is not true or false");
        }
        String key = flags.getOrDefault("--key", "user_id");
        KeyBy keyBy = switch (key) {
            case "user_id" -> KeyBy.USER_ID;
            case "none" -> KeyBy.NONE;
            default -> throw new UsageException("--key: '" + key + "' is not user_id or none");
        };
        return new Options(file, format, bootstrap, topic, rate, limit, Boolean.parseBoolean(sort), keyBy);
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
                producer.send(new ProducerRecord<>(o.topic(), key, ClickEventAvro.encode(e)), (meta, ex) -> {
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
