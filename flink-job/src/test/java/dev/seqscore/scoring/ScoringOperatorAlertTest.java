package dev.seqscore.scoring;

import static dev.seqscore.scoring.ScoringFixture.ONE_HOUR;
import static dev.seqscore.scoring.ScoringFixture.TEN_MINUTES;
import static dev.seqscore.scoring.ScoringFixture.assumeServes;
import static dev.seqscore.scoring.ScoringFixture.settings;
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
import static dev.seqscore.testing.Clicks.click;
import static dev.seqscore.testing.Clicks.ms;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.seqscore.alerts.AlertIds;
import dev.seqscore.avro.Alert;
import dev.seqscore.avro.AlertReason;
import dev.seqscore.features.Scoring;
import dev.seqscore.reasons.Reason;
import dev.seqscore.testing.Clicks;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.junit.jupiter.api.AfterEach;

/**
 * The alert decision of {@link ScoringOperator}, made in the pass that scores, with either model: reaching a
 * threshold alerts; per user and per alert type, a cooldown in event time suppresses the crossings less than its
 * duration after the last alert (suppressed crossings do not extend it); the user value is kept while a cooldown
 * runs and goes with it; a zero cooldown keeps no cooldown state; the cooldown survives a restore; an alert carries
 * the evidence, a stable id and the reasons of its own output best first; and over random histories the alerts are
 * exactly those the rules give for the emitted scores.
 *
 * <p>Ported from the alert operator's tests, which fed it made-up scores; here the scores are the model's, so a test
 * picks thresholds that every score reaches (0), or that none does (1, the scores being below it), or the score
 * itself. The processing-time TTL now counts from the user's last event (every event rewrites the one user value),
 * not from the last alert.
 */
class ScoringOperatorAlertTest {
    private static final double ALWAYS = 0.0;
    private static final double NEVER = 1.0;

    private ScoringHarness harness;

    @AfterEach
    void closeHarness() throws Exception {
        if (harness != null) {
            harness.close();
            harness = null;
        }
    }

    private ScoringHarness open(ScoringFixture.Settings s) throws Exception {
        assumeServes(s.scoring);
        harness = ScoringHarness.open(s);
        return harness;
    }

    /** Purchase alerts on every event, churn on none (its scores are checked to be below 1 where it matters). */
    private static ScoringFixture.Settings purchaseOnly(Scoring mode) {
        return settings(mode).thresholds(ALWAYS, NEVER);
    }

    private String type(int output) {
        return harness.settings.alerts().rules.get(output).alertType;
    }

    private List<Instant> alertTimes() {
        return harness.alerts().stream().map(Alert::getEventTime).toList();
    }

    private void send(String user, Instant t) throws Exception {
        harness.send(click(user).item("i-" + t.getEpochSecond()).at(t));
    }

    @BothModes
    void scoreReachingTheThresholdAlertsAndOneBelowItNeither(Scoring mode) throws Exception {
        assumeServes(mode);
        float[] scores;
        try (ScoringHarness probe = ScoringHarness.open(settings(mode).thresholds(NEVER, NEVER))) {
            probe.send(click(ALICE).at(T0));
            probe.watermark(ms(T0));
            scores = probe.scored().get(0).scores;
            assertThat(probe.alerts()).isEmpty();
        }

        open(settings(mode).thresholds(scores[0], scores[1]));
        harness.send(click(ALICE).at(T0));
        harness.watermark(ms(T0));
        assertThat(harness.alerts()).extracting(Alert::getAlertType).containsExactly(type(0), type(1));
        harness.close();

        open(settings(mode).thresholds(Math.nextUp((double) scores[0]), Math.nextUp((double) scores[1]))
                .horizonMs(ONE_HOUR).modelStateTtlMs(0));
        harness.send(click(ALICE).at(T0));
        harness.watermark(ms(T0));
        assertThat(harness.alerts()).isEmpty();
        UserState alice = harness.userState(ALICE);
        assertThat(alice.lastAlert(0)).isEqualTo(UserState.NO_ALERT);
        assertThat(alice.lastAlert(1)).isEqualTo(UserState.NO_ALERT);
        harness.watermark(ms(T0) + ONE_HOUR);
        assertThat(harness.stored(ALICE)).as("no cooldown keeps the value past its window").isNull();
        assertThat(harness.timers()).isZero();
    }

