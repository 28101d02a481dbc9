package dev.seqscore.job;

import static dev.seqscore.testing.Clicks.T0;
import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.ModelEvent;
import dev.seqscore.avro.Score;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.features.Scoring;
import dev.seqscore.kafka.EmbeddedKafkaExtension;
import dev.seqscore.lifecycle.GoldenCheck;
import dev.seqscore.lifecycle.ModelControl;
import dev.seqscore.lifecycle.PublishedBundles;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.testing.Clicks;
import dev.seqscore.testing.KafkaTopics;
import dev.seqscore.testing.RepoPaths;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A running job, two scorer subtasks on two TaskManagers, real Kafka: a retrained bundle published on the control
 * topic serves every event from its effective time on and none before, with no restart and no event lost or scored
 * twice; a candidate published as shadow writes its scores to the shadow scores topic without alerting; a bundle
 * whose golden vectors disagree is refused by every subtask, with the reason on the status topic, and the job keeps
 * serving.
 */
class ModelSwapITCase {
    private static final Duration AWAIT = Duration.ofMinutes(3);
    private static final List<String> USERS = List.of("u-ann", "u-ben", "u-cid", "u-dee");
    private static final int MINUTES = 30;
    private static final long E = T0.plus(Duration.ofMinutes(20)).toEpochMilli();

