package dev.seqscore.tools.bench;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.events.InputRecord;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.Lifetime;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.WindowEvent;
import dev.seqscore.job.JobConfig;
import dev.seqscore.offline.LocalFlink;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.job.SeqScorePipeline;
import dev.seqscore.kafka.EmbeddedKafka;
import dev.seqscore.lifecycle.ModelControl;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.features.Scoring;
import dev.seqscore.scoring.ScoredEvent;
import dev.seqscore.tools.sim.TrafficSimulator;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The job's throughput, latency and state cost beside raw ONNX Runtime's, on simulated Taobao-shaped clicks: the
 * measurements behind {@code bin/seqscore bench}'s JSON line. Each figure is a median over repeated runs, timed from
 * the first tenth of a run's output to its end, so start-up and warm-up are excluded.
 */
final class PipelineBench {
    /** Sizes per mode. */
    record Sizes(int repeats, double ortSeconds, int operatorEvents, int e2eEvents, int latencySeconds,
                 int stateUsers, int latencyWarmupSeconds) {
        static Sizes of(String mode) {
            return switch (mode) {
                case "smoke" -> new Sizes(1, 0.5, 6_000, 8_000, 4, 500, 2);
                case "quick" -> new Sizes(3, 2.0, 60_000, 300_000, 12, 20_000, 20);
                default -> new Sizes(3, 3.0, 200_000, 1_000_000, 30, 100_000, 30);
            };
        }
    }

    private static final Instant START = Instant.parse("2017-11-26T01:00:00Z");
    private static final int BATCH = 64;
    static final Map<String, Stopwatch> WATCHES = new ConcurrentHashMap<>();

    private final ModelBundle bundle;
    private final Sizes sizes;
    private final Path work;

    PipelineBench(ModelBundle bundle, Sizes sizes, Path work) {
        this.bundle = bundle;
        this.sizes = sizes;
        this.work = work;
    }

    // ---------------------------------------------------------------- raw ONNX Runtime

    /**
     * Events per second of OnnxScorer alone on pre-encoded windows of the simulator (with the lifetime record of the
     * window's events and a state, for the streaming model), one thread.
     */
    double rawOrt(int batch, Scoring scoring) {
        List<List<WindowEvent>> windows = simulatedWindows(2_000);
        ModelSpec.Served served = bundle.spec().served(scoring);
        FeatureEncoder encoder = new FeatureEncoder(bundle.spec());
        FeatureBatch features = FeatureBatch.forServed(bundle.spec(), served, batch);
        for (int i = 0; i < batch; i++) {
            List<WindowEvent> w = windows.get(i % windows.size());
            int row = encoder.add(w, features);
            if (features.isStreaming()) {
                Lifetime l = Lifetime.forSpec(bundle.spec());
                w.subList(0, w.size() - 1).forEach(e -> l.apply(e.eventTime, e.typeId));
                WindowEvent e = w.get(w.size() - 1);
                encoder.addLifetime(l, e.eventTime, e.typeId, features, row);
            }
        }
        float[][] into = new float[served.outputs().size()][batch];
        try (OnnxScorer scorer = new OnnxScorer(bundle, scoring, 1)) {
            timeLoop(() -> scorer.score(features, into), sizes.ortSeconds / 2);
            double[] runs = new double[sizes.repeats];
            for (int r = 0; r < runs.length; r++) {
                runs[r] = batch * timeLoop(() -> scorer.score(features, into), sizes.ortSeconds);
            }
            return median(runs);
        }
    }

    private static double timeLoop(Runnable call, double seconds) {
        long end = System.nanoTime() + (long) (seconds * 1e9);
        long calls = 0;
        long start = System.nanoTime();
        while (System.nanoTime() < end) {
            call.run();
            calls++;
        }
        return calls / ((System.nanoTime() - start) / 1e9);
    }

    // ---------------------------------------------------------------- operator, pre-materialised source

    /** Events per second through Validate and the scorer (which decides alerts too), at parallelism 1. */
    double operator(String backend, int batch, Scoring scoring) throws Exception {
        double[] runs = new double[sizes.repeats];
        for (int r = 0; r < runs.length; r++) {
            runs[r] = runOperator(backend, batch, sizes.operatorEvents, null, scoring).eventsPerSecond();
        }
        return median(runs);
    }