    @BothModes
    void secondCrossingWithinTheCooldownIsSuppressed(Scoring mode) throws Exception {
        open(purchaseOnly(mode));
        send(ALICE, T0);
        send(ALICE, T0_PLUS_5M);
        harness.watermark(ms(T0_PLUS_5M));

        assertThat(harness.scored()).hasSize(2);
        assertThat(alertTimes()).containsExactly(T0);
    }

    @BothModes
    void cooldownEndsExactlyAfterItsDurationInEventTime(Scoring mode) throws Exception {
        open(purchaseOnly(mode));
        send(ALICE, T0);
        harness.watermark(ms(T0));
        // Processing time racing ahead must not matter: the cooldown is in event time, so replays decide alike.
        harness.h.setProcessingTime(ms(T0_PLUS_1D));
        send(ALICE, T0_PLUS_9M);
        send(ALICE, T0_PLUS_10M);
        harness.watermark(ms(T0_PLUS_10M));

        assertThat(alertTimes()).containsExactly(T0, T0_PLUS_10M);
    }

    @BothModes
    void suppressedCrossingDoesNotExtendTheCooldown(Scoring mode) throws Exception {
        open(purchaseOnly(mode));
        send(ALICE, T0);
        send(ALICE, T0_PLUS_5M);
        send(ALICE, T0_PLUS_10M);
        harness.watermark(ms(T0_PLUS_10M));

        assertThat(alertTimes()).containsExactly(T0, T0_PLUS_10M);
    }

    @BothModes
    void cooldownIsPerUser(Scoring mode) throws Exception {
        open(purchaseOnly(mode));
        send(ALICE, T0);
        send(BOB, T0_PLUS_1M);
        send(ALICE, T0_PLUS_2M);
        harness.watermark(ms(T0_PLUS_2M));

        assertThat(harness.alerts()).extracting(Alert::getUserId).containsExactly(ALICE, BOB);
    }

    /**
     * One output alerts at every event and the other (its threshold: its highest score after the first event, which
     * the first event's stays below) only later: the later alert is not held back by the first type's cooldown.
     */
    @BothModes
    void cooldownIsPerAlertType(Scoring mode) throws Exception {
        PerType p = perTypeScenario(settings(mode));
        open(settings(mode).thresholds(p.thresholds));
        harness.sendAll(p.history);
        harness.watermark(p.history.get(p.history.size() - 1).millis());

        assertThat(harness.alerts()).extracting(a -> a.getAlertType() + "@" + a.getEventTime())
                .containsExactly(type(p.always) + "@" + time(p.history.get(0)),
                        type(p.later) + "@" + time(p.history.get(p.laterAt)));
    }

    /** Alerts of two types at different times: the value is kept until the later one's cooldown has passed. */
    @BothModes
    void cleanupKeepsTheCooldownOfAnAlertTypeStillRunning(Scoring mode) throws Exception {
        long horizon = Duration.ofMinutes(5).toMillis();
        PerType p = perTypeScenario(settings(mode).horizonMs(horizon).modelStateTtlMs(0));
        open(settings(mode).thresholds(p.thresholds).horizonMs(horizon).modelStateTtlMs(0));
        harness.sendAll(p.history);
        long first = p.history.get(0).millis();
        long later = p.history.get(p.laterAt).millis();
        harness.watermark(p.history.get(p.history.size() - 1).millis());

        harness.watermark(first + TEN_MINUTES);
        UserState alice = harness.userState(ALICE);
        assertThat(alice.window().isEmpty()).as("past the window's horizon").isTrue();
        assertThat(alice.lastAlert(p.later)).as("the later type's cooldown survived the first's end").isEqualTo(later);

        harness.watermark(later + TEN_MINUTES - 1);
        assertThat(harness.stored(ALICE)).isNotNull();
        harness.watermark(later + TEN_MINUTES);
        assertThat(harness.stored(ALICE)).isNull();
        assertThat(harness.timers()).isZero();
    }

