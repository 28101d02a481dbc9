package dev.seqscore.job;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.BOB;
import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.T0_PLUS_1M;
import static dev.seqscore.testing.Clicks.T0_PLUS_2M;
import static dev.seqscore.testing.Clicks.click;
import static dev.seqscore.testing.Clicks.ms;
import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.Alert;
import dev.seqscore.events.InputDecoder;
import dev.seqscore.events.InputFormat;
import dev.seqscore.events.InputRecord;
import dev.seqscore.metrics.JobMetrics;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.features.Scoring;
import dev.seqscore.scoring.BothModes;
import dev.seqscore.scoring.ScoringFixture;
import dev.seqscore.scoring.ScoringHarness;
import dev.seqscore.scoring.ScoringSettings;
import dev.seqscore.testing.CapturedMetrics;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.operators.ProcessOperator;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The metrics of the validation operator and of the scoring operator (with either model), read back through a real
 * Flink metric group in their test harnesses: each counter, histogram and gauge moves exactly as the records say,
 * under the names and labels the README's metrics table and the Grafana dashboard use. The scorer's settings come
 * from the job's own flags (PipelineSettings), as in the job.
 *
 * <p>Changed with the one scoring operator: alerts are counted by the scorer that decides them; a user's events take
 * one row per call, so a call of several rows is several users'; usersWithState counts user values, which with the
 * streaming model outlive the window by the model-state TTL.
 */
class OperatorMetricsTest {
    private static final long ONE_HOUR = Duration.ofHours(1).toMillis();

    private static ModelBundle bundle;

    @BeforeAll
    static void loadModel() {
        bundle = ScoringFixture.bundle();
    }

    // ---------------------------------------------------------------- validation

    @Test
    void validationCountsEveryRecordAndEachDeadLetterReason() throws Exception {
        long now = ms(T0_PLUS_1M);
        // Windowed: validation is the same with either model, and every bundle has the windowed one.
        PipelineSettings settings = PipelineSettings.builder(bundle)
                .with(JobConfig.SCORING, Scoring.WINDOWED)
                .with(JobConfig.MAX_FUTURE_SKEW, "5m")
                .clock(() -> now)
                .build();
        try (CapturedMetrics metrics = new CapturedMetrics();
             var h = new OneInputStreamOperatorTestHarness<InputRecord, InputRecord>(
                     new ProcessOperator<>(new SeqScorePipeline.Validate(settings.validator())),
                     metrics.environment(1))) {
            h.open();
            h.processElement(click(ALICE).at(T0).record(), ms(T0));
            h.processElement(click(BOB).at(T0).record(), ms(T0));
            h.processElement(new InputDecoder(InputFormat.AVRO).decode(new byte[] {9, 9}, "clicks", 0, 2L), 0L);
            h.processElement(click("").record(), ms(T0));
            h.processElement(click(ALICE).item("").record(), ms(T0));
            h.processElement(click(ALICE).type("teleport").record(), ms(T0));

            assertThat(metrics.counter(JobMetrics.EVENTS_RECEIVED).getCount()).isEqualTo(6);
            assertThat(deadLetters(metrics, "UNDECODABLE")).isEqualTo(1);
            assertThat(deadLetters(metrics, "INVALID_FIELD")).isEqualTo(2);
            assertThat(deadLetters(metrics, "UNKNOWN_EVENT_TYPE")).isEqualTo(1);
            assertThat(deadLetters(metrics, "FUTURE_TIMESTAMP")).isZero();
            // The scorer, which judges lateness, owns the LATE_EVENT series.
            assertThat(metrics.labelSets(JobMetrics.DEAD_LETTERS))
                    .extracting(l -> l.get(JobMetrics.REASON))
                    .containsExactlyInAnyOrder("UNDECODABLE", "INVALID_FIELD", "UNKNOWN_EVENT_TYPE",
                            "FUTURE_TIMESTAMP", "NOT_FRAMED", "UNKNOWN_SCHEMA_ID", "INCOMPATIBLE_SCHEMA",
                            "REGISTRY_UNAVAILABLE");
            assertThat(metrics.labelSets(JobMetrics.DEAD_LETTERS))
                    .as("operator-scoped, so a reporter labels them with the operator and subtask")
                    .allSatisfy(l -> assertThat(l).containsKeys("operator_id", "subtask_index", "job_name"));
        }
    }

