package dev.seqscore.e2e.cluster;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.avro.Score;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.job.AvroRecords;
import dev.seqscore.kafka.EmbeddedKafkaExtension;
import dev.seqscore.tools.sim.TrafficSimulator;
import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The deploy-with-history flow on a standalone cluster of processes, with the shaded jar, as the README gives it:
 * {@code flink run -c dev.seqscore.offline.Bootstrap} writes the savepoint (main() in the CLI, the job on the
 * cluster); {@code flink run -s} with another {@code --max-parallelism} is refused by the job's main() before
 * submission; with the printed flags the job starts from it and scores a bootstrapped user's first live click on
 * the user's whole window.
 */
class BootstrapOnClusterITCase {
    private static final int PARTITIONS = 2;
    private static final int EVENTS = 300;

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();

    @Test
    void theBootstrapRunsWithFlinkRunDashCAndTheJobStartsFromItsSavepoint() throws Exception {
        Path root = StandaloneClusterITCase.repoRoot();
        Path jar = StandaloneClusterITCase.shadedJar(root);
        List<Path> classpath = StandaloneCluster.flinkClasspath(root.resolve("e2e/target/classpath.txt"));
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        Path workDir = root.resolve("e2e/target/bootstrap-cluster-" + suffix);
        Files.createDirectories(workDir);

        Instant start = Instant.now().minus(Duration.ofHours(12)).truncatedTo(ChronoUnit.SECONDS);
        TrafficSimulator sim = new TrafficSimulator(20261207L, start, 0.01);
        List<ClickEvent> history = Stream.generate(sim::next).limit(EVENTS).toList();
        long until = history.get(history.size() - 1).getEventTime().toEpochMilli() + 1_000;
        Path file = workDir.resolve("history.csv");
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            w.write("user_id,item_id,category_id,event_type,event_time\n");
            for (ClickEvent e : history) {
                w.write(e.getUserId() + "," + e.getItemId() + "," + e.getCategoryId() + "," + e.getEventType() + ","
                        + e.getEventTime().toEpochMilli() + "\n");
            }
        }
        String user = history.get(history.size() - 1).getUserId();
        long userEvents = history.stream().filter(e -> e.getUserId().equals(user)).count();
        long users = history.stream().map(ClickEvent::getUserId).distinct().count();
        String savepoint = workDir.resolve("savepoint").toUri().toString();

        String in = "clicks-" + suffix;
        String scores = "scores-" + suffix;
        kafka.createTopics(PARTITIONS, in);
        kafka.createTopics(1, "alerts-" + suffix, scores, "dlq-" + suffix);
        try (StandaloneCluster cluster = StandaloneCluster.start(workDir, classpath, Map.of())) {
            String out = cluster.runCli(List.of("run", "-c", "dev.seqscore.offline.Bootstrap", jar.toString(),
                    "--input", file.toString(), "--format", "canonical", "--until", Long.toString(until),
                    "--savepoint", savepoint, "--state-backend", "rocksdb"));
            assertThat(out).contains("bootstrap: " + users + " users with state")
                    .contains("--starting-offsets timestamp:" + until);
            assertThat(workDir.resolve("savepoint/_metadata")).exists();
            assertThat(workDir.resolve("savepoint/seqscore-bootstrap.json")).exists();

            List<String> job = new ArrayList<>(List.of("--bootstrap-servers", kafka.bootstrapServers(),
                    "--input-topic", in, "--alerts-topic", "alerts-" + suffix, "--scores-topic", scores,
                    "--dead-letter-topic", "dlq-" + suffix, "--group-id", "g-" + suffix,
                    "--transactional-id-prefix", "tx-" + suffix, "--starting-offsets", "timestamp:" + until,
                    "--checkpoint-interval", "1s", "--state-backend", "rocksdb",
                    "--checkpoint-dir", workDir.resolve("checkpoints").toUri().toString()));
            List<String> wrong = new ArrayList<>(job);
            wrong.addAll(List.of("--max-parallelism", "64"));
            assertThatThrownBy(() -> cluster.submitWithCli(jar, savepoint, wrong))
                    .hasMessageContaining("cannot start from")
                    .hasMessageContaining("--max-parallelism 128");

            produceLive(in, user, until);
            String jobId = cluster.submitWithCli(jar, savepoint, job);
            cluster.waitForRunning(jobId, Duration.ofSeconds(90));
            Score first = firstScore(scores, Duration.ofSeconds(120));
            assertThat(first.getUserId()).isEqualTo(user);
            assertThat(first.getWindowLength()).as("the live click joins the user's bootstrapped window")
                    .isEqualTo((int) Math.min(50, userEvents + 1));
            cluster.cancel(jobId);
        }
    }

    /** One click of a bootstrapped user after T, and a much later one per partition to move the watermark. */
    private static void produceLive(String topic, String user, long until) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(),
                new ByteArraySerializer())) {
            long t = until + 60_000;
            ClickEvent live = ClickEvent.newBuilder().setUserId(user).setItemId("live").setCategoryId("c")
                    .setEventType("view").setEventTime(Instant.ofEpochMilli(t)).build();
            producer.send(new ProducerRecord<>(topic, 0, t, user.getBytes(StandardCharsets.UTF_8),
                    ClickEventAvro.encode(live))).get();
            for (int part = 0; part < PARTITIONS; part++) {
                long later = t + 3_600_000;
                ClickEvent flush = ClickEvent.newBuilder(live).setUserId("flush-" + part)
                        .setEventTime(Instant.ofEpochMilli(later)).build();
                producer.send(new ProducerRecord<>(topic, part, later, flush.getUserId().getBytes(
                        StandardCharsets.UTF_8), ClickEventAvro.encode(flush))).get();
            }
        }
    }

    private static Score firstScore(String topic, Duration timeout) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.GROUP_ID_CONFIG, "read-" + UUID.randomUUID());
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c, new ByteArrayDeserializer(),
                new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topic));
            long deadline = System.nanoTime() + timeout.toNanos();
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    return AvroRecords.decode(r.value(), Score.class);
                }
            }
        }
        throw new AssertionError("no committed score within " + timeout);
    }
}
