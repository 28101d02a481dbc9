package dev.seqscore.scoring;

import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.click;
import static dev.seqscore.testing.Clicks.ms;
import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.ModelEvent;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.Scoring;
import dev.seqscore.lifecycle.GoldenCheck;
import dev.seqscore.lifecycle.ModelControl;
import dev.seqscore.lifecycle.PublishedBundles;
import dev.seqscore.testing.Clicks;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Model swaps and shadow scoring in the scorer: a control record takes effect at the event time it names, for every
 * event at or after it and none before; a bad bundle or a late record is refused and the old model keeps serving; a
 * shadow candidate scores the same events without alerting, and once promoted carries on from the state it kept;
 * models no event needs any more are closed; a restore keeps the schedule.
 */
class ScoringOperatorModelSwapTest {
    private static final long E = ms(T0.plus(Duration.ofMinutes(10)));
    private static final long E2 = ms(T0.plus(Duration.ofMinutes(16)));
    private static final long END = ms(T0.plus(Duration.ofHours(2)));

    @TempDir
    static Path tmp;
    private static Path retrained;
    private static String baseVersion;
    private static String v2;

    @BeforeAll
    static void bundles() {
        ScoringFixture.assumeStreaming();
        retrained = PublishedBundles.retrained(ScoringFixture.bundleDir(), tmp.resolve("v2"), "-retrained");
        baseVersion = ScoringFixture.spec().served(Scoring.INCREMENTAL).modelVersion();
        v2 = baseVersion + "-retrained";
    }

    private static ScoringSettings settings(boolean shadowScores) {
        ScoringSettings s = ScoringFixture.settings(Scoring.INCREMENTAL).build();
        return new ScoringSettings(s.bundle(), s.scoring(), s.maxEvents(), s.horizonMs(), s.stateTtl(),
                s.modelStateTtlMs(), s.ortThreads(), s.maxBatch(), s.maxDelayMs(), s.alerts(), s.reasonTop(),
                s.alertRules(), null, shadowScores, List.of());
    }

    /** Three users, a click a minute for 20 minutes, types and items varied so that the state matters. */
    private static List<Clicks.Builder> timeline() {
        String[] types = {"view", "view", "fav", "cart", "view", "buy", "view"};
        List<Clicks.Builder> out = new ArrayList<>();
        for (int m = 0; m < 20; m++) {
            for (String u : List.of("alice", "bob", "carol")) {
                out.add(click(u).at(T0.plus(Duration.ofMinutes(m)).plusSeconds(u.length()))
                        .type(types[(m + u.length()) % types.length]).item("i" + (m % 4)).category("c" + (m % 2))
                        .offset(m));
            }
        }
        return out;
    }

    private static String key(ScoredEvent s) {
        return s.userId + "@" + s.eventTime;
    }

    private static Map<String, ScoredEvent> byEvent(List<ScoredEvent> scored) {
        Map<String, ScoredEvent> out = new HashMap<>();
        for (ScoredEvent s : scored) {
            assertThat(out.put(key(s), s)).as("scored once: %s", key(s)).isNull();
        }
        return out;
    }

    private static List<ScoredEvent> run(ModelControl... controls) throws Exception {
        try (SwapHarness h = SwapHarness.open(settings(false))) {
            h.sendAll(timeline());
            for (ModelControl c : controls) {
                h.control(c);
            }
            h.watermark(END);
            return h.scored();
        }
    }

    private static List<ModelEvent> status(List<ModelEvent> events, String status) {
        return events.stream().filter(e -> e.getStatus().equals(status)).toList();
    }

