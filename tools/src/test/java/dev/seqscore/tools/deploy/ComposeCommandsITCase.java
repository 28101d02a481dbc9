package dev.seqscore.tools.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.seqscore.job.JobConfig;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.kafka.EmbeddedKafkaExtension;
import dev.seqscore.tools.replay.Replay;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Stream;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * What docker-compose.yml runs, run natively: the replayer's arguments feed a real broker with the real data file,
 * and the submission's job arguments run the job on a local cluster configured with the compose file's own Flink
 * configuration (RocksDB, incremental checkpoints to the shared volume, here a directory). Only what a container
 * changes is mapped: host names, mount points, the replay rate, and the Prometheus reporter's fixed port.
 */
class ComposeCommandsITCase {
    private static final int EVENTS = 3000;
    private static final Duration AWAIT = Duration.ofMinutes(3);

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();

    @Test
    void theComposeReplayAndJobArgumentsWorkNativelyWithTheSameJarsAndFlags(@TempDir Path tmp) throws Exception {
        ComposeFile compose = ComposeFile.load();
        Path dataDir = Path.of(System.getenv().getOrDefault("SEQSCORE_DATA_DIR",
                compose.root.resolve("../shared/data").toString()));
        List<String> replay = compose.args("replay.args");
        String input = replay.get(replay.indexOf("--input") + 1);
        Path file = dataDir.resolve(input.substring("/data/".length()));
        assumeTrue(Files.isReadable(file), "no " + file + " (set SEQSCORE_DATA_DIR): the compose commands were "
                + "only checked statically");

        List<String> job = compose.args("job.args");
        kafka.createTopics(4, value(job, "--input-topic"), value(job, "--alerts-topic"),
                value(job, "--scores-topic"), value(job, "--dead-letter-topic"));

        replay.set(replay.indexOf("--input") + 1, file.toString());
        replay.set(replay.indexOf("--rate") + 1, "0");
        replay.addAll(List.of("--limit", Integer.toString(EVENTS), "--bootstrap-servers", kafka.bootstrapServers()));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = Replay.run(replay.toArray(new String[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertThat(exit).as(err.toString(StandardCharsets.UTF_8)).isZero();

        Configuration cluster = new Configuration();
        for (Map.Entry<String, String> e : compose.flinkProperties("jobmanager").entrySet()) {
            if (!e.getKey().startsWith("metrics.reporter.") && !e.getKey().startsWith("jobmanager.rpc.")) {
                cluster.setString(e.getKey(), e.getValue().replace("file:///flink-state", tmp.toUri().toString()));
            }
        }
        job.addAll(List.of("--bootstrap-servers", kafka.bootstrapServers()));
        JobConfig config = JobConfig.parse(job.toArray(new String[0]));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(cluster);
        SeqScoreJob.assemble(env, config, SeqScoreJob.loadModel(config));
        JobClient running = env.executeAsync("compose-commands");
        try {
            long scores = awaitCommitted(kafka.bootstrapServers(), config.scoresTopic());
            assertThat(scores).isPositive();
            try (Stream<Path> files = Files.walk(tmp)) {
                assertThat(files.anyMatch(p -> p.getFileName().toString().equals("_metadata")))
                        .as("a completed checkpoint on the shared volume").isTrue();
            }
        } finally {
            running.cancel().get();
        }
    }

    private static String value(List<String> args, String flag) {
        return args.get(args.indexOf(flag) + 1);
    }

    /** Committed records of the topic once some are there, read as a dashboard would (read_committed). */
    private static long awaitCommitted(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "compose-commands-check");
        long seen = 0;
        long deadline = System.nanoTime() + AWAIT.toNanos();
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(List.of(topic));
            while (seen == 0 && System.nanoTime() < deadline) {
                seen += consumer.poll(Duration.ofMillis(500)).count();
            }
        }
        return seen;
    }
}
