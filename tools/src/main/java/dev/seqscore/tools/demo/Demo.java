package dev.seqscore.tools.demo;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.ClickEvent;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.Score;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.events.EventFileReader;
import dev.seqscore.events.FileRecord;
import dev.seqscore.job.AvroRecords;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
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
    static final Option<Path> DATA_DIR = Option.path("data-dir", "",
            "where taobao/UserBehavior_timeordered_110k.csv is; empty = $SEQSCORE_DATA_DIR, else ../shared/data");
    static final Option<String> SOURCE = Option.oneOf("source", "auto",
            "auto (the file if present, else the simulator), file or simulator", "auto", "file", "simulator");
    static final Option<Integer> RATE = Option.positiveInt("rate", "1000", "clicks per second streamed into Kafka");
    static final Option<Duration> DURATION = Option.duration("duration", "0",
            "stop after this long, e.g. 90s or 5m; 0 runs until Ctrl-C");
    static final Option<Integer> KAFKA_PORT = Option.integer("kafka-port", "9092",
            "the embedded broker's port for outside clients (random if taken)", 1, 65535);
    static final Option<Integer> WEB_PORT = Option.integer("web-port", "8081", "Flink web UI port", 1, 65535);
    static final Option<Integer> BAD_EVERY = Option.integer("bad-every", "500",
            "inject one malformed record every N clicks to show the dead-letter path; 0 = never", 0, Integer.MAX_VALUE);
    static final Option<Duration> REPORT_EVERY = Option.positiveDuration("report-every", "5s",
            "how often the summary prints");
    static final OptionSet OPTIONS = new OptionSet()
            .add(DATA_DIR, SOURCE, RATE, DURATION, KAFKA_PORT, WEB_PORT, BAD_EVERY, REPORT_EVERY,
                    OptionSet.HELP)
            .addAll("The job's options (bin/seqscore job --help)", JobConfig.OPTIONS);

    private OptionValues options;

    private final AtomicLong produced = new AtomicLong();
    private final AtomicLong injectedBad = new AtomicLong();
    private final AtomicBoolean stopping = new AtomicBoolean();

    public static void main(String[] args) throws Exception {
        Demo demo = new Demo();
        try {
            demo.options = OPTIONS.parse(args);
            JobConfig.of(demo.options);
        } catch (ConfigException e) {
            System.err.println("error: " + e.getMessage());
            System.err.println(usage());
            System.exit(2);
        }
        if (demo.options.get(OptionSet.HELP)) {
            System.out.println(usage());
            return;
        }
        demo.run();
    }

    static String usage() {
        return OPTIONS.usage("bin/seqscore demo [options]", "An embedded Kafka broker, real (or simulated) clicks "
                + "streamed into it, the job on a local Flink MiniCluster with its web UI, and a live summary.");
    }

    private void run() throws Exception {
        Path dataDir = options.get(DATA_DIR) != null ? options.get(DATA_DIR)
                : Path.of(System.getenv().getOrDefault("SEQSCORE_DATA_DIR", "../shared/data"));
        Path file = dataDir.resolve("taobao/UserBehavior_timeordered_110k.csv");
        String source = options.get(SOURCE);
        boolean useFile = source.equals("file") || (source.equals("auto") && Files.isReadable(file));
        if (source.equals("file") && !Files.isReadable(file)) {
            throw new IllegalArgumentException("--source file: cannot read " + file);
        }

        say("starting an embedded Kafka broker (KRaft)...");
        int kafkaPort = options.get(KAFKA_PORT);
        EmbeddedKafka kafka = portFree(kafkaPort) ? EmbeddedKafka.start(kafkaPort) : EmbeddedKafka.start();
        String bootstrap = kafka.bootstrapServers();
        kafka.createTopics(4, "clicks", "alerts", "scores", "clicks-dlq");
        say("broker at " + bootstrap + "; topics clicks (4 partitions), alerts, scores, clicks-dlq");

        Path checkpoints = Files.createTempDirectory("seqscore-demo-checkpoints");
        JobConfig config = JobConfig.of(demoDefaults(options, bootstrap, checkpoints));
        ModelBundle bundle = SeqScoreJob.loadModel(config);
        say("model " + bundle.spec().modelVersion() + " (" + bundle.onnxPath() + "), window "
                + bundle.spec().maxEvents() + " events / " + Duration.ofMillis(bundle.spec().horizonMs()));

        Configuration conf = new Configuration();
        conf.set(RestOptions.PORT, options.get(WEB_PORT));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironmentWithWebUI(conf);
        SeqScoreJob.assemble(env, config, bundle);
        JobClient job = env.executeAsync("SeqScore demo");
        say("job " + job.getJobID() + " running; Flink web UI: http://localhost:" + options.get(WEB_PORT)
                + "; checkpoints in " + checkpoints);

        Iterator<ClickEvent> clicks = useFile ? fileThenSimulator(file) : simulator(Instant.parse("2017-11-26T01:00:00Z"));
        say("streaming " + (useFile ? "real Taobao clicks from " + file + " (then simulated ones)"
                : "simulated clicks (no data file at " + file + ")") + " at " + options.get(RATE) + "/s");
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

        Duration duration = options.get(DURATION);
        Duration every = options.get(REPORT_EVERY);
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

    /** The demo's own broker and topics, unless the command line says otherwise. */
    static OptionValues demoDefaults(OptionValues given, String bootstrap, Path checkpoints) {
        return given.withDefault(JobConfig.BOOTSTRAP_SERVERS, bootstrap)
                .withDefault(JobConfig.INPUT_TOPIC, "clicks")
                .withDefault(JobConfig.ALERTS_TOPIC, "alerts")
                .withDefault(JobConfig.SCORES_TOPIC, "scores")
                .withDefault(JobConfig.DEAD_LETTER_TOPIC, "clicks-dlq")
                .withDefault(JobConfig.STARTING_OFFSETS, "earliest")
                .withDefault(JobConfig.CHECKPOINT_INTERVAL, "5s")
                .withDefault(JobConfig.CHECKPOINT_DIR, checkpoints.toUri().toString())
                .withDefault(JobConfig.PARALLELISM, "2");
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
        long rate = options.get(RATE);
        long badEvery = options.get(BAD_EVERY);
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
