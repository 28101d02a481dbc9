package dev.seqscore.tools.demo;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.ClickEvent;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.Score;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.events.EventFileReader;
import dev.seqscore.events.FileRecord;
import dev.seqscore.job.AvroRecords;
import dev.seqscore.job.ConfigException;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.kafka.EmbeddedKafka;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.tools.sim.TrafficSimulator;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * {@code bin/seqscore demo}: the real job on embedded defaults. A real KRaft broker in this JVM, real time-ordered
 * Taobao clicks (or the simulator when the data is absent) streamed into it, the job on a local MiniCluster with
 * the Flink web UI, and a live summary read back from the output topics the way a dashboard would read them.
 */
public final class Demo {
    private static final String[] FLAGS = {
        "--data-dir DIR       where taobao/UserBehavior_timeordered_110k.csv is (default: $SEQSCORE_DATA_DIR, else ../shared/data)",
        "--source S           auto (the file if present, else the simulator), file or simulator (default: auto)",
        "--rate N             clicks per second streamed into Kafka (default: 1000)",
        "--duration D         stop after this long, e.g. 90s or 5m; 0 runs until Ctrl-C (default: 0)",
        "--kafka-port P       the embedded broker's port for outside clients (default: 9092; random if taken)",
        "--web-port P         Flink web UI port (default: 8081)",
        "--parallelism N      job parallelism (default: 2)",
        "--bad-every N        inject one malformed record every N clicks to show the dead-letter path; 0 = never (default: 500)",
        "--report-every D     how often the summary prints (default: 5s)",
        "--help               this help",
        "Other options go to the job (see bin/seqscore job --help), e.g. --model DIR, --threshold.purchase_30m 0.6"
    };

    private final Map<String, String> own = new LinkedHashMap<>();
    private final List<String> jobArgs = new ArrayList<>();

    private final AtomicLong produced = new AtomicLong();
    private final AtomicLong injectedBad = new AtomicLong();
    private final AtomicBoolean stopping = new AtomicBoolean();

    public static void main(String[] args) throws Exception {
        Demo demo = new Demo();
        try {
            demo.parse(args);
        } catch (IllegalArgumentException | ConfigException e) {
            System.err.println("error: " + e.getMessage());
            System.err.println(usage());
            System.exit(2);
        }
        if (demo.own.containsKey("help")) {
            System.out.println(usage());
            return;
        }
        demo.run();
    }

    static String usage() {
        return "Usage: bin/seqscore demo [options]\n\n  " + String.join("\n  ", FLAGS) + "\n";
    }

    private void parse(String[] args) {
        List<String> names = List.of("data-dir", "source", "rate", "duration", "kafka-port", "web-port",
                "parallelism", "bad-every", "report-every");
        jobArgs.addAll(JobConfig.splitOwnOptions(args, names, own));
        positive("rate", "1000");
        positive("parallelism", "2");
        nonNegative("bad-every", "500");
        port("kafka-port", "9092");
        port("web-port", "8081");
        JobConfig.parseDuration(get("duration", "0"));
        JobConfig.parseDuration(get("report-every", "5s"));
        String source = get("source", "auto");
        if (!List.of("auto", "file", "simulator").contains(source)) {
            throw new IllegalArgumentException("--source: '" + source + "' is not one of auto, file, simulator");
        }
        JobConfig.parse(jobArgs.toArray(new String[0]));
    }

    private String get(String name, String def) {
        return own.getOrDefault(name, def);
    }

    private long number(String name, String def) {
        try {
            return Long.parseLong(get(name, def).trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + ": '" + get(name, def) + "' is not an integer");
        }
    }

    private void positive(String name, String def) {
        if (number(name, def) <= 0) {
            throw new IllegalArgumentException("--" + name + " must be positive");
        }
    }

    private void nonNegative(String name, String def) {
        if (number(name, def) < 0) {
            throw new IllegalArgumentException("--" + name + " must not be negative");
        }
    }

    private void port(String name, String def) {
        long p = number(name, def);
        if (p < 1 || p > 65535) {
            throw new IllegalArgumentException("--" + name + " must be a port in 1..65535");
        }
    }