    /**
     * Events per second through Validate and the scorer without and with a shadow candidate scoring every event
     * beside the model ({@code candidate}: a bundle directory with the same outputs, published from the start as
     * the job would apply it from its control topic), at parallelism 1. After one run that is not counted (it
     * loads both models' code paths), the two alternate and take turns going first, so that neither a change of the
     * machine's load nor the order favours one; each figure is the median of its runs.
     *
     * @return events per second without, then with the candidate
     */
    double[] shadowCost(String backend, int batch, Scoring scoring, String candidate) throws Exception {
        List<ModelControl> shadow = List.of(ModelControl.publish("bench-shadow", ModelControl.Role.SHADOW, candidate,
                0));
        runOperator(backend, batch, sizes.operatorEvents, null, scoring, shadow);
        double[] without = new double[sizes.repeats];
        double[] with = new double[sizes.repeats];
        for (int r = 0; r < sizes.repeats; r++) {
            for (boolean shadowed : r % 2 == 0 ? new boolean[] {false, true} : new boolean[] {true, false}) {
                double eps = runOperator(backend, batch, sizes.operatorEvents, null, scoring,
                        shadowed ? shadow : List.of()).eventsPerSecond();
                (shadowed ? with : without)[r] = eps;
            }
        }
        return new double[] {median(without), median(with)};
    }

    /** The i-th generated record; serializable, since it travels inside the source. */
    interface RecordAt extends java.io.Serializable {
        InputRecord at(long i);
    }

    /** Runs the pipeline over generated records (null: the simulator); returns its stopwatch. */
    Stopwatch runOperator(String backend, int batch, long events, RecordAt generator, Scoring scoring)
            throws Exception {
        return runOperator(backend, batch, events, generator, scoring, List.of());
    }

    /** As above, with model changes applied from the start (e.g. a shadow candidate). */
    Stopwatch runOperator(String backend, int batch, long events, RecordAt generator, Scoring scoring,
            List<ModelControl> modelSchedule) throws Exception {
        String id = UUID.randomUUID().toString();
        Configuration conf = new Configuration();
        conf.set(StateBackendOptions.STATE_BACKEND, backend);
        try (LocalFlink flink = LocalFlink.start(1)) {
            StreamExecutionEnvironment env = flink.environment(1);
            env.configure(conf);
            PipelineSettings settings = PipelineSettings.builder(bundle).with(JobConfig.SCORE_BATCH, batch)
                    .with(JobConfig.SCORING, scoring).modelSchedule(modelSchedule).build();
            DataStream<InputRecord> clicks = env.fromSource(new DataGeneratorSource<>(new Generate(generator), events,
                            TypeInformation.of(InputRecord.class)), SeqScorePipeline.watermarks(settings), "generated")
                    .setParallelism(1);
            SeqScorePipeline.Outputs out = SeqScorePipeline.build(clicks, settings);
            out.scores().map(new Clock(id)).sinkTo(new DiscardingSink<>());
            out.alerts().sinkTo(new DiscardingSink<>());
            WATCHES.put(id, new Stopwatch(events));
            env.execute("bench operator " + scoring.cliName() + " " + backend + " batch " + batch);
            return WATCHES.remove(id);
        }
    }

    /** Deterministic records from the simulator (or another generator), one source subtask. */
    static final class Generate implements GeneratorFunction<Long, InputRecord> {
        private static final long serialVersionUID = 1L;
        private final RecordAt fixed;
        private transient TrafficSimulator sim;

        Generate(RecordAt generator) {
            this.fixed = generator;
        }

        @Override
        public InputRecord map(Long i) {
            if (fixed != null) {
                return fixed.at(i);
            }
            if (sim == null) {
                sim = new TrafficSimulator(7L, START);
            }
            return InputRecord.decoded(sim.next(), "bench", 0, i, null);
        }
    }

    /** Notes when the scores pass through, in this JVM's MiniCluster. */
    static final class Clock implements MapFunction<ScoredEvent, ScoredEvent> {
        private static final long serialVersionUID = 1L;
        private final String id;

        Clock(String id) {
            this.id = id;
        }

        @Override
        public ScoredEvent map(ScoredEvent s) {
            WATCHES.get(id).tick();
            return s;
        }
    }

