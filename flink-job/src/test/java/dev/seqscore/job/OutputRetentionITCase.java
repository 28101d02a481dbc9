package dev.seqscore.job;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.BOB;
import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.T0_PLUS_2H;
import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.kafka.EmbeddedKafkaExtension;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.testing.Clicks;
import dev.seqscore.testing.KafkaTopics;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A replay of 2017 clicks onto output topics with a one-hour retention: the broker's retention check deletes records
 * stamped with old times (a control topic proves that it ran), and the job's alerts, scores and dead letters, stamped
 * with their emit time, all survive it.
 */
class OutputRetentionITCase {
    private static final Map<String, String> ONE_HOUR = Map.of("retention.ms", "3600000");
    private static final Duration AWAIT = Duration.ofMinutes(3);
    private static final int CLICKS_PER_USER = 12;

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension()
            .withBrokerConfig(Map.of("log.retention.check.interval.ms", "500"));

    @TempDir
    Path checkpoints;

    @Test
    void outputOfAReplayOfOldClicksSurvivesRetention() throws Exception {
        String in = KafkaTopics.unique("clicks");
        String alerts = KafkaTopics.unique("alerts");
        String scores = KafkaTopics.unique("scores");
        String dlq = KafkaTopics.unique("dlq");
        String control = KafkaTopics.unique("control");
        kafka.createTopics(1, in);
        kafka.createTopics(1, ONE_HOUR, alerts, scores, dlq, control);

        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < CLICKS_PER_USER; i++) {
            for (String user : List.of(ALICE, BOB)) {
                ClickEvent e = Clicks.click(user).item("i" + i).at(T0.plus(Duration.ofMinutes(i))).event();
                records.add(new ProducerRecord<>(in, 0, user.getBytes(StandardCharsets.UTF_8), ClickEventAvro.encode(e)));
            }
        }
        records.add(new ProducerRecord<>(in, 0, new byte[] {1}, "not avro".getBytes(StandardCharsets.UTF_8)));
        // Moves the watermark past every click above; itself never scored.
        records.add(new ProducerRecord<>(in, 0, new byte[] {2},
                ClickEventAvro.encode(Clicks.click("flush").at(T0_PLUS_2H.plus(Duration.ofDays(1))).event())));
        KafkaTopics.produce(kafka.bootstrapServers(), records);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(1);
        SeqScoreJob.assemble(env, JobConfig.parse(
                "--bootstrap-servers", kafka.bootstrapServers(),
                "--input-topic", in, "--alerts-topic", alerts, "--scores-topic", scores, "--dead-letter-topic", dlq,
                "--group-id", KafkaTopics.unique("group"), "--transactional-id-prefix", KafkaTopics.unique("tx"),
                "--starting-offsets", "earliest", "--checkpoint-interval", "500ms",
                "--checkpoint-dir", checkpoints.toUri().toString(),
                "--threshold.purchase_30m", "0", "--threshold.churn_24h", "0", "--cooldown", "0"),
                ModelBundle.packaged());
        JobClient job = env.executeAsync("output-retention");
        int expectedScores = 2 * CLICKS_PER_USER;
        try {
            KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores, expectedScores, AWAIT, r -> r);
            KafkaTopics.awaitCommitted(kafka.bootstrapServers(), alerts, 2 * expectedScores, AWAIT, r -> r);
            KafkaTopics.awaitCommitted(kafka.bootstrapServers(), dlq, 1, AWAIT, r -> r);
        } finally {
            job.cancel().get();
        }

        // The control: records stamped in 2017, written after the job's output. Once retention has deleted them,
        // it has also judged every output record written before.
        KafkaTopics.produce(kafka.bootstrapServers(), List.of(
                new ProducerRecord<>(control, 0, T0.toEpochMilli(), new byte[] {1}, new byte[] {1}),
                new ProducerRecord<>(control, 0, T0.toEpochMilli(), new byte[] {2}, new byte[] {2})));
        long deadline = System.nanoTime() + AWAIT.toNanos();
        while (KafkaTopics.beginningOffsets(kafka.bootstrapServers(), control).get(0) == 0) {
            assertThat(System.nanoTime()).as("retention never deleted the 2017-stamped control records")
                    .isLessThan(deadline);
            LockSupport.parkNanos(Duration.ofMillis(200).toNanos());
        }

        for (String topic : List.of(scores, alerts, dlq)) {
            assertThat(KafkaTopics.beginningOffsets(kafka.bootstrapServers(), topic)).as(topic).containsEntry(0, 0L);
        }
        assertThat(KafkaTopics.readCommitted(kafka.bootstrapServers(), scores, r -> r)).hasSize(expectedScores)
                .allSatisfy(r -> assertThat(Instant.ofEpochMilli(r.timestamp())).isAfter(T0_PLUS_2H.plus(Duration.ofDays(365))));
        assertThat(KafkaTopics.readCommitted(kafka.bootstrapServers(), alerts, r -> r)).hasSize(2 * expectedScores);
        assertThat(KafkaTopics.readCommitted(kafka.bootstrapServers(), dlq, r -> r)).hasSize(1);
    }
}
