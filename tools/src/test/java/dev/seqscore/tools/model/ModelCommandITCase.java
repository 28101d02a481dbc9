package dev.seqscore.tools.model;

import static dev.seqscore.testing.Clicks.T0;
import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.kafka.EmbeddedKafkaExtension;
import dev.seqscore.lifecycle.PublishedBundles;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.testing.Clicks;
import dev.seqscore.testing.KafkaTopics;
import dev.seqscore.testing.RepoPaths;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.InjectMiniCluster;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code bin/seqscore model} against a running job: a publish reads the scorer's watermark from the REST API, takes
 * effect after it and is accepted by every subtask (exit 0); a broken bundle is stopped before it is published (exit
 * 2); a change the job refuses exits 3 with the job's reason.
 */
class ModelCommandITCase {
    private static final Duration AWAIT = Duration.ofMinutes(3);

    @RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1)
            .setNumberSlotsPerTaskManager(2)
            .build());

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();

    @TempDir
    Path dir;

    private record Run(int code, String out, String err) {}

    private static Run model(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = ModelCommand.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void publishesToARunningJobAndReportsEveryAnswer(@InjectMiniCluster MiniCluster cluster) throws Exception {
        Path base = RepoPaths.defaultModel();
        Path v2 = PublishedBundles.retrained(base, dir.resolve("v2"), "-v2");
        Path broken = PublishedBundles.retrained(base, dir.resolve("broken"), "-broken");
        PublishedBundles.corruptGolden(broken, "golden-step.jsonl");
        String in = KafkaTopics.unique("clicks");
        String control = KafkaTopics.unique("model-control");
        String status = KafkaTopics.unique("model-status");
        String scores = KafkaTopics.unique("scores");
        kafka.createTopics(2, in, scores);
        kafka.createTopics(1, control, status, "alerts", "clicks-dlq");
        List<ProducerRecord<byte[], byte[]>> clicks = new ArrayList<>();
        for (int m = 0; m < 10; m++) {
            List<String> users = List.of("u1", "u2", "u3");
            for (int i = 0; i < users.size(); i++) {
                String u = users.get(i);
                // Both partitions get clicks: without idleness, an empty one would hold the watermark back.
                clicks.add(new ProducerRecord<>(in, i % 2, u.getBytes(StandardCharsets.UTF_8), ClickEventAvro.encode(
                        Clicks.click(u).item("i" + m).at(T0.plus(Duration.ofMinutes(m))).event())));
            }
        }
        KafkaTopics.produce(kafka.bootstrapServers(), clicks);
        JobConfig config = JobConfig.parse("--bootstrap-servers", kafka.bootstrapServers(), "--input-topic", in,
                "--scores-topic", scores, "--model-control-topic", control, "--model-status-topic", status,
                "--group-id", KafkaTopics.unique("group"), "--transactional-id-prefix", KafkaTopics.unique("tx"),
                "--starting-offsets", "earliest", "--max-out-of-orderness", "0", "--idleness", "0",
                "--checkpoint-interval", "1s", "--parallelism", "2", "--state-backend", "hashmap",
                "--checkpoint-dir", dir.resolve("checkpoints").toUri().toString());
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        SeqScoreJob.assemble(env, config, ModelBundle.load(base));
        JobClient job = env.executeAsync("model-command");
        try {
            KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores, 27, AWAIT, r -> r);
            URI rest = cluster.getRestAddress().get();
            String[] common = {"--bootstrap-servers", kafka.bootstrapServers(), "--model-control-topic", control,
                    "--model-status-topic", status, "--rest", rest.toString(), "--timeout", "2m"};
            // The scorer has passed on the watermark of minute 9 (the newest click of the slower partition) less 1 ms.

            Run ok = model(concat(new String[] {"publish", v2.toString(), "--role", "serve", "--lead", "10m",
                    "--request-id", "swap-1"}, common));
            assertThat(ok.code()).as(ok.out() + ok.err()).isZero();
            assertThat(ok.out()).contains("golden events score as exported")
                    .contains("subtask 0/2: ACCEPTED model ").contains("subtask 1/2: ACCEPTED model ")
                    .contains("\"effective_at\":" + T0.plus(Duration.ofMinutes(19)).minusMillis(1).toEpochMilli());

            Run bad = model(concat(new String[] {"publish", broken.toString(), "--role", "shadow"}, common));
            assertThat(bad.code()).isEqualTo(2);
            assertThat(bad.err()).contains("is not servable").contains("golden vectors disagree");
            assertThat(bad.out()).doesNotContain("sent ");

            Run late = model(concat(new String[] {"publish", v2.toString(), "--role", "shadow", "--effective-at",
                    T0.toString()}, common));
            assertThat(late.code()).as(late.out() + late.err()).isEqualTo(3);
            assertThat(late.out()).contains("REFUSED").contains("is not after the scorer's watermark");

            Run promote = model(concat(new String[] {"promote", "--lead", "20m"}, common));
            assertThat(promote.code()).isEqualTo(3);
            assertThat(promote.out()).contains("no shadow candidate to promote");
        } finally {
            job.cancel().get();
        }
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