    @Test
    void aServeSwapTakesEffectAtItsEventTimeAndClosesTheOldModel() throws Exception {
        Map<String, ScoredEvent> reference = byEvent(run());
        try (SwapHarness h = SwapHarness.open(settings(false))) {
            h.sendAll(timeline());
            h.control(ModelControl.publish("r1", ModelControl.Role.SERVE, retrained.toString(), E));
            assertThat(h.operator().loadedModels()).containsExactlyInAnyOrder(baseVersion, v2);
            h.watermark(END);

            List<ScoredEvent> scored = h.scored();
            assertThat(scored).hasSize(60);
            int changed = 0;
            for (ScoredEvent s : scored) {
                ScoredEvent ref = reference.get(key(s));
                if (s.eventTime < E) {
                    assertThat(s.modelVersion).isEqualTo(baseVersion);
                    assertThat(s.scores).as("before the swap, as without it: %s", key(s)).containsExactly(ref.scores);
                } else {
                    assertThat(s.modelVersion).as("from effective_at on: %s", key(s)).isEqualTo(v2);
                    if (!java.util.Arrays.equals(s.scores, ref.scores)) {
                        changed++;
                    }
                }
            }
            // The new model starts every user's recurrent state again from zeros: the old model's is never fed to it.
            assertThat(changed).isPositive();
            assertThat(h.alerts()).allSatisfy(a -> assertThat(a.getModelVersion())
                    .isEqualTo(a.getEventTime().toEpochMilli() < E ? baseVersion : v2));
            List<ModelEvent> events = h.modelEvents();
            assertThat(status(events, "ACCEPTED")).singleElement().satisfies(e -> {
                assertThat(e.getRequestId()).isEqualTo("r1");
                assertThat(e.getModelVersion()).isEqualTo(v2);
            });
            assertThat(status(events, "ACTIVE")).singleElement().satisfies(e -> {
                assertThat(e.getModelVersion()).isEqualTo(v2);
                assertThat(e.getEffectiveAt().toEpochMilli()).isEqualTo(E);
            });
            assertThat(h.operator().loadedModels()).as("the old session is closed").containsExactly(v2);
        }
    }

    @Test
    void badBundlesAndLateRecordsAreRefusedAndTheOldModelKeepsServing() throws Exception {
        Path badGolden = PublishedBundles.retrained(ScoringFixture.bundleDir(), tmp.resolve("bad-golden"), "-bad");
        PublishedBundles.corruptGolden(badGolden, GoldenCheck.fileOf(ScoringFixture.spec(), Scoring.INCREMENTAL));
        Path longer = PublishedBundles.copy(ScoringFixture.bundleDir(), tmp.resolve("longer"),
                spec -> ((com.fasterxml.jackson.databind.node.ObjectNode) spec.get("window"))
                        .put("horizon_ms", 2 * ScoringFixture.spec().horizonMs()));
        try (SwapHarness h = SwapHarness.open(settings(false))) {
            h.sendAll(timeline());
            h.control(ModelControl.publish("golden", ModelControl.Role.SERVE, badGolden.toString(), E));
            h.control(ModelControl.publish("horizon", ModelControl.Role.SERVE, longer.toString(), E));
            h.control(ModelControl.publish("missing", ModelControl.Role.SHADOW, tmp.resolve("nope").toString(), E));
            h.control(ModelControl.of("promote", ModelControl.Action.PROMOTE, E));
            h.control("{\"request_id\": 7}");
            h.watermark(E + 60_000);
            h.control(ModelControl.publish("late", ModelControl.Role.SERVE, retrained.toString(), E));
            h.watermark(END);

            assertThat(h.scored()).hasSize(60).allSatisfy(s -> assertThat(s.modelVersion).isEqualTo(baseVersion));
            Map<String, String> reasons = new HashMap<>();
            for (ModelEvent e : status(h.modelEvents(), "REFUSED")) {
                reasons.put(String.valueOf(e.getRequestId()), e.getReason());
            }
            assertThat(reasons).hasSize(6);
            assertThat(reasons.get("golden")).contains("golden vectors disagree");
            assertThat(reasons.get("horizon")).contains("needs more history than the job's state keeps");
            assertThat(reasons.get("missing")).contains("does not exist");
            assertThat(reasons.get("promote")).contains("no shadow candidate");
            assertThat(reasons.get("null")).contains("cannot read the control record").contains("request_id");
            assertThat(reasons.get("late")).contains("is not after the scorer's watermark");
            assertThat(status(h.modelEvents(), "ACCEPTED")).isEmpty();
            assertThat(h.operator().loadedModels()).containsExactly(baseVersion);
        }
    }