    private static long deadLetters(CapturedMetrics metrics, String reason) {
        return metrics.counter(JobMetrics.DEAD_LETTERS, JobMetrics.REASON, reason).getCount();
    }

    // ---------------------------------------------------------------- scoring

    /** The scorer's settings from the job's flags: this mode, a 1 h horizon, and {@code more}. */
    private static ScoringSettings scorer(Scoring mode, String... more) {
        ScoringFixture.assumeServes(mode);
        List<String> args = new ArrayList<>(List.of("--scoring", mode.cliName(), "--horizon", "1h",
                "--score-max-delay", "5ms", "--state-ttl", "0"));
        args.addAll(List.of(more));
        return PipelineSettings.builder(bundle).args(args.toArray(String[]::new)).build().scoringSettings();
    }

    private static long[] values(Histogram h) {
        long[] v = h.getStatistics().getValues();
        Arrays.sort(v);
        return v;
    }

    @BothModes
    void scorerRecordsBatchesInferenceTimeWindowLengthsAndLag(Scoring mode) throws Exception {
        try (CapturedMetrics metrics = new CapturedMetrics();
             var h = ScoringHarness.open(scorer(mode, "--score-batch", "4"), metrics)) {
            long now = ms(T0) + ONE_HOUR;
            h.h.setProcessingTime(now);
            // Four users' first events fill a call at once; then two of them again, scored on the deadline.
            for (String u : List.of(ALICE, BOB, "carol", "dave")) {
                h.send(click(u).at(T0));
            }
            long before = System.nanoTime();
            h.watermark(ms(T0));
            h.send(click(ALICE).item("i2").at(T0_PLUS_1M));
            h.send(click(BOB).item("i2").at(T0_PLUS_1M));
            h.watermark(ms(T0_PLUS_1M));
            long wallMicros = (System.nanoTime() - before) / 1_000;

            assertThat(h.scored()).hasSize(6);
            assertThat(metrics.counter(JobMetrics.EVENTS_SCORED).getCount()).isEqualTo(6);
            assertThat(values(metrics.histogram(JobMetrics.BATCH_SIZE))).containsExactly(2, 4);
            assertThat(values(metrics.histogram(JobMetrics.WINDOW_LENGTH))).containsExactly(1, 1, 1, 1, 2, 2);

            Histogram call = metrics.histogram(JobMetrics.INFERENCE_CALL_MICROS);
            Histogram perEvent = metrics.histogram(JobMetrics.INFERENCE_EVENT_MICROS);
            assertThat(call.getCount()).as("one sample per ONNX Runtime call").isEqualTo(2);
            assertThat(perEvent.getCount()).isEqualTo(2);
            assertThat(call.getStatistics().getMin()).isPositive();
            assertThat(call.getStatistics().getMax()).isLessThanOrEqualTo(wallMicros);
            assertThat(perEvent.getStatistics().getMax()).isLessThanOrEqualTo(call.getStatistics().getMax());

            // Processing time minus event time when emitted: the full call at once, the other on its deadline.
            long deadline = now + 5;
            assertThat(values(metrics.histogram(JobMetrics.EVENT_TIME_LAG_MS))).containsExactly(
                    deadline - ms(T0_PLUS_1M), deadline - ms(T0_PLUS_1M), now - ms(T0), now - ms(T0),
                    now - ms(T0), now - ms(T0));
        }
    }

    @BothModes
    void scorerBatchesAreCappedAndCountedPerCall(Scoring mode) throws Exception {
        try (CapturedMetrics metrics = new CapturedMetrics();
             var h = ScoringHarness.open(scorer(mode, "--score-batch", "2"), metrics)) {
            for (int i = 0; i < 5; i++) {
                h.send(click("user" + i).at(T0));
            }
            h.watermark(ms(T0));

            assertThat(values(metrics.histogram(JobMetrics.BATCH_SIZE))).containsExactly(1, 2, 2);
            assertThat(metrics.histogram(JobMetrics.INFERENCE_CALL_MICROS).getCount()).isEqualTo(3);
            assertThat(metrics.counter(JobMetrics.EVENTS_SCORED).getCount()).isEqualTo(5);
        }
    }