    /** Was the alert operator's "cleanup timer removes state once the cooldown has passed". */
    @BothModes
    void theValueOutlivesItsWindowWhileACooldownRunsAndNoLonger(Scoring mode) throws Exception {
        open(purchaseOnly(mode).horizonMs(Duration.ofMinutes(1).toMillis()).modelStateTtlMs(0));
        send(ALICE, T0);
        send(BOB, T0_PLUS_1M);
        harness.watermark(ms(T0_PLUS_1M));
        assertThat(harness.alerts()).hasSize(2);

        harness.watermark(ms(T0_PLUS_10M) - 1);
        assertThat(harness.h.numKeyedStateEntries()).as("cooldowns still running").isEqualTo(2);
        assertThat(harness.userState(ALICE).window().isEmpty()).isTrue();
        assertThat(harness.timers()).isEqualTo(2);

        harness.watermark(ms(T0_PLUS_10M));
        assertThat(harness.stored(ALICE)).isNull();
        assertThat(harness.stored(BOB)).isNotNull();
        harness.watermark(ms(T0_PLUS_11M));
        assertThat(harness.h.numKeyedStateEntries()).isZero();
        assertThat(harness.timers()).isZero();
    }

    @BothModes
    void alertAfterACooldownKeepsItsOwnStateThroughTheOldTimer(Scoring mode) throws Exception {
        open(purchaseOnly(mode).horizonMs(Duration.ofMinutes(1).toMillis()).modelStateTtlMs(0));
        send(ALICE, T0);
        send(ALICE, T0_PLUS_10M);
        harness.watermark(ms(T0_PLUS_10M));
        send(ALICE, T0_PLUS_11M);
        harness.watermark(ms(T0_PLUS_11M));

        assertThat(alertTimes()).containsExactly(T0, T0_PLUS_10M);
        harness.watermark(ms(T0_PLUS_10M) + TEN_MINUTES - 1);
        assertThat(harness.stored(ALICE)).isNotNull();
        harness.watermark(ms(T0_PLUS_10M) + TEN_MINUTES);
        assertThat(harness.stored(ALICE)).isNull();
        assertThat(harness.timers()).isZero();
    }

    /**
     * Was "zero cooldown keeps no state": the value now holds the window too, so it goes at newest + H exactly as
     * without alerts, and records no alert time.
     */
    @BothModes
    void zeroCooldownAlertsEveryCrossingAndKeepsNoCooldownState(Scoring mode) throws Exception {
        open(purchaseOnly(mode).cooldownMs(0).horizonMs(ONE_HOUR).modelStateTtlMs(0));
        harness.send(click(ALICE).item("a").at(T0));
        harness.send(click(ALICE).item("b").at(T0));
        harness.send(click(ALICE).item("c").at(T0_PLUS_1M));
        harness.watermark(ms(T0_PLUS_1M));

        assertThat(harness.alerts()).hasSize(3);
        assertThat(harness.userState(ALICE).lastAlert(0)).isEqualTo(UserState.NO_ALERT);
        harness.watermark(ms(T0_PLUS_1M) + ONE_HOUR - 1);
        assertThat(harness.stored(ALICE)).isNotNull();
        harness.watermark(ms(T0_PLUS_1M) + ONE_HOUR);
        assertThat(harness.stored(ALICE)).isNull();
        assertThat(harness.timers()).isZero();
    }

