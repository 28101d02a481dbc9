package dev.seqscore.job;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.BOB;
import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.T0_PLUS_1M;
import static dev.seqscore.testing.Clicks.T0_PLUS_2M;
import static dev.seqscore.testing.Clicks.T0_PLUS_5M;
import static dev.seqscore.testing.Clicks.click;
import static dev.seqscore.testing.Clicks.ms;
import static dev.seqscore.testing.Clicks.scored;
import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.alerts.AlertFunction;
import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.avro.Alert;
import dev.seqscore.events.InputDecoder;
import dev.seqscore.events.InputFormat;
import dev.seqscore.events.InputRecord;
import dev.seqscore.metrics.JobMetrics;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.testing.CapturedMetrics;
import dev.seqscore.testing.Clicks;
import dev.seqscore.testing.RepoPaths;
import dev.seqscore.scoring.ScoredEvent;
import dev.seqscore.scoring.BatchScoringOperator;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.operators.KeyedProcessOperator;
import org.apache.flink.streaming.api.operators.ProcessOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The metrics of the three operators, read back through a real Flink metric group in their test harnesses: each
 * counter, histogram and gauge moves exactly as the records say, under the names and labels the README's metrics
 * table and the Grafana dashboard use.
 */
class OperatorMetricsTest {
    private static final int MAX_PARALLELISM = 128;
    private static final long ONE_HOUR = Duration.ofHours(1).toMillis();
    private static final Duration MAX_DELAY = Duration.ofMillis(5);

    private static ModelBundle bundle;

    @BeforeAll
    static void loadModel() {
        bundle = ModelBundle.load(RepoPaths.defaultModel());
    }

    // ---------------------------------------------------------------- validation

    @Test
    void validationCountsEveryRecordAndEachDeadLetterReason() throws Exception {
        long now = ms(T0_PLUS_1M);
        PipelineSettings settings = PipelineSettings.builder(bundle)
                .maxFutureSkew(Duration.ofMinutes(5))
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

    private static KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent> scorer(
            CapturedMetrics metrics, int maxBatch) throws Exception {
        var op = new BatchScoringOperator(bundle, bundle.spec().maxEvents(), ONE_HOUR, Duration.ZERO, 1, maxBatch,
                MAX_DELAY);
        return new KeyedOneInputStreamOperatorTestHarness<>(op, r -> r.userId, Types.STRING,
                metrics.environment(MAX_PARALLELISM));
    }

    /** The watermark, then the batching deadline, so whatever became ready is scored. */
    private static void watermark(KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent> h, long w)
            throws Exception {
        h.processWatermark(w);
        h.setProcessingTime(h.getProcessingTime() + MAX_DELAY.toMillis());
    }

    private static void send(KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent> h,
            Clicks.Builder c) throws Exception {
        h.processElement(c.record(), c.millis());
    }

    private static long[] values(Histogram h) {
        long[] v = h.getStatistics().getValues();
        Arrays.sort(v);
        return v;
    }

    @Test
    void scorerRecordsBatchesInferenceTimeWindowLengthsAndLag() throws Exception {
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = scorer(metrics, 64)) {
            h.open();
            // All four become ready at one watermark, Alice's and Bob's alike: one call of 4.
            send(h, click(ALICE).item("i1").at(T0));
            send(h, click(ALICE).item("i2").at(T0));
            send(h, click(BOB).at(T0));
            send(h, click(ALICE).item("i3").at(T0_PLUS_1M));
            long before = System.currentTimeMillis();
            watermark(h, ms(T0_PLUS_1M));
            long after = System.currentTimeMillis();

            assertThat(h.extractOutputValues()).hasSize(4);
            assertThat(metrics.counter(JobMetrics.EVENTS_SCORED).getCount()).isEqualTo(4);
            assertThat(values(metrics.histogram(JobMetrics.BATCH_SIZE))).containsExactly(4);
            assertThat(values(metrics.histogram(JobMetrics.WINDOW_LENGTH))).containsExactly(1, 1, 2, 3);

            Histogram call = metrics.histogram(JobMetrics.INFERENCE_CALL_MICROS);
            Histogram perEvent = metrics.histogram(JobMetrics.INFERENCE_EVENT_MICROS);
            assertThat(call.getCount()).as("one sample per ONNX Runtime call").isEqualTo(1);
            assertThat(perEvent.getCount()).isEqualTo(1);
            assertThat(call.getStatistics().getMin()).isPositive();
            assertThat(call.getStatistics().getMax()).isLessThanOrEqualTo((after - before + 1) * 1_000);
            assertThat(perEvent.getStatistics().getMax()).isLessThanOrEqualTo(call.getStatistics().getMax());

            // now - event time, read once per batch while it is emitted.
            long[] lag = values(metrics.histogram(JobMetrics.EVENT_TIME_LAG_MS));
            assertThat(lag).hasSize(4);
            assertThat(lag[0]).isBetween(before - ms(T0_PLUS_1M), after - ms(T0_PLUS_1M));
            assertThat(lag[3]).isBetween(before - ms(T0), after - ms(T0));
        }
    }