    /** Counts records and times them from the end of the first tenth to the last. */
    static final class Stopwatch {
        private final long warmup;
        private final AtomicLong count = new AtomicLong();
        private volatile long warmedAt;
        private volatile long lastAt;

        Stopwatch(long expected) {
            this(expected, expected / 10);
        }

        /** Times from the {@code warmup}-th record to the last. */
        Stopwatch(long expected, long warmup) {
            this.warmup = Math.max(1, warmup);
        }

        void tick() {
            long n = count.incrementAndGet();
            long now = System.nanoTime();
            if (n == warmup) {
                warmedAt = now;
            }
            lastAt = now;
        }

        long count() {
            return count.get();
        }

        double eventsPerSecond() {
            long measured = count.get() - warmup;
            if (measured <= 0 || lastAt <= warmedAt) {
                throw new IllegalStateException("only " + count.get() + " records: nothing to time");
            }
            return measured / ((lastAt - warmedAt) / 1e9);
        }
    }

    // ---------------------------------------------------------------- state per user

    /**
     * Bytes of RocksDB state per user with full windows, from savepoints of the whole job over the users in it: in
     * Flink's canonical format (the live state) and RocksDB's native one (SST files: compressed, with the older
     * versions of values that compaction has not dropped yet). [canonical, native].
     */
    double[] stateBytesPerUser(Scoring scoring) throws Exception {
        return stateBytesPerUser(sizes.stateUsers, scoring);
    }

    /** As {@link #stateBytesPerUser(Scoring)}, for {@code users} users. */
    double[] stateBytesPerUser(int users, Scoring scoring) throws Exception {
        int n = bundle.spec().maxEvents();
        long events = (long) users * n;
        Path dir = Files.createDirectories(work.resolve("state-" + UUID.randomUUID()));
        Configuration conf = new Configuration();
        conf.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
        conf.setString("execution.checkpointing.incremental", "false");
        // On files: JobManager memory refuses any snapshot over 5 MB, and full windows of 100k users are 100 MB.
        conf.setString("execution.checkpointing.dir", dir.resolve("checkpoints").toUri().toString());
        try (LocalFlink flink = LocalFlink.start(1)) {
            StreamExecutionEnvironment env = flink.environment(1);
            env.configure(conf);
            // Every user's 50 events a minute apart, users interleaved: full windows, nothing past the horizon.
            PipelineSettings settings = PipelineSettings.builder(bundle).with(JobConfig.STATE_TTL, "0")
                    .with(JobConfig.SCORING, scoring).build();
            RecordAt full = i -> i < events ? fullWindowClick(i, users) : idle(i);
            // Unbounded: a finished source would send the final watermark, whose timers clear every window.
            DataStream<InputRecord> clicks = env.fromSource(new DataGeneratorSource<>(new Generate(full),
                            Long.MAX_VALUE, TypeInformation.of(InputRecord.class)),
                            SeqScorePipeline.watermarks(settings), "generated")
                    .setParallelism(1);
            SeqScorePipeline.Outputs out = SeqScorePipeline.build(clicks, settings);
            String id = UUID.randomUUID().toString();
            WATCHES.put(id, new Stopwatch(events));
            out.scores().map(new Clock(id)).sinkTo(new DiscardingSink<>());
            out.alerts().sinkTo(new DiscardingSink<>());
            // Unbounded tail: the job keeps its state until the savepoint is taken.
            JobClient job = env.executeAsync("bench state");
            Stopwatch w = WATCHES.get(id);
            long deadline = System.nanoTime() + Duration.ofMinutes(30).toNanos();
            while (w.count() < events - users && System.nanoTime() < deadline) {
                LockSupport.parkNanos(Duration.ofMillis(200).toNanos());
            }
            long canonical = bytes(job.triggerSavepoint(dir.resolve("canonical").toUri().toString(),
                    org.apache.flink.core.execution.SavepointFormatType.CANONICAL).get());
            long nativeBytes = bytes(job.stopWithSavepoint(false, dir.resolve("native").toUri().toString(),
                    org.apache.flink.core.execution.SavepointFormatType.NATIVE).get());
            WATCHES.remove(id);
            return new double[] {(double) canonical / users, (double) nativeBytes / users};
        }
    }