    @BothModes
    void ttlBackstopForgetsTheCooldownWhenEventTimeStalls(Scoring mode) throws Exception {
        Duration ttl = Duration.ofHours(1);
        open(purchaseOnly(mode).stateTtl(ttl).horizonMs(Duration.ofMinutes(30).toMillis()).modelStateTtlMs(0));
        harness.h.setStateTtlProcessingTime(0);
        send(ALICE, T0);
        harness.watermark(ms(T0));

        harness.h.setStateTtlProcessingTime(ttl.toMillis() - 1);
        send(ALICE, T0_PLUS_1M);
        harness.watermark(ms(T0_PLUS_1M));
        // That event rewrote the value: the TTL counts from it.
        harness.h.setStateTtlProcessingTime(2 * ttl.toMillis());
        send(ALICE, T0_PLUS_2M);
        harness.watermark(ms(T0_PLUS_2M));

        assertThat(alertTimes()).containsExactly(T0, T0_PLUS_2M);
    }

    @BothModes
    void cooldownAndItsCleanupSurviveACheckpointRestore(Scoring mode) throws Exception {
        open(purchaseOnly(mode).horizonMs(Duration.ofMinutes(1).toMillis()).modelStateTtlMs(0));
        ScoringSettings s = harness.settings;
        send(ALICE, T0);
        harness.watermark(ms(T0));
        var snapshot = harness.checkpoint(1L);
        assertThat(harness.alerts()).hasSize(1);
        harness.close();

        harness = ScoringHarness.restore(s, snapshot);
        send(ALICE, T0_PLUS_5M);
        harness.watermark(ms(T0_PLUS_5M));
        assertThat(harness.scored()).hasSize(1);
        assertThat(harness.alerts()).as("still in the cooldown from before the restore").isEmpty();

        harness.watermark(ms(T0_PLUS_10M));
        assertThat(harness.h.numKeyedStateEntries()).as("the value, and the snapshot's (empty) pending entry")
                .isZero();
        assertThat(harness.timers()).isZero();
    }

    @BothModes
    void eachAlertCarriesTheReasonsOfItsOwnOutputBestFirst(Scoring mode) throws Exception {
        open(settings(mode).thresholds(ALWAYS, ALWAYS).cooldownMs(0).reasonTop(3));
        harness.send(click(ALICE).type("view").item("i1").at(T0));
        harness.send(click(ALICE).type("cart").item("i1").at(T0_PLUS_1M));
        harness.send(click(BOB).type("view").item("i2").at(T0_PLUS_2M));
        harness.watermark(ms(T0_PLUS_2M));

        List<ScoredEvent> scored = harness.scored();
        List<Alert> alerts = harness.alerts();
        assertThat(alerts).hasSize(2 * scored.size());
        for (Alert a : alerts) {
            int o = a.getOutput().equals(harness.settings.alerts().rules.get(0).output) ? 0 : 1;
            ScoredEvent s = scored.stream().filter(e -> e.userId.equals(a.getUserId())
                    && e.eventTime == a.getEventTime().toEpochMilli()).findFirst().orElseThrow();
            List<Reason> own = java.util.Arrays.stream(s.reasons).filter(r -> r.output == o).toList();
            assertThat(own).as("reasons of %s", a.getOutput()).isNotEmpty();
            assertThat(a.getReasons()).extracting(AlertReason::getGroup)
                    .containsExactlyElementsOf(own.stream().map(r -> r.group).toList());
            assertThat(a.getReasons()).extracting(AlertReason::getText)
                    .containsExactlyElementsOf(own.stream().map(r -> r.text).toList());
            for (int k = 1; k < a.getReasons().size(); k++) {
                assertThat(a.getReasons().get(k).getScoreDrop()).as("best first")
                        .isLessThanOrEqualTo(a.getReasons().get(k - 1).getScoreDrop());
            }
            assertThat(a.getReasons().get(0).getScoreDrop()).isCloseTo(own.get(0).drop, within(1e-6));
        }
        harness.close();

        open(settings(mode).thresholds(ALWAYS, ALWAYS).reasonTop(0));
        harness.send(click(ALICE).at(T0));
        harness.watermark(ms(T0));
        assertThat(harness.alerts()).hasSize(2)
                .allSatisfy(a -> assertThat(a.getReasons()).as("reasons off: alerts without").isEmpty());
    }