    private void run() throws Exception {
        Path dataDir = Path.of(own.getOrDefault("data-dir",
                System.getenv().getOrDefault("SEQSCORE_DATA_DIR", "../shared/data")));
        Path file = dataDir.resolve("taobao/UserBehavior_timeordered_110k.csv");
        String source = get("source", "auto");
        boolean useFile = source.equals("file") || (source.equals("auto") && Files.isReadable(file));
        if (source.equals("file") && !Files.isReadable(file)) {
            throw new IllegalArgumentException("--source file: cannot read " + file);
        }

        say("starting an embedded Kafka broker (KRaft)...");
        int kafkaPort = (int) number("kafka-port", "9092");
        EmbeddedKafka kafka = portFree(kafkaPort) ? EmbeddedKafka.start(kafkaPort) : EmbeddedKafka.start();
        String bootstrap = kafka.bootstrapServers();
        kafka.createTopics(4, "clicks", "alerts", "scores", "clicks-dlq");
        say("broker at " + bootstrap + "; topics clicks (4 partitions), alerts, scores, clicks-dlq");

        List<String> args = new ArrayList<>(List.of(
                "--bootstrap-servers", bootstrap, "--input-topic", "clicks", "--alerts-topic", "alerts",
                "--scores-topic", "scores", "--dead-letter-topic", "clicks-dlq", "--starting-offsets", "earliest",
                "--checkpoint-interval", "5s", "--parallelism", get("parallelism", "2")));
        args.addAll(jobArgs);
        JobConfig config = JobConfig.parse(args.toArray(new String[0]));
        ModelBundle bundle = SeqScoreJob.loadModel(config);
        say("model " + bundle.spec().modelVersion() + " (" + bundle.onnxPath() + "), window "
                + bundle.spec().maxEvents() + " events / " + Duration.ofMillis(bundle.spec().horizonMs()));

        Configuration conf = new Configuration();
        conf.set(RestOptions.PORT, (int) number("web-port", "8081"));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironmentWithWebUI(conf);
        SeqScoreJob.assemble(env, config, bundle);
        JobClient job = env.executeAsync("SeqScore demo");
        say("job " + job.getJobID() + " running; Flink web UI: http://localhost:" + number("web-port", "8081"));

        Iterator<ClickEvent> clicks = useFile ? fileThenSimulator(file) : simulator(Instant.parse("2017-11-26T01:00:00Z"));
        say("streaming " + (useFile ? "real Taobao clicks from " + file + " (then simulated ones)"
                : "simulated clicks (no data file at " + file + ")") + " at " + get("rate", "1000") + "/s");
        Thread producer = new Thread(() -> produce(bootstrap, clicks), "demo-producer");
        producer.setDaemon(true);
        producer.start();

        Summary summary = new Summary(bootstrap, bundle);
        AtomicBoolean shutDown = new AtomicBoolean();
        Runnable shutdown = () -> {
            if (!shutDown.compareAndSet(false, true)) {
                return;
            }
            stopping.set(true);
            System.out.println("\ndemo: stopping: cancelling the job, then the broker...");
            try {
                job.cancel().get(30, java.util.concurrent.TimeUnit.SECONDS);
            } catch (Exception e) {
                // Already finished, or the cluster is going down with the JVM: nothing left to cancel.
            }
            kafka.close();
        };
        Runtime.getRuntime().addShutdownHook(new Thread(shutdown, "demo-shutdown"));

        Duration duration = JobConfig.parseDuration(get("duration", "0"));
        Duration every = JobConfig.parseDuration(get("report-every", "5s"));
        long start = System.nanoTime();
        long nextReport = start + every.toNanos();
        while (!stopping.get()) {
            summary.poll(Duration.ofMillis(200));
            long now = System.nanoTime();
            if (now >= nextReport) {
                System.out.println(summary.render(Duration.ofNanos(now - start), produced.get(), injectedBad.get()));
                nextReport += every.toNanos();
            }
            if (!duration.isZero() && now - start >= duration.toNanos()) {
                say("--duration " + duration + " reached");
                summary.close();
                shutdown.run();
                System.exit(0);
            }
        }
    }

    private static boolean portFree(int port) {
        try (ServerSocket s = new ServerSocket(port)) {
            return true;
        } catch (IOException e) {
            System.out.println("demo: port " + port + " is taken; the broker gets a random port instead");
            return false;
        }
    }

    private Iterator<ClickEvent> fileThenSimulator(Path file) throws IOException {
        List<ClickEvent> events = new ArrayList<>();
        try (Stream<FileRecord> lines = EventFileReader.lines(file, EventFileReader.Format.TAOBAO)) {
            lines.filter(FileRecord::isValid).forEach(r -> events.add(r.event()));
        }
        // The file is time-ordered already; a stable sort makes sure of it without reordering equal times.
        events.sort(Comparator.comparing(ClickEvent::getEventTime));
        Instant after = events.isEmpty() ? Instant.parse("2017-11-26T01:00:00Z")
                : events.get(events.size() - 1).getEventTime().plusSeconds(1);
        Iterator<ClickEvent> real = events.iterator();
        Iterator<ClickEvent> sim = simulator(after);
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return true;
            }

