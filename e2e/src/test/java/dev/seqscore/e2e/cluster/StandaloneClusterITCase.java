package dev.seqscore.e2e.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.avro.Alert;
import dev.seqscore.avro.ClickEvent;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.Score;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.job.AvroRecords;
import dev.seqscore.kafka.EmbeddedKafkaExtension;
import dev.seqscore.tools.sim.TrafficSimulator;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The shaded job jar, as built for production, on a real Flink standalone session cluster: a JobManager and a
 * TaskManager in their own JVMs, the job submitted as a jar upload over REST, reading from and writing to a real
 * KRaft broker with exactly-once transactions. It proves what the MiniCluster tests cannot: that the jar carries
 * everything it needs (connector, Avro, ONNX Runtime and its native library, the model shipped from the client),
 * that its classes load in Flink's child-first user class loader next to the cluster's own, and that its state and
 * records survive real serialization between separate processes.
 *
 * <p>With every threshold at 0 each scored event crosses every output's threshold, so the alerts are fixed by the
 * cooldown rule alone, whatever the model says: the expectations are computed from the input, not from a model run.
 */
class StandaloneClusterITCase {
    private static final int PARTITIONS = 2;
    private static final int EVENTS = 400;
    private static final Duration COOLDOWN = Duration.ofMinutes(10);
    /** Generous for 2 cores: a cold cluster, a model load in the JobManager and the first checkpoints. */
    private static final Duration OUTPUT_DEADLINE = Duration.ofSeconds(90);
    /** After the expected counts appear, keep reading this long, so that duplicates would be seen too. */
    private static final Duration SETTLE = Duration.ofSeconds(3);

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();