    @Test
    void aShadowScoresBesideTheServingModelWithoutAlertingAndCarriesOnWhenPromoted() throws Exception {
        List<ScoredEvent> reference = run();
        ModelControl shadow = ModelControl.publish("s1", ModelControl.Role.SHADOW, retrained.toString(), E);
        Map<String, ScoredEvent> shadowOf;
        try (SwapHarness h = SwapHarness.open(settings(true))) {
            h.sendAll(timeline());
            h.control(shadow);
            h.watermark(END);
            // The serving model's scores and alerts are those of a run without the candidate.
            Map<String, ScoredEvent> ref = byEvent(reference);
            for (ScoredEvent s : h.scored()) {
                assertThat(s.modelVersion).isEqualTo(baseVersion);
                assertThat(s.scores).containsExactly(ref.get(key(s)).scores);
            }
            shadowOf = byEvent(h.shadowScores());
            assertThat(shadowOf.values()).allSatisfy(s -> {
                assertThat(s.modelVersion).isEqualTo(v2);
                assertThat(s.eventTime).isGreaterThanOrEqualTo(E);
            });
            assertThat(shadowOf).hasSize((int) reference.stream().filter(s -> s.eventTime >= E).count());
            assertThat(h.alerts()).allSatisfy(a -> assertThat(a.getModelVersion()).isEqualTo(baseVersion));
        }
        try (SwapHarness h = SwapHarness.open(settings(false))) {
            h.sendAll(timeline());
            h.control(shadow);
            h.control(ModelControl.of("p1", ModelControl.Action.PROMOTE, E2));
            h.watermark(END);
            for (ScoredEvent s : h.scored()) {
                if (s.eventTime >= E2) {
                    // Promoted: it serves from the state it kept as the candidate, so its scores are the ones it gave
                    // as the candidate (within ONNX Runtime's rounding of another batch).
                    assertThat(s.modelVersion).isEqualTo(v2);
                    float[] asShadow = shadowOf.get(key(s)).scores;
                    for (int o = 0; o < s.scores.length; o++) {
                        assertThat((double) s.scores[o]).as("%s output %d", key(s), o)
                                .isCloseTo(asShadow[o], org.assertj.core.data.Offset.offset(1e-6));
                    }
                } else {
                    assertThat(s.modelVersion).isEqualTo(baseVersion);
                }
            }
            assertThat(h.operator().loadedModels()).containsExactly(v2);
        }
    }

    @Test
    void aSwapAndACandidateAtOnceWithReasonsScoreEveryEvent() throws Exception {
        ScoringSettings base = settings(true);
        ScoringSettings s = new ScoringSettings(base.bundle(), base.scoring(), base.maxEvents(), base.horizonMs(),
                base.stateTtl(), base.modelStateTtlMs(), 1, base.maxBatch(), base.maxDelayMs(), base.alerts(), 3,
                base.alertRules(), null, true, List.of());
        Path v3 = PublishedBundles.retrained(ScoringFixture.bundleDir(), tmp.resolve("v3-" + System.nanoTime()), "-v3");
        try (SwapHarness h = SwapHarness.open(s)) {
            List<Clicks.Builder> clicks = timeline();
            for (Clicks.Builder c : clicks) {
                if (c.millis() < ms(T0.plus(Duration.ofMinutes(8)))) {
                    h.send(c);
                }
            }
            h.watermark(ms(T0.plus(Duration.ofMinutes(7))));
            h.control(ModelControl.publish("r1", ModelControl.Role.SERVE, retrained.toString(), E));
            h.control(ModelControl.publish("s1", ModelControl.Role.SHADOW, v3.toString(), E));
            for (Clicks.Builder c : clicks) {
                if (c.millis() >= ms(T0.plus(Duration.ofMinutes(8)))) {
                    h.send(c);
                }
            }
            h.watermark(END);
            assertThat(h.scored()).hasSize(60);
            assertThat(h.shadowScores()).hasSize((int) clicks.stream().filter(c -> c.millis() >= E).count());
        }
    }