    @BothModes
    void alertCarriesTheEvidence(Scoring mode) throws Exception {
        // One row per call, so the alert is emitted at the processing time set here, without deadlines.
        open(purchaseOnly(mode).cooldownMs(0).maxBatch(1));
        harness.h.setProcessingTime(ms(T0_PLUS_1D));
        harness.send(click(ALICE).type("view").item("i1").at(T0));
        harness.send(click(ALICE).type("view").item("i2").at(T0.plusSeconds(30)));
        harness.send(click(ALICE).type("cart").item("i7").at(T0_PLUS_1M));
        harness.h.processWatermark(ms(T0_PLUS_1M));

        ScoredEvent s = harness.scored().get(2);
        assertThat(s.scores[1]).as("churn stays below the NEVER threshold").isLessThan((float) NEVER);
        var records = harness.h.getSideOutput(ScoringOperator.ALERTS).stream().toList();
        assertThat(records).hasSize(3);
        StreamRecord<Alert> record = records.get(2);
        assertThat(record.getTimestamp()).isEqualTo(ms(T0_PLUS_1M));
        Alert a = record.getValue();
        var rule = harness.settings.alerts().rules.get(0);
        var other = harness.settings.alerts().rules.get(1);
        assertThat(a.getAlertId()).isEqualTo(AlertIds.of(ALICE, ms(T0_PLUS_1M), "cart", "i7", rule.alertType));
        assertThat(a.getUserId()).isEqualTo(ALICE);
        assertThat(a.getAlertType()).isEqualTo(rule.alertType);
        assertThat(a.getOutput()).isEqualTo(rule.output);
        assertThat(a.getScore()).isEqualTo((double) s.scores[0]);
        assertThat(a.getThreshold()).isEqualTo(ALWAYS);
        assertThat(a.getScores()).containsExactlyInAnyOrderEntriesOf(
                Map.of(rule.output, (double) s.scores[0], other.output, (double) s.scores[1]));
        assertThat(a.getModelVersion()).isEqualTo(harness.settings.served().modelVersion());
        assertThat(a.getEventTime()).isEqualTo(T0_PLUS_1M);
        assertThat(a.getEventType()).isEqualTo("cart");
        assertThat(a.getItemId()).isEqualTo("i7");
        assertThat(a.getWindowLength()).isEqualTo(3);
        assertThat(a.getEmittedAt()).isEqualTo(T0_PLUS_1D);
    }

    @BothModes
    void alertIdIsTheSameWhenTheSameEventIsReplayed(Scoring mode) throws Exception {
        open(settings(mode).thresholds(ALWAYS, ALWAYS));
        send(ALICE, T0);
        harness.watermark(ms(T0));
        List<String> ids = harness.alerts().stream().map(Alert::getAlertId).toList();
        ScoringSettings s = harness.settings;
        harness.close();

        harness = ScoringHarness.open(s);
        harness.h.setProcessingTime(ms(T0_PLUS_1D));
        send(ALICE, T0);
        harness.watermark(ms(T0));

        assertThat(harness.alerts()).extracting(Alert::getAlertId).hasSize(2).containsExactlyElementsOf(ids);
        assertThat(ids.get(0)).isNotEqualTo(ids.get(1));
    }