    /** Total size of the files of a savepoint. */
    static long bytes(String savepoint) throws java.io.IOException {
        try (var files = Files.walk(Path.of(java.net.URI.create(savepoint)))) {
            return files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
    }

    /** After the windows are full: a record validation rejects (no state, no watermark), slowly. */
    private static InputRecord idle(long i) {
        LockSupport.parkNanos(Duration.ofMillis(5).toNanos());
        ClickEvent e = ClickEvent.newBuilder().setUserId("").setEventType("view").setItemId("idle")
                .setCategoryId("idle").setEventTime(START).build();
        return InputRecord.decoded(e, "bench", 0, i, null);
    }

    private static InputRecord fullWindowClick(long i, int users) {
        int user = (int) (i % users);
        long step = i / users;
        ClickEvent e = ClickEvent.newBuilder().setUserId(Integer.toString(100_000 + user))
                .setEventType(step % 10 == 9 ? "cart" : "view")
                .setItemId(Integer.toString(1_000_000 + (int) ((i * 2654435761L) % 4_000_000)))
                .setCategoryId(Integer.toString(2_000_000 + (int) ((i * 40503L) % 9_000)))
                .setEventTime(START.plusMillis(step * 60_000L + user % 60_000)).build();
        return InputRecord.decoded(e, "bench", 0, i, null);
    }

    // ---------------------------------------------------------------- Kafka to Kafka

    /** Events per second from a pre-filled topic through the job to the scores topic, at-least-once. */
    double endToEnd(EmbeddedKafka kafka, int parallelism, Scoring scoring) throws Exception {
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        String in = "bench-clicks-" + suffix;
        String scores = "bench-scores-" + suffix;
        kafka.createTopics(parallelism, in);
        kafka.createTopics(1, scores, "bench-alerts-" + suffix, "bench-dlq-" + suffix);
        int events = sizes.e2eEvents;
        prefill(kafka.bootstrapServers(), in, parallelism, events);
        JobConfig config = JobConfig.parse("--bootstrap-servers", kafka.bootstrapServers(), "--input-topic", in,
                "--scores-topic", scores, "--alerts-topic", "bench-alerts-" + suffix,
                "--dead-letter-topic", "bench-dlq-" + suffix, "--group-id", "bench-" + suffix,
                "--starting-offsets", "earliest", "--delivery", "at-least-once", "--parallelism",
                Integer.toString(parallelism), "--checkpoint-dir", work.resolve("cp-" + suffix).toUri().toString(),
                "--scoring", scoring.cliName());
        try (LocalFlink flink = LocalFlink.start(parallelism)) {
            StreamExecutionEnvironment env = flink.environment(parallelism);
            SeqScoreJob.assemble(env, config, bundle);
            JobClient job = env.executeAsync("bench end-to-end p" + parallelism);
            try {
                return drainRate(kafka.bootstrapServers(), scores, events);
            } finally {
                job.cancel().get();
            }
        }
    }

    private static void prefill(String bootstrap, String topic, int partitions, int events) {
        TrafficSimulator sim = new TrafficSimulator(11L, START);
        Instant last = START;
        try (KafkaProducer<byte[], byte[]> p = producer(bootstrap)) {
            for (int i = 0; i < events; i++) {
                ClickEvent e = sim.next();
                last = e.getEventTime();
                byte[] key = e.getUserId().getBytes(StandardCharsets.UTF_8);
                p.send(new ProducerRecord<>(topic, Math.floorMod(e.getUserId().hashCode(), partitions), key,
                        ClickEventAvro.encode(e)));
            }
            // One far-future click per partition moves every watermark past the rest; it is never scored itself.
            for (int q = 0; q < partitions; q++) {
                ClickEvent flush = ClickEvent.newBuilder().setUserId("flush-" + q).setEventType("view")
                        .setItemId("flush").setCategoryId("flush").setEventTime(last.plus(Duration.ofDays(2))).build();
                p.send(new ProducerRecord<>(topic, q, new byte[0], ClickEventAvro.encode(flush)));
            }
        }
    }

    /** Reads the scores topic until {@code expected} records arrived; rate from the first tenth to the last. */
    private static double drainRate(String bootstrap, String topic, int expected) {
        Stopwatch w = new Stopwatch(expected);
        long deadline = System.nanoTime() + Duration.ofMinutes(20).toNanos();
        try (KafkaConsumer<byte[], byte[]> c = consumer(bootstrap, topic)) {
            while (w.count() < expected && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> ignored : c.poll(Duration.ofMillis(100))) {
                    w.tick();
                }
            }
        }
        return w.eventsPerSecond();
    }