    @Test
    void aWithdrawnCandidateIsClosed() throws Exception {
        try (SwapHarness h = SwapHarness.open(settings(true))) {
            h.sendAll(timeline());
            h.control(ModelControl.publish("s1", ModelControl.Role.SHADOW, retrained.toString(), E));
            h.control(ModelControl.of("w1", ModelControl.Action.WITHDRAW, E2));
            h.watermark(END);
            assertThat(h.shadowScores()).isNotEmpty().allSatisfy(s -> assertThat(s.eventTime)
                    .isGreaterThanOrEqualTo(E).isLessThan(E2));
            assertThat(h.operator().loadedModels()).containsExactly(baseVersion);
        }
    }

    @Test
    void aRestoredScorerKeepsTheScheduleAndScoresAsWithoutTheFailure() throws Exception {
        Map<String, ScoredEvent> fresh =
                byEvent(run(ModelControl.publish("r1", ModelControl.Role.SERVE, retrained.toString(), E)));
        List<Clicks.Builder> clicks = timeline();
        long cut = ms(T0.plus(Duration.ofMinutes(5)));
        List<ScoredEvent> scored = new ArrayList<>();
        OperatorSubtaskState snapshot;
        try (SwapHarness h = SwapHarness.open(settings(false))) {
            for (Clicks.Builder c : clicks) {
                if (c.millis() < cut) {
                    h.send(c);
                }
            }
            h.control(ModelControl.publish("r1", ModelControl.Role.SERVE, retrained.toString(), E));
            h.watermark(cut - 1);
            scored.addAll(h.scored());
            snapshot = h.checkpoint(1);
        }
        try (SwapHarness h = SwapHarness.restore(settings(false), snapshot)) {
            assertThat(h.operator().loadedModels()).containsExactlyInAnyOrder(baseVersion, v2);
            for (Clicks.Builder c : clicks) {
                if (c.millis() >= cut) {
                    h.send(c);
                }
            }
            h.watermark(END);
            scored.addAll(h.scored());
            // A replayed control record is not applied twice.
            h.control(ModelControl.publish("r1", ModelControl.Role.SERVE, retrained.toString(), E));
            assertThat(status(h.modelEvents(), "ACCEPTED")).singleElement()
                    .satisfies(e -> assertThat(e.getReason()).isEqualTo("already scheduled"));
        }
        Map<String, ScoredEvent> restored = byEvent(scored);
        assertThat(restored.keySet()).isEqualTo(fresh.keySet());
        for (Map.Entry<String, ScoredEvent> e : fresh.entrySet()) {
            assertThat(restored.get(e.getKey()).modelVersion).isEqualTo(e.getValue().modelVersion);
            assertThat(restored.get(e.getKey()).scores).as(e.getKey()).containsExactly(e.getValue().scores);
        }
    }

    @Test
    void aJobStartedWithAnotherModelDropsTheRestoredSchedule() throws Exception {
        OperatorSubtaskState snapshot;
        try (SwapHarness h = SwapHarness.open(settings(false))) {
            h.control(ModelControl.publish("r1", ModelControl.Role.SERVE, retrained.toString(), E));
            snapshot = h.checkpoint(1);
        }
        ScoringSettings other = settings(false).withModel(dev.seqscore.model.ModelBundle.load(retrained));
        try (SwapHarness h = SwapHarness.restore(other, snapshot)) {
            assertThat(h.operator().loadedModels()).containsExactly(v2);
            h.sendAll(timeline());
            h.watermark(END);
            assertThat(h.scored()).allSatisfy(s -> assertThat(s.modelVersion).isEqualTo(v2));
        }
    }
}