    /**
     * Over random histories of three users, with each threshold halfway through the scores and events minutes
     * apart, the alerts are exactly those an independent reading of the rules gives for the emitted scores.
     */
    @BothModes
    void alertsAreThoseTheRulesGiveForTheScores(Scoring mode) throws Exception {
        assumeServes(mode);
        Random random = new Random(3);
        List<Clicks.Builder> history = new ArrayList<>();
        List<String> types = ScoringFixture.spec().vocabulary();
        for (String user : List.of(ALICE, BOB, "carol")) {
            Instant t = T0;
            for (int i = 0; i < 15; i++) {
                t = t.plusSeconds(random.nextInt(8 * 60));
                history.add(click(user).type(types.get(random.nextInt(types.size()))).item("i" + random.nextInt(5))
                        .at(t).offset(i));
            }
        }
        long last = history.stream().mapToLong(Clicks.Builder::millis).max().orElseThrow();
        List<ScoredEvent> scored;
        try (ScoringHarness probe = ScoringHarness.open(settings(mode).thresholds(NEVER, NEVER))) {
            probe.sendAll(history);
            probe.watermark(last);
            scored = probe.scored();
        }
        double[] thresholds = new double[2];
        for (int o = 0; o < 2; o++) {
            int out = o;
            double[] sorted = scored.stream().mapToDouble(s -> s.scores[out]).sorted().toArray();
            thresholds[o] = sorted[sorted.length / 2];
        }

        open(settings(mode).thresholds(thresholds));
        harness.sendAll(history);
        harness.watermark(last);

        List<String> expected = new ArrayList<>();
        Map<String, Long> lastAlert = new HashMap<>();
        int suppressed = 0;
        for (ScoredEvent s : harness.scored()) {
            for (int o = 0; o < 2; o++) {
                if (s.scores[o] < thresholds[o]) {
                    continue;
                }
                Long prev = lastAlert.get(s.userId + "/" + type(o));
                if (prev != null && s.eventTime - prev < TEN_MINUTES) {
                    suppressed++;
                    continue;
                }
                lastAlert.put(s.userId + "/" + type(o), s.eventTime);
                expected.add(s.userId + " " + type(o) + " " + s.eventTime);
            }
        }
        assertThat(harness.alerts()).extracting(a -> a.getUserId() + " " + a.getAlertType() + " "
                + a.getEventTime().toEpochMilli()).containsExactlyInAnyOrderElementsOf(expected);
        assertThat(suppressed).as("crossings the cooldown suppressed").isPositive();
    }

    // ---------------------------------------------------------------- per-type scenario

    /**
     * A history of Alice's in four minutes, scored with {@code s}; thresholds, and which output alerts always and
     * which later.
     */
    private record PerType(List<Clicks.Builder> history, double[] thresholds, int always, int later, int laterAt) {}

    private static PerType perTypeScenario(ScoringFixture.Settings s) throws Exception {
        assumeServes(s.scoring);
        List<Clicks.Builder> history = List.of(
                click(ALICE).type("view").item("i1").at(T0),
                click(ALICE).type("cart").item("i1").at(T0.plusSeconds(60)),
                click(ALICE).type("view").item("i2").at(T0.plusSeconds(120)),
                click(ALICE).type("fav").item("i1").at(T0.plusSeconds(180)),
                click(ALICE).type("cart").item("i2").at(T0.plusSeconds(240)));
        List<ScoredEvent> scored;
        try (ScoringHarness probe = ScoringHarness.open(s.thresholds(NEVER, NEVER))) {
            probe.sendAll(history);
            probe.watermark(history.get(history.size() - 1).millis());
            scored = probe.scored();
        }
        for (int later = 0; later < 2; later++) {
            int o = later;
            int at = 1;
            for (int i = 2; i < scored.size(); i++) {
                if (scored.get(i).scores[o] > scored.get(at).scores[o]) {
                    at = i;
                }
            }
            float max = scored.get(at).scores[o];
            if (max > scored.get(0).scores[o]) {
                double[] thresholds = new double[2];
                thresholds[o] = max;
                thresholds[1 - o] = ALWAYS;
                return new PerType(history, thresholds, 1 - o, o, at);
            }
        }
        throw new AssertionError("the model scores no later event of the history above its first for either "
                + "output, so no threshold lets one type alert later than the other: " + scored);
    }

    private static Instant time(Clicks.Builder c) {
        return Instant.ofEpochMilli(c.millis());
    }
}