    @RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(2)
            .setNumberSlotsPerTaskManager(1)
            .build());

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();

    @TempDir
    Path dir;

    @Test
    void aPublishedModelServesFromItsEffectiveTimeAndABadOneIsRefused() throws Exception {
        Path base = RepoPaths.defaultModel();
        String baseVersion = ModelBundle.load(base).served(Scoring.INCREMENTAL).modelVersion();
        Path v2 = PublishedBundles.retrained(base, dir.resolve("v2"), "-v2");
        Path v3 = PublishedBundles.retrained(base, dir.resolve("v3"), "-v3");
        Path bad = PublishedBundles.retrained(base, dir.resolve("bad"), "-bad");
        PublishedBundles.corruptGolden(bad, GoldenCheck.fileOf(ModelBundle.load(base).spec(), Scoring.INCREMENTAL));

        String in = KafkaTopics.unique("clicks");
        String control = KafkaTopics.unique("model-control");
        String status = KafkaTopics.unique("model-status");
        String scores = KafkaTopics.unique("scores");
        String shadowScores = KafkaTopics.unique("shadow-scores");
        String alerts = KafkaTopics.unique("alerts");
        String dlq = KafkaTopics.unique("dlq");
        kafka.createTopics(2, in, scores);
        kafka.createTopics(1, control, status, shadowScores, alerts, dlq);
        KafkaTopics.produce(kafka.bootstrapServers(), clicks(in, 0, 15));

        JobConfig config = JobConfig.parse("--bootstrap-servers", kafka.bootstrapServers(),
                "--input-topic", in, "--alerts-topic", alerts, "--scores-topic", scores, "--dead-letter-topic", dlq,
                "--model-control-topic", control, "--model-status-topic", status,
                "--shadow-scores-topic", shadowScores,
                "--group-id", KafkaTopics.unique("group"), "--transactional-id-prefix", KafkaTopics.unique("tx"),
                "--starting-offsets", "earliest", "--max-out-of-orderness", "0",
                // No idleness: a partition read a moment later must not find the other one's clicks past its own.
                "--idleness", "0", "--checkpoint-interval", "1s", "--parallelism", "2", "--state-backend", "hashmap",
                "--checkpoint-dir", dir.resolve("checkpoints").toUri().toString());
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        SeqScoreJob.assemble(env, config, ModelBundle.load(base));
        JobClient job = env.executeAsync("model-swap");
        try {
            // Each user's clicks up to minute 14 are scored once minute 15's pass the watermark.
            KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores, USERS.size() * 15, AWAIT, r -> r);

            KafkaTopics.produce(kafka.bootstrapServers(), List.of(
                    controlRecord(control, ModelControl.publish("bad", ModelControl.Role.SERVE, bad.toString(), E)),
                    controlRecord(control, ModelControl.publish("swap", ModelControl.Role.SERVE, v2.toString(), E)),
                    controlRecord(control, ModelControl.publish("cand", ModelControl.Role.SHADOW, v3.toString(), E))));
            List<ModelEvent> answers = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), status, 6, AWAIT,
                    r -> AvroRecords.decode(r.value(), ModelEvent.class));

            KafkaTopics.produce(kafka.bootstrapServers(), clicks(in, 16, MINUTES));
            // One more click per partition, far ahead, moves the watermark past every user's last one.
            List<ProducerRecord<byte[], byte[]>> ahead = new ArrayList<>();
            for (int p = 0; p < 2; p++) {
                ahead.add(new ProducerRecord<>(in, p, bytes("u-ahead-" + p), ClickEventAvro.encode(
                        Clicks.click("u-ahead-" + p).at(T0.plus(Duration.ofHours(3))).event())));
            }
            KafkaTopics.produce(kafka.bootstrapServers(), ahead);
            int expected = USERS.size() * (MINUTES + 1);
            List<Score> scored = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores, expected, AWAIT,
                    r -> AvroRecords.decode(r.value(), Score.class));
            List<Score> shadowed = KafkaTopics.readCommitted(kafka.bootstrapServers(), shadowScores,
                    r -> AvroRecords.decode(r.value(), Score.class));
            answers = KafkaTopics.readCommitted(kafka.bootstrapServers(), status,
                    r -> AvroRecords.decode(r.value(), ModelEvent.class));

            List<Score> users = scored.stream().filter(s -> USERS.contains(s.getUserId().toString())).toList();
            assertThat(users).hasSize(expected);
            Set<String> seen = new HashSet<>();
            for (Score s : users) {
                assertThat(seen.add(s.getUserId() + "@" + s.getEventTime())).as("scored once: %s", s).isTrue();
                assertThat(s.getModelVersion().toString()).as("%s", s)
                        .isEqualTo(s.getEventTime().toEpochMilli() < E ? baseVersion : baseVersion + "-v2");
            }
            assertThat(shadowed).isNotEmpty().allSatisfy(s -> {
                assertThat(s.getModelVersion().toString()).isEqualTo(baseVersion + "-v3");
                assertThat(s.getEventTime().toEpochMilli()).isGreaterThanOrEqualTo(E);
            });
            assertThat(shadowed.stream().filter(s -> USERS.contains(s.getUserId().toString())))
                    .hasSize(USERS.size() * (MINUTES - 20 + 1));
            assertThat(answers.stream().filter(a -> "bad".equals(str(a.getRequestId()))))
                    .hasSize(2).allSatisfy(a -> {
                        assertThat(a.getStatus().toString()).isEqualTo("REFUSED");
                        assertThat(a.getReason().toString()).contains("golden vectors disagree");
                    });
            assertThat(answers.stream().filter(a -> "swap".equals(str(a.getRequestId()))
                    && a.getStatus().toString().equals("ACCEPTED"))).hasSize(2)
                    .extracting(a -> a.getSubtask()).containsExactlyInAnyOrder(0, 1);
            assertThat(answers.stream().filter(a -> a.getStatus().toString().equals("ACTIVE"))).isNotEmpty();
            assertThat(job.getJobStatus().get().isGloballyTerminalState()).isFalse();
        } finally {
            job.cancel().get();
        }
    }

    private static String str(CharSequence s) {
        return s == null ? null : s.toString();
    }

    private static ProducerRecord<byte[], byte[]> controlRecord(String topic, ModelControl c) {
        return new ProducerRecord<>(topic, bytes(c.requestId()), bytes(c.toJson()));
    }

    private static List<ProducerRecord<byte[], byte[]>> clicks(String topic, int fromMinute, int toMinute) {
        String[] types = {"view", "view", "fav", "cart", "view", "buy"};
        List<ProducerRecord<byte[], byte[]>> out = new ArrayList<>();
        for (int m = fromMinute; m <= toMinute; m++) {
            for (String u : USERS) {
                out.add(new ProducerRecord<>(topic, bytes(u), ClickEventAvro.encode(Clicks.click(u)
                        .type(types[(m + u.length()) % types.length]).item("i" + (m % 5))
                        .at(T0.plus(Duration.ofMinutes(m))).event())));
            }
        }
        return out;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