    @Test
    void shadedJarScoresAndAlertsOnAStandaloneClusterOfSeparateProcesses() throws Exception {
        Path root = repoRoot();
        Path jar = shadedJar(root);
        Path model = root.resolve("models/default");
        List<Path> classpath = StandaloneCluster.flinkClasspath(root.resolve("e2e/target/classpath.txt"));
        assertThat(classpath).as("the job may only reach the cluster as the uploaded jar")
                .noneMatch(p -> p.toString().contains("seqscore"));

        String suffix = UUID.randomUUID().toString().substring(0, 8);
        String in = "clicks-" + suffix;
        String alertsTopic = "alerts-" + suffix;
        String scoresTopic = "scores-" + suffix;
        String dlqTopic = "dlq-" + suffix;
        kafka.createTopics(PARTITIONS, in);
        kafka.createTopics(1, alertsTopic, scoresTopic, dlqTopic);

        // Recent enough to be no FUTURE_TIMESTAMP and no concern of the 48 h state TTL, old enough that the
        // whole stream plus the flush events stay in the past. A slow session rate spreads the 400 events over
        // hours, so that users come back after their cooldown and the rule has something to decide.
        Instant start = Instant.now().minus(Duration.ofHours(12)).truncatedTo(ChronoUnit.SECONDS);
        TrafficSimulator sim = new TrafficSimulator(20261128L, start, 0.01);
        List<ClickEvent> events = Stream.generate(sim::next).limit(EVENTS).toList();
        Instant last = events.get(events.size() - 1).getEventTime();
        assertThat(last).isBefore(Instant.now().minus(Duration.ofHours(2)));

        byte[] garbage = "not an avro ClickEvent \u0000\u00ff".getBytes(StandardCharsets.UTF_8);
        long garbageOffset;
        int garbagePartition = 0;
        try (KafkaProducer<byte[], byte[]> producer = producer()) {
            // In time order per partition, so that nothing is late; a user always lands on the same partition.
            long offset = -1;
            for (int i = 0; i < events.size(); i++) {
                if (i == events.size() / 2) {
                    // Mid-stream, so the events behind it in its partition show that a poison record stalls nothing.
                    offset = producer.send(new ProducerRecord<>(in, garbagePartition,
                            "garbage".getBytes(StandardCharsets.UTF_8), garbage)).get().offset();
                }
                ClickEvent e = events.get(i);
                producer.send(record(in, partitionOf(e.getUserId()), e.getUserId(), ClickEventAvro.encode(e)));
            }
            garbageOffset = offset;
            // Events wait in the scorer until the watermark passes them, and the watermark is the minimum over
            // the partitions: a much newer event in each partition releases every earlier one. The flush events
            // themselves stay unscored, so exactly the simulated events are scored.
            for (int p = 0; p < PARTITIONS; p++) {
                ClickEvent flush = ClickEvent.newBuilder(events.get(0))
                        .setUserId("flush-" + p)
                        .setEventTime(last.plus(Duration.ofHours(1)))
                        .build();
                producer.send(record(in, p, flush.getUserId(), ClickEventAvro.encode(flush)));
            }
            producer.flush();
        }

        Path workDir = root.resolve("e2e/target/standalone-cluster-" + suffix);
        try (StandaloneCluster cluster = StandaloneCluster.start(workDir, classpath, 1,
                Map.of("env.java.opts.taskmanager", "-Dseqscore.e2e.marker=tm"), Map.of("SEQSCORE_E2E_MARKER", "1"))) {
            try {
                // Started as Flink's scripts start them: env.java.opts.<role> on the role's command line, and the
                // given environment (how the drill hands the processes their allocator).
                long tm = cluster.taskManagers().get(0).pid();
                long jm = cluster.jobManager().pid();
                assertThat(Files.readString(Path.of("/proc/" + tm + "/cmdline"))).contains("-Dseqscore.e2e.marker=tm");
                assertThat(Files.readString(Path.of("/proc/" + jm + "/cmdline"))).doesNotContain("seqscore.e2e.marker");
                assertThat(Files.readString(Path.of("/proc/" + tm + "/environ"))).contains("SEQSCORE_E2E_MARKER=1");

                long t0 = System.nanoTime();
                String jobId = cluster.submit(jar,
                        "--bootstrap-servers", kafka.bootstrapServers(),
                        "--input-topic", in,
                        "--alerts-topic", alertsTopic,
                        "--scores-topic", scoresTopic,
                        "--dead-letter-topic", dlqTopic,
                        "--group-id", "seqscore-" + suffix,
                        "--transactional-id-prefix", "seqscore-" + suffix,
                        "--starting-offsets", "earliest",
                        "--checkpoint-interval", "1s",
                        "--parallelism", Integer.toString(PARTITIONS),
                        "--threshold.purchase_30m", "0.0",
                        "--threshold.churn_24h", "0.0",
                        "--cooldown", "10m",
                        // No --model: the jar carries the default bundle.
                        "--checkpoint-dir", workDir.resolve("checkpoints").toUri().toString());
                cluster.waitForRunning(jobId, Duration.ofSeconds(60));
                System.err.printf("job %s running %d ms after submission%n", jobId,
                        Duration.ofNanos(System.nanoTime() - t0).toMillis());

                List<Map.Entry<String, Instant>> expectedAlerts = cooldownAlerts(events, COOLDOWN);
                assertThat(expectedAlerts).as("some events fall within a cooldown").hasSizeLessThan(EVENTS);
                assertThat(expectedAlerts.stream().collect(Collectors.groupingBy(Map.Entry::getKey,
                        Collectors.counting())).values())
                        .as("some user alerts again after a cooldown").anyMatch(n -> n >= 2);
                Outputs out = readOutputs(cluster, jobId, scoresTopic, alertsTopic, dlqTopic,
                        EVENTS, 2 * expectedAlerts.size(), 1);
                System.err.printf("outputs complete %d ms after submission: %d scores, %d alerts, %d dead%n",
                        Duration.ofNanos(System.nanoTime() - t0).toMillis(),
                        out.scores.size(), out.alerts.size(), out.dead.size());

                assertThat(out.scores).as("one score per simulated event, none for the flush events")
                        .hasSize(EVENTS);
                assertThat(out.scores.stream().map(s -> Map.entry(s.getUserId(), s.getEventTime())))
                        .containsExactlyInAnyOrderElementsOf(
                                events.stream().map(e -> Map.entry(e.getUserId(), e.getEventTime())).toList());
                // The served model's: the streaming one (--scoring incremental, the default) when the bundle has one.
                JsonNode spec = new ObjectMapper().readTree(model.resolve("model-spec.json").toFile());
                String modelVersion = (spec.has("streaming") ? spec.get("streaming") : spec).path("model_version")
                        .asText();
                assertThat(out.scores).allSatisfy(s -> {
                    assertThat(s.getModelVersion()).isEqualTo(modelVersion);
                    assertThat(s.getScores()).containsOnlyKeys("purchase_30m", "churn_24h");
                    assertThat(s.getScores().values()).allSatisfy(v -> assertThat(v).isBetween(0.0, 1.0));
                });

                for (String type : List.of("HIGH_PURCHASE_INTENT", "CHURN_RISK")) {
                    assertThat(out.alerts.stream().filter(a -> a.getAlertType().equals(type))
                            .map(a -> Map.entry(a.getUserId(), a.getEventTime())))
                            .as("%s alerts: one per user per %s of event time", type, COOLDOWN)
                            .containsExactlyInAnyOrderElementsOf(expectedAlerts);
                }
                assertThat(out.alerts).extracting(Alert::getAlertId).doesNotHaveDuplicates();

                assertThat(out.dead).hasSize(1);
                DeadLetter d = out.dead.get(0);
                assertThat(d.getReason()).isEqualTo("UNDECODABLE");
                assertThat(d.getSourceTopic()).isEqualTo(in);
                assertThat(d.getSourcePartition()).isEqualTo(garbagePartition);
                assertThat(d.getSourceOffset()).isEqualTo(garbageOffset);
                assertThat(AvroRecords.bytes(d.getRaw())).isEqualTo(garbage);

                cluster.cancel(jobId);
            } catch (Throwable t) {
                System.err.println("StandaloneClusterITCase failed; cluster logs in " + workDir + ":\n"
                        + cluster.logs(80));
                throw t;
            }
        }
    }

