package dev.seqscore.alerts;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.BOB;
import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.T0_PLUS_10M;
import static dev.seqscore.testing.Clicks.T0_PLUS_11M;
import static dev.seqscore.testing.Clicks.T0_PLUS_1D;
import static dev.seqscore.testing.Clicks.T0_PLUS_1M;
import static dev.seqscore.testing.Clicks.T0_PLUS_2M;
import static dev.seqscore.testing.Clicks.T0_PLUS_5M;
import static dev.seqscore.testing.Clicks.T0_PLUS_9M;
import static dev.seqscore.testing.Clicks.ms;
import static dev.seqscore.testing.Clicks.scored;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.AlertReason;
import dev.seqscore.reasons.Reason;
import dev.seqscore.scoring.ScoredEvent;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.operators.KeyedProcessOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The alert operator in a keyed harness: thresholds (reaching one is crossing it), the per-user, per-alert-type
 * cooldown in event time, the event-time timers that clear cooldown state once it no longer matters, the
 * processing-time TTL backstop, deterministic alert ids, and the content of an alert.
 */
class AlertFunctionTest {
    private static final String PURCHASE = "HIGH_PURCHASE_INTENT";
    private static final String CHURN = "CHURN_RISK";
    private static final long COOLDOWN_MS = Duration.ofMinutes(10).toMillis();
    private static final Duration TTL = Duration.ofHours(48);
    private static final AlertPolicy POLICY = policy(COOLDOWN_MS);

    private KeyedOneInputStreamOperatorTestHarness<String, ScoredEvent, Alert> harness;

    private static AlertPolicy policy(long cooldownMs) {
        return new AlertPolicy(List.of(
                new AlertPolicy.Rule("purchase_30m", PURCHASE, 0.5),
                new AlertPolicy.Rule("churn_24h", CHURN, 0.75)), cooldownMs, "model-v1");
    }

    private static KeyedOneInputStreamOperatorTestHarness<String, ScoredEvent, Alert> open(AlertFunction fn)
            throws Exception {
        var h = new KeyedOneInputStreamOperatorTestHarness<>(new KeyedProcessOperator<>(fn), s -> s.userId,
                Types.STRING);
        h.open();
        return h;
    }

    @BeforeEach
    void setUp() throws Exception {
        harness = open(new AlertFunction(POLICY, TTL));
    }

    @AfterEach
    void tearDown() throws Exception {
        harness.close();
    }


    private List<Alert> alerts() {
        return harness.extractOutputValues();
    }

    @Test
    void eachAlertCarriesTheReasonsOfItsOwnOutputBestFirst() throws Exception {
        StreamRecord<ScoredEvent> both = scored(ALICE, T0, 0.9f, 0.8f);
        both.getValue().reasons = new Reason[] {
            new Reason(0, "carts_without_buy", "3 carts without a buy in the window", 0.2f),
            new Reason(0, "repeat_views", "4 earlier events on this item", 0.05f),
            new Reason(1, "time_since_previous", "6 h since the previous event", 0.3f)};
        harness.processElement(both);
        harness.processElement(scored(BOB, T0, 0.9f, 0.1f));

        List<Alert> out = alerts();
        assertThat(out.get(0).getAlertType()).isEqualTo(PURCHASE);
        assertThat(out.get(0).getReasons()).extracting(AlertReason::getGroup)
                .containsExactly("carts_without_buy", "repeat_views");
        assertThat(out.get(0).getReasons().get(0).getText()).isEqualTo("3 carts without a buy in the window");
        assertThat(out.get(0).getReasons().get(0).getScoreDrop()).isCloseTo(0.2, within(1e-6));
        assertThat(out.get(1).getAlertType()).isEqualTo(CHURN);
        assertThat(out.get(1).getReasons()).extracting(AlertReason::getGroup).containsExactly("time_since_previous");
        assertThat(out.get(2).getUserId()).isEqualTo(BOB);
        assertThat(out.get(2).getReasons()).as("a score without reasons alerts with none").isEmpty();
    }

    @Test
    void scoreReachingTheThresholdAlerts() throws Exception {
        harness.processElement(scored(ALICE, T0, 0.5f, 0.75f));

        assertThat(alerts()).extracting(Alert::getAlertType).containsExactly(PURCHASE, CHURN);
    }

    @Test
    void scoreBelowTheThresholdDoesNotAlertNorKeepState() throws Exception {
        harness.processElement(scored(ALICE, T0, Math.nextDown(0.5f), 0.74f));

        assertThat(alerts()).isEmpty();
        assertThat(harness.numKeyedStateEntries()).isZero();
        assertThat(harness.numEventTimeTimers()).isZero();
    }