    // ---------------------------------------------------------------- latency

    /**
     * Append-to-readable latency of scores, in ms, and the p99 of its three stages: append to scored (the Score's
     * {@code scored_at}: source, watermark, batch and model), scored to written (the record's Kafka timestamp, which
     * the sink sets as it writes) and written to read (broker, transaction commit, consumer poll).
     */
    record Latency(double p50, double p99, double p999, double p99ToScored, double p99ScoredToWritten,
                   double p99WrittenToRead) {}

    /** The latency of scores at {@code rate} events/s. */
    Latency latency(EmbeddedKafka kafka, double rate, String outOfOrderness, String delivery, Scoring scoring)
            throws Exception {
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        String in = "lat-clicks-" + suffix;
        String scores = "lat-scores-" + suffix;
        kafka.createTopics(1, in, scores, "lat-alerts-" + suffix, "lat-dlq-" + suffix);
        JobConfig config = JobConfig.parse("--bootstrap-servers", kafka.bootstrapServers(), "--input-topic", in,
                "--scores-topic", scores, "--alerts-topic", "lat-alerts-" + suffix,
                "--dead-letter-topic", "lat-dlq-" + suffix, "--group-id", "lat-" + suffix,
                "--transactional-id-prefix", "lat-" + suffix, "--starting-offsets", "earliest",
                "--delivery", delivery, "--max-out-of-orderness", outOfOrderness, "--checkpoint-interval", "1s",
                "--parallelism", "1", "--checkpoint-dir", work.resolve("cp-" + suffix).toUri().toString(),
                "--scoring", scoring.cliName());
        Map<String, Long> sentAt = new ConcurrentHashMap<>();
        List<Long> latencies = new ArrayList<>();
        List<Long> toScored = new ArrayList<>();
        List<Long> scoredToWritten = new ArrayList<>();
        List<Long> writtenToRead = new ArrayList<>();
        AtomicLong stopAt = new AtomicLong(Long.MAX_VALUE);
        try (LocalFlink flink = LocalFlink.start(1)) {
            StreamExecutionEnvironment env = flink.environment(1);
            SeqScoreJob.assemble(env, config, bundle);
            JobClient job = env.executeAsync("bench latency");
            Thread producer = new Thread(() -> paced(kafka.bootstrapServers(), in, rate, sentAt, stopAt),
                    "bench-producer");
            try (KafkaConsumer<byte[], byte[]> c = consumer(kafka.bootstrapServers(), scores)) {
                producer.start();
                // A loaded machine may take long to start the job: measure what is sent once scores flow, after a
                // warm-up, and wait for every one of those to come back.
                awaitFirst(c, Duration.ofMinutes(3));
                // Past the start-up backlog: events sent while the job started are scored late as it catches up, and
                // a short warm-up measured that catch-up (1.5 s falling to 60 ms over 6 s) rather than the job.
                long from = System.currentTimeMillis() + sizes.latencyWarmupSeconds * 1_000L;
                long until = from + sizes.latencySeconds * 1_000L;
                // The producer goes on until the drain ends: with an out-of-orderness bound, the last measured
                // events become ready only when later ones move the watermark past them.
                long drainDeadline = System.nanoTime() + Duration.ofSeconds(sizes.latencyWarmupSeconds
                        + sizes.latencySeconds + 120).toNanos();
                while (System.nanoTime() < drainDeadline && (System.currentTimeMillis() < until
                        || sentAt.values().stream().anyMatch(t -> t >= from && t <= until))) {
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(20))) {
                        long now = System.currentTimeMillis();
                        dev.seqscore.avro.Score s = dev.seqscore.job.AvroRecords.decode(r.value(),
                                dev.seqscore.avro.Score.class);
                        Long t = sentAt.remove(s.getUserId() + "@" + s.getEventTime().toEpochMilli());
                        if (t != null && t >= from && t <= until) {
                            latencies.add(now - t);
                            long scoredAt = s.getScoredAt().toEpochMilli();
                            toScored.add(scoredAt - t);
                            scoredToWritten.add(r.timestamp() - scoredAt);
                            writtenToRead.add(now - r.timestamp());
                        }
                    }
                }
                long now = System.currentTimeMillis();
                long behind = sentAt.values().stream().filter(t -> t >= from && t <= until)
                        .peek(t -> latencies.add(now - t)).count();
                if (behind > 0) {
                    System.err.printf("bench: %d of the measured events were not scored within %d s: the job did not "
                            + "keep up at %.0f events/s, so these latencies are lower bounds%n", behind,
                            sizes.latencySeconds + 120, rate);
                }
            } finally {
                stopAt.set(0);
                producer.join();
                job.cancel().get();
            }
        }
        if (latencies.isEmpty()) {
            throw new IllegalStateException("no score arrived within the latency run");
        }
        long[] v = sorted(latencies);
        return new Latency(pct(v, 0.5), pct(v, 0.99), pct(v, 0.999), pct(sorted(toScored), 0.99),
                pct(sorted(scoredToWritten), 0.99), pct(sorted(writtenToRead), 0.99));
    }

    private static long[] sorted(List<Long> values) {
        return values.isEmpty() ? new long[] {0} : values.stream().mapToLong(Long::longValue).sorted().toArray();
    }

    private static void awaitFirst(KafkaConsumer<byte[], byte[]> c, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (!c.poll(Duration.ofMillis(100)).isEmpty()) {
                return;
            }
        }
        throw new IllegalStateException("no score within " + timeout + " of starting the latency run");
    }

    /** Sends clicks stamped with the wall clock at {@code rate} until {@code stopAt} (nanoTime) passes. */
    private static void paced(String bootstrap, String topic, double rate, Map<String, Long> sentAt,
            AtomicLong stopAt) {
        SplittableRandom random = new SplittableRandom(3);
        long start = System.nanoTime();
        long n = 0;
        try (KafkaProducer<byte[], byte[]> p = producer(bootstrap)) {
            while (System.nanoTime() < stopAt.get()) {
                // Event time is now, so an event is ready as soon as the next one passes it.
                long now = System.currentTimeMillis();
                String user = "u" + random.nextInt(50_000);
                ClickEvent e = ClickEvent.newBuilder().setUserId(user).setEventType("view")
                        .setItemId("i" + random.nextInt(100_000)).setCategoryId("c" + random.nextInt(500))
                        .setEventTime(Instant.ofEpochMilli(now)).build();
                sentAt.put(user + "@" + now, now);
                p.send(new ProducerRecord<>(topic, 0, user.getBytes(StandardCharsets.UTF_8), ClickEventAvro.encode(e)));
                n++;
                long due = start + (long) (n * 1e9 / rate);
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    LockSupport.parkNanos(wait);
                }
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    private List<List<WindowEvent>> simulatedWindows(int count) {
        TrafficSimulator sim = new TrafficSimulator(5L, START);
        Map<String, List<WindowEvent>> byUser = new HashMap<>();
        List<List<WindowEvent>> out = new ArrayList<>();
        int n = bundle.spec().maxEvents();
        while (out.size() < count) {
            ClickEvent e = sim.next();
            List<WindowEvent> w = byUser.computeIfAbsent(e.getUserId(), k -> new ArrayList<>());
            w.add(new WindowEvent(e.getItemId(), e.getCategoryId(), bundle.spec().typeId(e.getEventType()),
                    e.getEventTime().toEpochMilli()));
            if (w.size() > n) {
                w.remove(0);
            }
            out.add(List.copyOf(w));
        }
        return out;
    }

    private static KafkaProducer<byte[], byte[]> producer(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    private static KafkaConsumer<byte[], byte[]> consumer(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> parts = new ArrayList<>();
        c.partitionsFor(topic, Duration.ofSeconds(30)).forEach(i -> parts.add(new TopicPartition(topic, i.partition())));
        c.assign(parts);
        c.seekToBeginning(parts);
        return c;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static double pct(long[] sorted, double q) {
        return sorted[Math.min(sorted.length - 1, (int) Math.floor(q * sorted.length))];
    }
}