    /**
     * The alerts the cooldown rule allows when every event crosses the threshold: per user, in event time, the
     * first event alerts, and then the first event at least the cooldown after the previous alert.
     */
    static List<Map.Entry<String, Instant>> cooldownAlerts(List<ClickEvent> events, Duration cooldown) {
        Map<String, Instant> lastAlert = new HashMap<>();
        List<Map.Entry<String, Instant>> out = new ArrayList<>();
        events.stream().sorted(Comparator.comparing(ClickEvent::getEventTime)).forEach(e -> {
            Instant prev = lastAlert.get(e.getUserId());
            if (prev == null || Duration.between(prev, e.getEventTime()).compareTo(cooldown) >= 0) {
                lastAlert.put(e.getUserId(), e.getEventTime());
                out.add(Map.entry(e.getUserId(), e.getEventTime()));
            }
        });
        return out;
    }

    private record Outputs(List<Score> scores, List<Alert> alerts, List<DeadLetter> dead) {}

    /**
     * Reads the output topics with read_committed, as a downstream consumer would, until at least the expected
     * counts are there, then for {@link #SETTLE} more. Fails early if the job stops running.
     */
    private static Outputs readOutputs(StandaloneCluster cluster, String jobId, String scoresTopic,
            String alertsTopic, String dlqTopic, int scores, int alerts, int dead) throws Exception {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        Outputs out = new Outputs(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = List.of(new TopicPartition(scoresTopic, 0),
                    new TopicPartition(alertsTopic, 0), new TopicPartition(dlqTopic, 0));
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            long deadline = System.nanoTime() + OUTPUT_DEADLINE.toNanos();
            long settleUntil = Long.MAX_VALUE;
            long nextStateCheck = 0;
            while (System.nanoTime() < settleUntil) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    if (r.topic().equals(scoresTopic)) {
                        out.scores.add(AvroRecords.decode(r.value(), Score.class));
                    } else if (r.topic().equals(alertsTopic)) {
                        out.alerts.add(AvroRecords.decode(r.value(), Alert.class));
                    } else {
                        out.dead.add(AvroRecords.decode(r.value(), DeadLetter.class));
                    }
                }
                if (settleUntil == Long.MAX_VALUE && out.scores.size() >= scores && out.alerts.size() >= alerts
                        && out.dead.size() >= dead) {
                    settleUntil = System.nanoTime() + SETTLE.toNanos();
                }
                if (System.nanoTime() > nextStateCheck) {
                    String state = cluster.job(jobId).path("state").asText();
                    if (!state.equals("RUNNING")) {
                        throw new AssertionError("job left RUNNING (" + state + "): " + cluster.exceptions(jobId));
                    }
                    nextStateCheck = System.nanoTime() + Duration.ofSeconds(2).toNanos();
                }
                if (settleUntil == Long.MAX_VALUE && System.nanoTime() > deadline) {
                    throw new AssertionError(String.format("within %s read %d/%d scores, %d/%d alerts, %d/%d dead "
                                    + "letters; job exceptions: %s", OUTPUT_DEADLINE, out.scores.size(), scores,
                            out.alerts.size(), alerts, out.dead.size(), dead, cluster.exceptions(jobId)));
                }
            }
        }
        return out;
    }

    private static int partitionOf(String user) {
        return Math.floorMod(user.hashCode(), PARTITIONS);
    }

    private static ProducerRecord<byte[], byte[]> record(String topic, int partition, String key, byte[] value) {
        return new ProducerRecord<>(topic, partition, key.getBytes(StandardCharsets.UTF_8), value);
    }

    private static KafkaProducer<byte[], byte[]> producer() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    /** The shaded jar that {@code mvn package} of flink-job builds; the reactor builds it before this module. */
    static Path shadedJar(Path root) throws IOException {
        Path target = root.resolve("flink-job/target");
        try (Stream<Path> files = Files.exists(target) ? Files.list(target) : Stream.empty()) {
            return files.filter(f -> f.getFileName().toString().matches("seqscore-flink-job-.*-shaded\\.jar"))
                    .findFirst()
                    .orElseThrow(() -> new AssertionError("no seqscore-flink-job-*-shaded.jar in " + target
                            + ": build it first (`mvn install` from the repository root builds flink-job before "
                            + "the e2e module's integration tests)"));
        }
    }

    /** The repository root: failsafe passes it; from an IDE, the nearest parent holding models/default. */
    static Path repoRoot() {
        String prop = System.getProperty("seqscore.repo.root");
        if (prop != null && Files.isDirectory(Path.of(prop, "models/default"))) {
            return Path.of(prop).toAbsolutePath();
        }
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isDirectory(p.resolve("models/default"))) {
                return p;
            }
        }
        throw new AssertionError("repository root not found: set -Dseqscore.repo.root");
    }
}
