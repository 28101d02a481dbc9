package dev.seqscore.job;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.T0_PLUS_1D;
import static dev.seqscore.testing.Clicks.T0_PLUS_1M;
import static dev.seqscore.testing.Clicks.click;
import static dev.seqscore.testing.Clicks.ms;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.groups.Tuple.tuple;

import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.Score;
import dev.seqscore.events.InputDecoder;
import dev.seqscore.events.InputFormat;
import dev.seqscore.events.InputRecord;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.testing.RepoPaths;
import dev.seqscore.scoring.ScoredEvent;
import dev.seqscore.alerts.AlertIds;
import dev.seqscore.avro.Alert;
import dev.seqscore.privacy.Pseudonymizer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.flink.api.common.eventtime.TimestampAssigner;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.streaming.api.operators.ProcessOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The pipeline's own small operators: validation splitting bad records off to the INVALID side output as dead
 * letters with reason and origin, the timestamp assigner giving rejected records no say in the watermark, and the
 * mapping of scores to Avro {@link Score} records keyed by output name.
 */
class SeqScorePipelineTest {
    private static final long NOW = T0_PLUS_1M.toEpochMilli();
    private static PipelineSettings settings;

    @BeforeAll
    static void settings() {
        settings = PipelineSettings.builder(ModelBundle.load(RepoPaths.defaultModel()))
                .with(JobConfig.MAX_FUTURE_SKEW, "5m")
                .clock(() -> NOW)
                .build();
    }

    @Test
    void validationPassesGoodRecordsAndDeadLettersTheRestWithOrigin() throws Exception {
        try (var h = new OneInputStreamOperatorTestHarness<InputRecord, InputRecord>(
                new ProcessOperator<>(new SeqScorePipeline.Validate(settings.validator())))) {
            h.open();
            h.setProcessingTime(ms(T0_PLUS_1D));

            h.processElement(click(ALICE).at(T0).offset(1).record(), ms(T0));
            h.processElement(new InputDecoder(InputFormat.AVRO).decode(new byte[] {9, 9}, "clicks", 0, 2L), 0L);
            h.processElement(click("").offset(3).record(), ms(T0));
            h.processElement(click(ALICE).type("teleport").offset(4).record(), ms(T0));
            h.processElement(click(ALICE).atMillis(NOW + Duration.ofHours(1).toMillis()).offset(5).record(), ms(T0));

            assertThat(h.extractOutputValues()).extracting(r -> r.sourceOffset).containsExactly(1L);
            List<DeadLetter> dead = h.getSideOutput(SeqScorePipeline.INVALID).stream().map(StreamRecord::getValue)
                    .collect(Collectors.toList());
            assertThat(dead).extracting(DeadLetter::getReason, DeadLetter::getSourceOffset).containsExactly(
                    tuple("UNDECODABLE", 2L),
                    tuple("INVALID_FIELD", 3L),
                    tuple("UNKNOWN_EVENT_TYPE", 4L),
                    tuple("FUTURE_TIMESTAMP", 5L));
            assertThat(dead).allSatisfy(d -> {
                assertThat(d.getSourceTopic()).isEqualTo("clicks");
                assertThat(d.getDetail()).isNotBlank();
                assertThat(d.getRaw()).isNotNull();
                assertThat(d.getRecordedAt()).isEqualTo(T0_PLUS_1D);
            });
        }
    }

    @Test
    void rejectedRecordsGetNoTimestampSoTheyCannotMoveTheWatermark() {
        TimestampAssigner<InputRecord> assigner = SeqScorePipeline.watermarks(settings)
                .createTimestampAssigner(UnregisteredMetricsGroup::new);

        assertThat(assigner.extractTimestamp(click(ALICE).at(T0).record(), 7L)).isEqualTo(ms(T0));
        // A year ahead: accepted as a timestamp, it would make every later click late.
        long nextYear = NOW + Duration.ofDays(365).toMillis();
        assertThat(assigner.extractTimestamp(click(ALICE).atMillis(nextYear).record(), 7L))
                .isEqualTo(Long.MIN_VALUE);
        assertThat(assigner.extractTimestamp(click(ALICE).atMillis(null).record(), 7L)).isEqualTo(Long.MIN_VALUE);
        assertThat(assigner.extractTimestamp(
                InputRecord.undecodable("x", "clicks", 0, 0L, null), 7L)).isEqualTo(Long.MIN_VALUE);
    }

    @Test
    void scoreRecordsNameEachScoreByItsOutput() {
        var toScore = new SeqScorePipeline.ToScoreRecord(List.of("purchase_30m", "churn_24h"), "v9", null);
        ScoredEvent s = new ScoredEvent();
        s.userId = ALICE;
        s.eventType = "cart";
        s.itemId = "i1";
        s.eventTime = ms(T0);
        s.windowLength = 4;
        s.scores = new float[] {0.25f, 0.75f};

        Score r = toScore.map(s);

        assertThat(r.getUserId()).isEqualTo(ALICE);
        assertThat(r.getEventType()).isEqualTo("cart");
        assertThat(r.getItemId()).isEqualTo("i1");
        assertThat(r.getEventTime()).isEqualTo(Instant.ofEpochMilli(ms(T0)));
        assertThat(r.getWindowLength()).isEqualTo(4);
        assertThat(r.getModelVersion()).isEqualTo("v9");
        assertThat(r.getScores()).containsExactlyInAnyOrderEntriesOf(Map.of("purchase_30m", 0.25, "churn_24h", 0.75));
    }

    @Test
    void withAKeyScoresAndAlertsCarryThePseudonymAndAnAlertIdDerivedFromIt(@TempDir Path dir) throws Exception {
        Pseudonymizer p = Pseudonymizer.fromKeyFile(
                Files.writeString(dir.resolve("key"), "0123456789abcdef0123456789abcdef"), "--key");
        ScoredEvent s = new ScoredEvent();
        s.userId = ALICE;
        s.eventType = "cart";
        s.itemId = "i1";
        s.eventTime = ms(T0);
        s.windowLength = 1;
        s.scores = new float[] {0.5f};
        Alert raw = Alert.newBuilder().setAlertId(AlertIds.of(ALICE, ms(T0), "cart", "i1", "CHURN_RISK"))
                .setUserId(ALICE).setAlertType("CHURN_RISK").setOutput("churn_24h").setScore(0.9).setThreshold(0.5)
                .setScores(Map.of("churn_24h", 0.9)).setModelVersion("v9").setEventTime(T0).setEventType("cart")
                .setItemId("i1").setWindowLength(1).setEmittedAt(T0).build();

        Score score = new SeqScorePipeline.ToScoreRecord(List.of("purchase_30m"), "v9", p).map(s);
        Alert alert = new SeqScorePipeline.PseudonymizeAlerts(p).map(Alert.newBuilder(raw).build());

        assertThat(score.getUserId()).isEqualTo(p.pseudonym(ALICE)).doesNotContain(ALICE);
        assertThat(alert.getUserId()).isEqualTo(p.pseudonym(ALICE));
        assertThat(alert.getAlertId()).isEqualTo(AlertIds.of(p.pseudonym(ALICE), ms(T0), "cart", "i1", "CHURN_RISK"))
                .isNotEqualTo(raw.getAlertId());
        assertThat(alert.getScore()).isEqualTo(raw.getScore());
    }
}