    @Test
    void secondCrossingWithinTheCooldownIsSuppressed() throws Exception {
        harness.processElement(scored(ALICE, T0, 0.9f, 0f));
        harness.processElement(scored(ALICE, T0_PLUS_5M, 0.9f, 0f));

        assertThat(alerts()).extracting(Alert::getEventTime).containsExactly(T0);
    }

    @Test
    void cooldownEndsExactlyAfterItsDurationInEventTime() throws Exception {
        harness.processElement(scored(ALICE, T0, 0.9f, 0f));
        // Processing time racing ahead must not matter: the cooldown is in event time, so replays decide alike.
        harness.setProcessingTime(ms(T0_PLUS_1D));
        harness.processElement(scored(ALICE, T0_PLUS_9M, 0.9f, 0f));
        harness.processElement(scored(ALICE, T0_PLUS_10M, 0.9f, 0f));

        assertThat(alerts()).extracting(Alert::getEventTime).containsExactly(T0, T0_PLUS_10M);
    }

    @Test
    void suppressedCrossingDoesNotExtendTheCooldown() throws Exception {
        harness.processElement(scored(ALICE, T0, 0.9f, 0f));
        harness.processElement(scored(ALICE, T0_PLUS_5M, 0.9f, 0f));
        harness.processElement(scored(ALICE, T0_PLUS_10M, 0.9f, 0f));

        assertThat(alerts()).extracting(Alert::getEventTime).containsExactly(T0, T0_PLUS_10M);
    }

    @Test
    void cooldownIsPerUser() throws Exception {
        harness.processElement(scored(ALICE, T0, 0.9f, 0f));
        harness.processElement(scored(BOB, T0_PLUS_1M, 0.9f, 0f));
        harness.processElement(scored(ALICE, T0_PLUS_2M, 0.9f, 0f));

        assertThat(alerts()).extracting(Alert::getUserId).containsExactly(ALICE, BOB);
    }

    @Test
    void cooldownIsPerAlertType() throws Exception {
        harness.processElement(scored(ALICE, T0, 0.9f, 0f));
        harness.processElement(scored(ALICE, T0_PLUS_1M, 0.9f, 0.9f));
        harness.processElement(scored(ALICE, T0_PLUS_2M, 0.9f, 0.9f));

        assertThat(alerts()).extracting(a -> a.getAlertType() + "@" + a.getEventTime())
                .containsExactly(PURCHASE + "@" + T0, CHURN + "@" + T0_PLUS_1M);
    }

    @Test
    void cleanupTimerRemovesStateOnceTheCooldownHasPassed() throws Exception {
        harness.processElement(scored(ALICE, T0, 0.9f, 0f));
        harness.processElement(scored(BOB, T0_PLUS_1M, 0.9f, 0f));
        assertThat(harness.numKeyedStateEntries()).isEqualTo(2);
        assertThat(harness.numEventTimeTimers()).isEqualTo(2);

        harness.processWatermark(ms(T0_PLUS_10M) - 1);
        assertThat(harness.numKeyedStateEntries()).as("cooldowns still running").isEqualTo(2);

        harness.processWatermark(ms(T0_PLUS_11M));
        assertThat(harness.numKeyedStateEntries()).isZero();
        assertThat(harness.numEventTimeTimers()).isZero();
    }

    @Test
    void cleanupKeepsAnAlertTypeWhoseCooldownIsStillRunning() throws Exception {
        harness.processElement(scored(ALICE, T0, 0.9f, 0f));
        harness.processElement(scored(ALICE, T0_PLUS_5M, 0f, 0.9f));

        harness.processWatermark(ms(T0_PLUS_10M));
        assertThat(harness.numKeyedStateEntries()).isEqualTo(1);
        // The churn cooldown must have survived the purchase cleanup.
        harness.processElement(scored(ALICE, T0_PLUS_10M.plusSeconds(1), 0f, 0.9f));
        assertThat(alerts()).extracting(Alert::getAlertType).containsExactly(PURCHASE, CHURN);

        harness.processWatermark(ms(T0_PLUS_5M) + COOLDOWN_MS);
        assertThat(harness.numKeyedStateEntries()).isZero();
        assertThat(harness.numEventTimeTimers()).isZero();
    }

    @Test
    void alertAfterACooldownKeepsItsOwnStateThroughTheOldTimer() throws Exception {
        harness.processElement(scored(ALICE, T0, 0.9f, 0f));
        harness.processElement(scored(ALICE, T0_PLUS_10M, 0.9f, 0f));

        harness.processWatermark(ms(T0_PLUS_10M));
        harness.processElement(scored(ALICE, T0_PLUS_11M, 0.9f, 0f));

        assertThat(alerts()).extracting(Alert::getEventTime).containsExactly(T0, T0_PLUS_10M);
        harness.processWatermark(ms(T0_PLUS_10M) + COOLDOWN_MS);
        assertThat(harness.numKeyedStateEntries()).isZero();
    }