    @Test
    void scorerBatchesAreCappedAndCountedPerCall() throws Exception {
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = scorer(metrics, 2)) {
            h.open();
            for (int i = 0; i < 5; i++) {
                send(h, click(ALICE).item("i" + i).at(T0));
            }
            watermark(h, ms(T0));

            assertThat(values(metrics.histogram(JobMetrics.BATCH_SIZE))).containsExactly(1, 2, 2);
            assertThat(metrics.histogram(JobMetrics.INFERENCE_CALL_MICROS).getCount()).isEqualTo(3);
            assertThat(metrics.counter(JobMetrics.EVENTS_SCORED).getCount()).isEqualTo(5);
        }
    }

    @Test
    void lateEventsCountAsLateAndAsLateEventDeadLettersAndDuplicatesAsDuplicates() throws Exception {
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = scorer(metrics, 64)) {
            h.open();
            send(h, click(ALICE).at(T0_PLUS_1M));
            send(h, click(ALICE).at(T0_PLUS_1M));
            watermark(h, ms(T0_PLUS_1M));
            send(h, click(ALICE).at(T0));
            send(h, click(BOB).at(T0_PLUS_1M));

            assertThat(metrics.counter(JobMetrics.EVENTS_SCORED).getCount()).isEqualTo(1);
            assertThat(metrics.counter(JobMetrics.DUPLICATE_EVENTS).getCount()).isEqualTo(1);
            assertThat(metrics.counter(JobMetrics.LATE_EVENTS).getCount()).isEqualTo(2);
            assertThat(metrics.counter(JobMetrics.DEAD_LETTERS, JobMetrics.REASON, "LATE_EVENT").getCount())
                    .isEqualTo(2);
            assertThat(h.getSideOutput(BatchScoringOperator.LATE)).hasSize(2);
        }
    }

    @Test
    void modelVersionIsAGaugeOfOneLabelledWithTheVersion() throws Exception {
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = scorer(metrics, 64)) {
            h.open();

            String version = bundle.spec().modelVersion();
            assertThat(metrics.gauge(JobMetrics.MODEL_INFO, JobMetrics.MODEL_VERSION, version).getValue())
                    .isEqualTo(1);
            assertThat(metrics.labelSets(JobMetrics.MODEL_INFO)).hasSize(1);
        }
    }

    @Test
    void usersWithStateFollowsWindowsCreatedAndClearedByTheirHorizonTimer() throws Exception {
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = scorer(metrics, 64)) {
            h.open();
            var users = metrics.gauge(JobMetrics.USERS_WITH_STATE);
            send(h, click(ALICE).at(T0));
            assertThat(users.getValue()).as("waiting for the watermark is not a window yet").isEqualTo(0L);

            send(h, click(BOB).at(T0));
            watermark(h, ms(T0));
            assertThat(users.getValue()).isEqualTo(2L);

            send(h, click(ALICE).at(T0_PLUS_2M));
            watermark(h, ms(T0_PLUS_2M));
            assertThat(users.getValue()).as("a second event does not add a user").isEqualTo(2L);

            watermark(h, ms(T0) + ONE_HOUR);
            assertThat(users.getValue()).as("bob's window is past its horizon").isEqualTo(1L);
            watermark(h, ms(T0_PLUS_2M) + ONE_HOUR);
            assertThat(users.getValue()).isEqualTo(0L);
            assertThat(h.numKeyedStateEntries()).isZero();
        }
    }

    @Test
    void usersWithStateSurvivesACheckpointRestore() throws Exception {
        OperatorSubtaskState snapshot;
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = scorer(metrics, 64)) {
            h.open();
            send(h, click(ALICE).at(T0));
            send(h, click(BOB).at(T0));
            watermark(h, ms(T0));
            assertThat(metrics.gauge(JobMetrics.USERS_WITH_STATE).getValue()).isEqualTo(2L);
            snapshot = h.snapshot(1L, ms(T0));
        }
        try (CapturedMetrics metrics = new CapturedMetrics(); var h = scorer(metrics, 64)) {
            h.initializeState(snapshot);
            h.open();
            var users = metrics.gauge(JobMetrics.USERS_WITH_STATE);
            assertThat(users.getValue()).isEqualTo(2L);

            watermark(h, ms(T0) + ONE_HOUR);
            assertThat(users.getValue()).as("the restored windows are cleared and uncounted").isEqualTo(0L);
        }
    }

    // ---------------------------------------------------------------- alerts

    @Test
    void alertsAreCountedByTypeAsTheyAreEmittedNotWhenSuppressed() throws Exception {
        AlertPolicy policy = new AlertPolicy(List.of(
                new AlertPolicy.Rule("purchase_30m", "HIGH_PURCHASE_INTENT", 0.5),
                new AlertPolicy.Rule("churn_24h", "CHURN_RISK", 0.75)),
                Duration.ofMinutes(10).toMillis(), "model-v1");
        try (CapturedMetrics metrics = new CapturedMetrics();
             var h = new KeyedOneInputStreamOperatorTestHarness<>(
                     new KeyedProcessOperator<>(new AlertFunction(policy, Duration.ZERO)), (ScoredEvent s) -> s.userId,
                     Types.STRING, metrics.environment(MAX_PARALLELISM))) {
            h.open();
            var purchase = metrics.counter(JobMetrics.ALERTS_EMITTED, JobMetrics.ALERT_TYPE, "HIGH_PURCHASE_INTENT");
            var churn = metrics.counter(JobMetrics.ALERTS_EMITTED, JobMetrics.ALERT_TYPE, "CHURN_RISK");
            assertThat(purchase.getCount()).isZero();
            assertThat(churn.getCount()).isZero();

            h.processElement(scored(ALICE, T0, 0.9f, 0.9f));
            h.processElement(scored(ALICE, T0_PLUS_1M, 0.9f, 0.1f)); // within the purchase cooldown
            h.processElement(scored(BOB, T0_PLUS_2M, 0.9f, 0.1f));
            h.processElement(scored(BOB, T0_PLUS_5M, 0.1f, 0.1f)); // below both thresholds

            List<Alert> alerts = h.extractOutputValues();
            assertThat(alerts).hasSize(3);
            assertThat(purchase.getCount()).isEqualTo(2);
            assertThat(churn.getCount()).isEqualTo(1);
            assertThat(metrics.labelSets(JobMetrics.ALERTS_EMITTED)).extracting(l -> l.get(JobMetrics.ALERT_TYPE))
                    .containsExactlyInAnyOrder("HIGH_PURCHASE_INTENT", "CHURN_RISK");
        }
    }


}