            @Override
            public ClickEvent next() {
                return real.hasNext() ? real.next() : sim.next();
            }
        };
    }

    private static Iterator<ClickEvent> simulator(Instant start) {
        return new TrafficSimulator(42L, start);
    }

    private void produce(String bootstrap, Iterator<ClickEvent> clicks) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        long rate = number("rate", "1000");
        long badEvery = number("bad-every", "500");
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            long start = System.nanoTime();
            long n = 0;
            while (!stopping.get() && clicks.hasNext()) {
                ClickEvent e = clicks.next();
                byte[] key = e.getUserId().getBytes(StandardCharsets.UTF_8);
                producer.send(new ProducerRecord<>("clicks", key, ClickEventAvro.encode(e)));
                n++;
                produced.incrementAndGet();
                if (badEvery > 0 && n % badEvery == 0) {
                    // A truncated record: what a buggy producer or a wrong serializer would send.
                    byte[] bytes = ClickEventAvro.encode(e);
                    byte[] broken = java.util.Arrays.copyOf(bytes, bytes.length / 2);
                    producer.send(new ProducerRecord<>("clicks", key, broken));
                    injectedBad.incrementAndGet();
                }
                long due = start + n * 1_000_000_000L / rate;
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    java.util.concurrent.locks.LockSupport.parkNanos(wait);
                }
            }
        } catch (RuntimeException e) {
            if (!stopping.get()) {
                System.err.println("demo: producer stopped: " + e);
            }
        }
    }

    private static void say(String s) {
        System.out.println("demo: " + s);
    }

    /** Reads the output topics as a dashboard would (read_committed) and keeps running totals. */
    private static final class Summary {
        private final KafkaConsumer<byte[], byte[]> consumer;
        private final String modelVersion;
        private long scored;
        private long scoredAtLastReport;
        private long producedAtLastReport;
        private long lastReportNanos = System.nanoTime();
        private final Map<String, Long> alertsByType = new TreeMap<>();
        private final Map<String, List<String>> examples = new TreeMap<>();
        private final Map<String, Long> deadByReason = new TreeMap<>();

        void close() {
            consumer.close(Duration.ofSeconds(5));
        }

        Summary(String bootstrap, ModelBundle bundle) {
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ConsumerConfig.GROUP_ID_CONFIG, "seqscore-demo-dashboard");
            p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
            consumer.subscribe(List.of("scores", "alerts", "clicks-dlq"));
            modelVersion = bundle.spec().modelVersion();
        }

        void poll(Duration timeout) {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(timeout)) {
                switch (r.topic()) {
                    case "scores" -> scored++;
                    case "alerts" -> {
                        Alert a = AvroRecords.decode(r.value(), Alert.class);
                        alertsByType.merge(a.getAlertType(), 1L, Long::sum);
                        List<String> ex = examples.computeIfAbsent(a.getAlertType(), k -> new ArrayList<>());
                        ex.add(String.format("user %s (%s %.2f at %s)", a.getUserId(), a.getOutput(), a.getScore(),
                                a.getEventTime()));
                        if (ex.size() > 3) {
                            ex.remove(0);
                        }
                    }
                    default -> deadByReason.merge(AvroRecords.decode(r.value(), DeadLetter.class).getReason(), 1L, Long::sum);
                }
            }
        }

        String render(Duration elapsed, long produced, long injectedBad) {
            long now = System.nanoTime();
            double secs = Math.max(1e-9, (now - lastReportNanos) / 1e9);
            String s = String.format(
                    "%n[%s] model %s%n  in:     %,d clicks sent (%,.0f/s), %,d malformed injected%n"
                            + "  scored: %,d (%,.0f/s; visible at each checkpoint, exactly-once)%n",
                    fmt(elapsed), modelVersion, produced, (produced - producedAtLastReport) / secs, injectedBad,
                    scored, (scored - scoredAtLastReport) / secs);
            StringBuilder sb = new StringBuilder(s);
            long alerts = alertsByType.values().stream().mapToLong(Long::longValue).sum();
            sb.append(String.format("  alerts: %,d%n", alerts));
            alertsByType.forEach((type, n) -> {
                sb.append(String.format("    %-22s %,d%n", type, n));
                examples.getOrDefault(type, List.of()).forEach(e -> sb.append("      e.g. ").append(e).append('\n'));
            });
            sb.append(String.format("  dead letters: %,d %s", deadByReason.values().stream().mapToLong(Long::longValue).sum(),
                    deadByReason.isEmpty() ? "" : deadByReason.toString()));
            scoredAtLastReport = scored;
            producedAtLastReport = produced;
            lastReportNanos = now;
            return sb.toString();
        }

        private static String fmt(Duration d) {
            return String.format("%02d:%02d:%02d", d.toHours(), d.toMinutesPart(), d.toSecondsPart());
        }
    }
}