    @Test
    void zeroCooldownAlertsEveryCrossingAndKeepsNoState() throws Exception {
        try (var h = open(new AlertFunction(policy(0), Duration.ZERO))) {
            h.processElement(scored(ALICE, T0, 0.9f, 0f));
            h.processElement(scored(ALICE, T0, 0.9f, 0f));
            h.processElement(scored(ALICE, T0_PLUS_1M, 0.9f, 0f));

            assertThat(h.extractOutputValues()).hasSize(3);
            // Nothing is ever suppressed, so nothing needs remembering; with no cleanup timer it would stay forever.
            assertThat(h.numEventTimeTimers()).isZero();
            assertThat(h.numKeyedStateEntries()).isZero();
        }
    }

    @Test
    void ttlBackstopForgetsTheCooldownWhenEventTimeStalls() throws Exception {
        harness.setStateTtlProcessingTime(0);
        harness.processElement(scored(ALICE, T0, 0.9f, 0f));

        harness.setStateTtlProcessingTime(TTL.toMillis() - 1);
        harness.processElement(scored(ALICE, T0_PLUS_1M, 0.9f, 0f));
        harness.setStateTtlProcessingTime(TTL.toMillis() + 1);
        harness.processElement(scored(ALICE, T0_PLUS_2M, 0.9f, 0f));

        assertThat(alerts()).extracting(Alert::getEventTime).containsExactly(T0, T0_PLUS_2M);
    }

    @Test
    void cooldownAndItsCleanupSurviveACheckpointRestore() throws Exception {
        harness.processElement(scored(ALICE, T0, 0.9f, 0f));
        var snapshot = harness.snapshot(1L, ms(T0));
        harness.close();

        harness = new KeyedOneInputStreamOperatorTestHarness<>(
                new KeyedProcessOperator<>(new AlertFunction(POLICY, TTL)), s -> s.userId, Types.STRING);
        harness.initializeState(snapshot);
        harness.open();
        harness.processElement(scored(ALICE, T0_PLUS_5M, 0.9f, 0f));

        assertThat(alerts()).as("still in the cooldown from before the restore").isEmpty();
        harness.processWatermark(ms(T0_PLUS_10M));
        assertThat(harness.numKeyedStateEntries()).isZero();
        assertThat(harness.numEventTimeTimers()).isZero();
    }

    @Test
    void alertCarriesTheEvidence() throws Exception {
        harness.setProcessingTime(ms(T0_PLUS_1D));
        StreamRecord<ScoredEvent> in = scored(ALICE, T0_PLUS_1M, 0.625f, 0.25f);

        harness.processElement(in);

        List<StreamRecord<? extends Alert>> out = harness.extractOutputStreamRecords();
        assertThat(out).hasSize(1);
        assertThat(out.get(0).getTimestamp()).isEqualTo(ms(T0_PLUS_1M));
        Alert a = out.get(0).getValue();
        ScoredEvent s = in.getValue();
        assertThat(a.getAlertId()).isEqualTo(AlertIds.of(ALICE, s.eventTime, "cart", s.itemId, PURCHASE));
        assertThat(a.getUserId()).isEqualTo(ALICE);
        assertThat(a.getAlertType()).isEqualTo(PURCHASE);
        assertThat(a.getOutput()).isEqualTo("purchase_30m");
        assertThat(a.getScore()).isEqualTo(0.625);
        assertThat(a.getThreshold()).isEqualTo(0.5);
        assertThat(a.getScores()).containsExactlyInAnyOrderEntriesOf(Map.of("purchase_30m", 0.625, "churn_24h", 0.25));
        assertThat(a.getModelVersion()).isEqualTo("model-v1");
        assertThat(a.getEventTime()).isEqualTo(T0_PLUS_1M);
        assertThat(a.getEventType()).isEqualTo("cart");
        assertThat(a.getItemId()).isEqualTo(s.itemId);
        assertThat(a.getWindowLength()).isEqualTo(3);
        assertThat(a.getEmittedAt()).isEqualTo(T0_PLUS_1D);
    }

    @Test
    void alertIdIsTheSameWhenTheSameEventIsReplayed() throws Exception {
        harness.processElement(scored(ALICE, T0, 0.9f, 0.9f));
        String purchaseId = alerts().get(0).getAlertId();
        String churnId = alerts().get(1).getAlertId();

        try (var replay = open(new AlertFunction(POLICY, TTL))) {
            replay.setProcessingTime(ms(T0_PLUS_1D));
            replay.processElement(scored(ALICE, T0, 0.9f, 0.9f));

            assertThat(replay.extractOutputValues()).extracting(Alert::getAlertId)
                    .containsExactly(purchaseId, churnId);
        }
        assertThat(purchaseId).isNotEqualTo(churnId);
    }
}