    @BothModes
    void lateEventsCountAsLateAndAsLateEventDeadLettersAndDuplicatesAsDuplicates(Scoring mode) throws Exception {
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = ScoringHarness.open(scorer(mode), metrics)) {
            h.send(click(ALICE).at(T0_PLUS_1M));
            h.send(click(ALICE).at(T0_PLUS_1M));
            h.watermark(ms(T0_PLUS_1M));
            h.send(click(ALICE).at(T0));
            h.send(click(BOB).at(T0_PLUS_1M));

            assertThat(metrics.counter(JobMetrics.EVENTS_SCORED).getCount()).isEqualTo(1);
            assertThat(metrics.counter(JobMetrics.DUPLICATE_EVENTS).getCount()).isEqualTo(1);
            assertThat(metrics.counter(JobMetrics.LATE_EVENTS).getCount()).isEqualTo(2);
            assertThat(metrics.counter(JobMetrics.DEAD_LETTERS, JobMetrics.REASON, "LATE_EVENT").getCount())
                    .isEqualTo(2);
            assertThat(h.late()).hasSize(2);
        }
    }

    @BothModes
    void modelVersionIsAGaugeOfOneLabelledWithTheServedModelsVersion(Scoring mode) throws Exception {
        ScoringSettings s = scorer(mode);
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = ScoringHarness.open(s, metrics)) {
            String version = s.served().modelVersion();
            assertThat(metrics.gauge(JobMetrics.MODEL_INFO, JobMetrics.MODEL_VERSION, version).getValue())
                    .isEqualTo(1);
            assertThat(metrics.labelSets(JobMetrics.MODEL_INFO)).hasSize(1);
            assertThat(metrics.counter(JobMetrics.MODEL_STATE_RESTARTS).getCount()).isZero();
        }
    }

    /**
     * Windowed (no model-state TTL): a user counts from its first scored event until its value goes at newest + H.
     * Incremental with a model-state TTL of 2 h: until last event + 2 h, past the window.
     */
    @BothModes
    void usersWithStateFollowValuesCreatedAndClearedByTheirTimer(Scoring mode) throws Exception {
        long retention = mode == Scoring.INCREMENTAL ? 2 * ONE_HOUR : ONE_HOUR;
        try (CapturedMetrics metrics = new CapturedMetrics();
             var h = ScoringHarness.open(scorer(mode, "--model-state-ttl", mode == Scoring.INCREMENTAL ? "2h" : "0",
                     "--cooldown", "0"), metrics)) {
            var users = metrics.gauge(JobMetrics.USERS_WITH_STATE);
            h.send(click(ALICE).at(T0));
            assertThat(users.getValue()).as("waiting for the watermark is not a user yet").isEqualTo(0L);

            h.send(click(BOB).at(T0));
            h.watermark(ms(T0));
            assertThat(users.getValue()).isEqualTo(2L);

            h.send(click(ALICE).item("i2").at(T0_PLUS_2M));
            h.watermark(ms(T0_PLUS_2M));
            assertThat(users.getValue()).as("a second event does not add a user").isEqualTo(2L);

            h.watermark(ms(T0) + retention - 1);
            assertThat(users.getValue()).isEqualTo(2L);
            h.watermark(ms(T0) + retention);
            assertThat(users.getValue()).as("bob's value is gone").isEqualTo(1L);
            h.watermark(ms(T0_PLUS_2M) + retention);
            assertThat(users.getValue()).isEqualTo(0L);
            assertThat(h.h.numKeyedStateEntries()).isZero();
        }
    }

    @BothModes
    void usersWithStateSurvivesACheckpointRestore(Scoring mode) throws Exception {
        ScoringSettings s = scorer(mode, "--model-state-ttl", "0", "--cooldown", "0");
        OperatorSubtaskState snapshot;
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = ScoringHarness.open(s, metrics)) {
            h.send(click(ALICE).at(T0));
            h.send(click(BOB).at(T0));
            h.watermark(ms(T0));
            assertThat(metrics.gauge(JobMetrics.USERS_WITH_STATE).getValue()).isEqualTo(2L);
            snapshot = h.checkpoint(1L);
        }
        try (CapturedMetrics metrics = new CapturedMetrics();
             var h = ScoringHarness.restore(s, snapshot, null, metrics)) {
            var users = metrics.gauge(JobMetrics.USERS_WITH_STATE);
            assertThat(users.getValue()).isEqualTo(2L);

            h.watermark(ms(T0) + ONE_HOUR);
            assertThat(users.getValue()).as("the restored values are cleared and uncounted").isEqualTo(0L);
        }
    }

    // ---------------------------------------------------------------- alerts and reasons

    @BothModes
    void alertsAreCountedByTypeAsTheyAreEmittedNotWhenSuppressed(Scoring mode) throws Exception {
        ScoringSettings s0 = scorer(mode);
        List<String> outputs = s0.served().outputNames();
        String[] types = {s0.alerts().rules.get(0).alertType, s0.alerts().rules.get(1).alertType};
        // Every event reaches both thresholds; the cooldown (10 min) suppresses Alice's second.
        ScoringSettings s = scorer(mode, "--threshold." + outputs.get(0), "0.0", "--threshold." + outputs.get(1),
                "0.0", "--cooldown", "10m");
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = ScoringHarness.open(s, metrics)) {
            var first = metrics.counter(JobMetrics.ALERTS_EMITTED, JobMetrics.ALERT_TYPE, types[0]);
            var second = metrics.counter(JobMetrics.ALERTS_EMITTED, JobMetrics.ALERT_TYPE, types[1]);
            assertThat(first.getCount()).isZero();
            assertThat(second.getCount()).isZero();

            h.send(click(ALICE).at(T0));
            h.send(click(ALICE).item("i2").at(T0_PLUS_1M)); // within both cooldowns
            h.send(click(BOB).at(T0_PLUS_2M));
            h.watermark(ms(T0_PLUS_2M));

            assertThat(h.scored()).hasSize(3);
            List<Alert> alerts = h.alerts();
            assertThat(alerts).hasSize(4);
            assertThat(first.getCount()).isEqualTo(2)
                    .isEqualTo(alerts.stream().filter(a -> a.getAlertType().equals(types[0])).count());
            assertThat(second.getCount()).isEqualTo(2)
                    .isEqualTo(alerts.stream().filter(a -> a.getAlertType().equals(types[1])).count());
            assertThat(metrics.labelSets(JobMetrics.ALERTS_EMITTED)).extracting(l -> l.get(JobMetrics.ALERT_TYPE))
                    .containsExactlyInAnyOrder(types);
        }
    }

    @BothModes
    void explainedEventsAreCountedAndEachReasonsCallTimed(Scoring mode) throws Exception {
        List<String> outputs = scorer(mode).served().outputNames();
        // Purchase reaches its threshold at every event, churn at none: every event is explained.
        ScoringSettings s = scorer(mode, "--threshold." + outputs.get(0), "0.0", "--threshold." + outputs.get(1),
                "1.0", "--alert-reasons", "2", "--score-batch", "3");
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = ScoringHarness.open(s, metrics)) {
            for (String u : List.of(ALICE, BOB, "carol", "dave")) {
                h.send(click(u).at(T0));
            }
            h.watermark(ms(T0));

            assertThat(h.scored()).hasSize(4).allSatisfy(e -> assertThat(e.reasons).isNotEmpty());
            assertThat(metrics.counter(JobMetrics.EVENTS_EXPLAINED).getCount()).isEqualTo(4);
            assertThat(metrics.histogram(JobMetrics.EXPLAIN_CALL_MICROS).getCount()).as("one per scored batch")
                    .isEqualTo(2);
        }
    }

    @Test
    void lateEventsAreTheScorersOnlyDeadLetters() throws Exception {
        try (CapturedMetrics metrics = new CapturedMetrics();
             var h = ScoringHarness.open(scorer(Scoring.WINDOWED), metrics)) {
            assertThat(metrics.labelSets(JobMetrics.DEAD_LETTERS)).extracting(l -> l.get(JobMetrics.REASON))
                    .containsExactly("LATE_EVENT");
            assertThat(h.late()).isEmpty();
        }
    }
}
