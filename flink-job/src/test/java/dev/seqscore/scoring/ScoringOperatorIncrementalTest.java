package dev.seqscore.scoring;

import static dev.seqscore.scoring.ScoringFixture.settings;
import static dev.seqscore.scoring.ScoringReference.withoutDuplicates;
import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.BOB;
import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.click;
import static dev.seqscore.testing.Clicks.ms;
import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.features.Fnv1a64;
import dev.seqscore.features.Lifetime;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.PackedWindow;
import dev.seqscore.metrics.JobMetrics;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.features.Scoring;
import dev.seqscore.testing.CapturedMetrics;
import dev.seqscore.testing.Clicks;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What is new with the streaming model ({@code --scoring incremental}), in the operator: each user's scores equal a
 * step-by-step reference with the lifetime record and the state fed back, also with many users interleaved in
 * batches (one row per user per batch); state another model version wrote, or another state size, or no state (a
 * value the windowed model wrote) is started again from zeros while the window and lifetime record are kept, and
 * only another model's state counts as a restart; the reset rule makes a user back after more than the reset gap a
 * new user, and a gap of exactly the reset gap does not; back after more than the model-state TTL a user is new
 * however the watermark moved meanwhile. Skipped when the bundle has no streaming model.
 */
class ScoringOperatorIncrementalTest {
    private static final float SCORE_TOLERANCE = 1e-5f;

    private static ModelSpec spec;
    private static ModelSpec.Served served;
    private static ScoringReference reference;

    private ScoringHarness harness;

    @BeforeAll
    static void load() {
        spec = ScoringFixture.spec();
        if (ScoringFixture.hasStreaming()) {
            served = spec.served(Scoring.INCREMENTAL);
            reference = new ScoringReference(ScoringFixture.bundle(), Scoring.INCREMENTAL);
        }
    }

    @AfterAll
    static void close() {
        if (reference != null) {
            reference.close();
        }
    }

    @BeforeEach
    void skipWithoutAStreamingModel() {
        ScoringFixture.assumeStreaming();
    }

    @AfterEach
    void closeHarness() throws Exception {
        if (harness != null) {
            harness.close();
            harness = null;
        }
    }

    private static ScoringFixture.Settings incremental() {
        return settings(Scoring.INCREMENTAL);
    }

    /**
     * Six users' interleaved histories, sent at once and scored behind few watermarks, so that batches hold many
     * users and each user has several ready events: every score equals the one-row reference, and the run at
     * batch size 1 (one event at a time) gives the same. A second row of one user in a batch would have been
     * encoded with the state from before the first, and fail this.
     */
    @Test
    void manyUsersInterleavedInBatchesScoreAsEachUserAloneStepByStep() throws Exception {
        Random random = new Random(21);
        List<String> users = List.of(ALICE, BOB, "carol", "dave", "erin", "frank");
        List<List<Clicks.Builder>> histories = new ArrayList<>();
        for (String u : users) {
            histories.add(randomHistory(random, 12, u));
        }
        List<Clicks.Builder> all = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            for (List<Clicks.Builder> h : histories) {
                all.add(h.get(i));
            }
        }
        long last = all.stream().mapToLong(Clicks.Builder::millis).max().orElseThrow();

        List<ScoredEvent> batched;
        try (CapturedMetrics metrics = new CapturedMetrics();
             ScoringHarness h = ScoringHarness.open(incremental().maxBatch(4).build(), metrics)) {
            h.sendAll(all);
            h.watermark(ms(T0) + (last - ms(T0)) / 2);
            h.watermark(last);
            batched = h.scored();
            long[] sizes = metrics.histogram(JobMetrics.BATCH_SIZE).getStatistics().getValues();
            assertThat(java.util.Arrays.stream(sizes).max().orElse(0)).as("rows of several users in a call")
                    .isEqualTo(4);
        }
        List<ScoredEvent> alone;
        try (ScoringHarness h = ScoringHarness.open(incremental().maxBatch(1).build())) {
            h.sendAll(all);
            h.watermark(last);
            alone = h.scored();
        }

        for (int u = 0; u < users.size(); u++) {
            String user = users.get(u);
            List<ScoredEvent> b = batched.stream().filter(s -> s.userId.equals(user)).toList();
            List<ScoredEvent> a = alone.stream().filter(s -> s.userId.equals(user)).toList();
            List<ScoringReference.Step> expected = reference.steps(withoutDuplicates(histories.get(u)),
                    spec.maxEvents(), spec.horizonMs());
            ScoringReference.assertMatches(expected, a, 0f);
            ScoringReference.assertMatches(expected, b, SCORE_TOLERANCE);
        }
    }

    /**
     * A snapshot restored into an operator whose bundle has another streaming model version: the user's state was
     * written by another model, so the step starts it from zeros, with the window and the lifetime record kept, and
     * {@code modelStateRestarts} counts the user once.
     */
    @Test
    void stateAnotherModelVersionWroteIsStartedAgainFromZerosAndCounted(@TempDir Path tmp) throws Exception {
        List<Clicks.Builder> alice = history(ALICE, 5);
        ScoringSettings before = incremental().build();
        harness = ScoringHarness.open(before);
        harness.sendAll(alice.subList(0, 3));
        harness.watermark(alice.get(2).millis());
        var snapshot = harness.checkpoint(1L);
        harness.close();

        ModelBundle other = ScoringFixture.derivedBundle(tmp, s -> ((com.fasterxml.jackson.databind.node.ObjectNode)
                s.get("streaming")).put("model_version", "0123456789abcdef"));
        ScoringSettings after = incremental().bundle(other).build();
        assertThat(after.served().versionTag()).isNotEqualTo(before.served().versionTag());
        try (CapturedMetrics metrics = new CapturedMetrics()) {
            harness = ScoringHarness.restore(after, snapshot, null, metrics);
            harness.sendAll(alice.subList(3, 5));
            harness.send(click(BOB).at(Instant.ofEpochMilli(alice.get(3).millis())));
            harness.watermark(alice.get(4).millis());

            List<ScoringReference.Step> expected = reference.steps(alice, spec.maxEvents(), spec.horizonMs(),
                    Set.of(3));
            ScoringReference.assertMatches(expected.subList(3, 5), harness.scored(ALICE), SCORE_TOLERANCE);
            assertThat(metrics.counter(JobMetrics.MODEL_STATE_RESTARTS).getCount())
                    .as("alice once; not her next event, not bob, a new user").isEqualTo(1);
            assertThat(harness.lifetime(ALICE).count(spec.typeId("view")) + harness.lifetime(ALICE)
                    .count(spec.typeId("cart"))).as("the lifetime record kept").isEqualTo(5);
            assertThat(harness.userState(ALICE).stateTag()).isEqualTo(after.served().versionTag());
            harness.close();
            harness = null;
        }
        // The reference itself differs without the restart: the test would see state that was wrongly kept.
        List<ScoringReference.Step> kept = reference.steps(alice, spec.maxEvents(), spec.horizonMs());
        List<ScoringReference.Step> restarted = reference.steps(alice, spec.maxEvents(), spec.horizonMs(), Set.of(3));
        assertThat(kept.get(3).scores()).isNotEqualTo(restarted.get(3).scores());
    }

    /**
     * A value written by a model with another state size (another architecture): converted to this layout, its
     * window and lifetime record kept, the state started from zeros and counted as a restart, like any other
     * model's state.
     */
    @Test
    void stateOfAnotherSizeIsStartedAgainFromZerosAndCounted() throws Exception {
        List<Clicks.Builder> alice = history(ALICE, 4);
        int otherSize = served.stateSize() + 8;
        ScoringSettings s = incremental().build();
        UserState writer = new UserState(PackedWindow.forSpec(spec, s.maxEvents(), s.horizonMs()),
                s.maxEvents(), s.horizonMs(), Lifetime.forSpec(spec), spec.vocabulary().size(), s.alerts().alertTypes.size(), otherSize);
        writer.wrap(null);
        Lifetime record = Lifetime.forSpec(spec);
        for (Clicks.Builder c : alice.subList(0, 3)) {
            var e = c.event();
            int type = spec.typeId(e.getEventType());
            writer.window().append(Fnv1a64.hash(e.getItemId()), Fnv1a64.hash(e.getCategoryId()), type, c.millis());
            record.apply(c.millis(), type);
        }
        writer.writeLifetime(record);
        float[] state = new float[otherSize];
        java.util.Arrays.fill(state, 0.5f);
        writer.writeState(ModelSpec.versionTag("another-architecture"), state, 0);

        try (CapturedMetrics metrics = new CapturedMetrics()) {
            harness = ScoringHarness.open(s, metrics);
            harness.store(ALICE, writer.bytes());
            harness.send(alice.get(3));
            harness.watermark(alice.get(3).millis());

            ScoringReference.assertMatches(reference.steps(alice, spec.maxEvents(), spec.horizonMs(), Set.of(3))
                    .subList(3, 4), harness.scored(ALICE), SCORE_TOLERANCE);
            assertThat(harness.scored(ALICE).get(0).windowLength).isEqualTo(4);
            assertThat(metrics.counter(JobMetrics.MODEL_STATE_RESTARTS).getCount()).isEqualTo(1);
            harness.close();
            harness = null;
        }
    }

    /**
     * Switching --scoring from windowed to incremental on a savepoint: the windowed model kept the window and the
     * lifetime record but wrote no model state, so the step starts from zeros with both kept; that is not a restart
     * of another model's state. The lifetime record is right also when the windowed job served a format 2 bundle,
     * which has no reset gap.
     */
    @Test
    void aValueTheWindowedModelWroteGoesOnWithItsWindowAndLifetimeRecord(@TempDir Path tmp) throws Exception {
        List<Clicks.Builder> alice = history(ALICE, 5);
        ModelBundle format2 = ScoringFixture.withoutStreaming(tmp.resolve("format2"));
        for (ModelBundle windowedBundle : List.of(ScoringFixture.bundle(), format2)) {
            harness = ScoringHarness.open(settings(Scoring.WINDOWED).bundle(windowedBundle).build());
            harness.sendAll(alice.subList(0, 3));
            harness.watermark(alice.get(2).millis());
            assertThat(harness.lifetime(ALICE).count(spec.typeId("view")) + harness.lifetime(ALICE)
                    .count(spec.typeId("cart"))).as("windowed, format %d: lifetime record",
                    windowedBundle.spec().formatVersion()).isEqualTo(3);
            var snapshot = harness.checkpoint(1L);
            harness.close();

            try (CapturedMetrics metrics = new CapturedMetrics()) {
                harness = ScoringHarness.restore(incremental().build(), snapshot, null, metrics);
                harness.sendAll(alice.subList(3, 5));
                harness.watermark(alice.get(4).millis());
                ScoringReference.assertMatches(reference.steps(alice, spec.maxEvents(), spec.horizonMs(), Set.of(3))
                        .subList(3, 5), harness.scored(ALICE), SCORE_TOLERANCE);
                assertThat(metrics.counter(JobMetrics.MODEL_STATE_RESTARTS).getCount()).isZero();
                harness.close();
                harness = null;
            }
        }
    }

    /**
     * The reset rule: an event more than reset_gap_ms after the user's last starts from an empty lifetime record and
     * zero state, so it scores exactly as a new user's identical event (its window is that event alone: the gap is
     * beyond the horizon). A gap of exactly reset_gap_ms keeps both. The model-state TTL is longer than the gap
     * here, so that the rule, not the cleanup of an inactive user, is what acts.
     */
    @Test
    void aUserBackAfterMoreThanTheResetGapScoresAsANewUser() throws Exception {
        long gap = served.resetGapMs();
        Instant lastSeen = T0.plusSeconds(60);
        for (long back : new long[] {gap + 1, gap}) {
            Instant at = lastSeen.plusMillis(back);
            List<Clicks.Builder> alice = List.of(click(ALICE).type("view").item("i1").at(T0),
                    click(ALICE).type("cart").item("i1").at(lastSeen),
                    click(ALICE).type("cart").item("i9").category("c9").at(at));
            Clicks.Builder newcomer = click("newcomer").type("cart").item("i9").category("c9").at(at);
            harness = ScoringHarness.open(incremental().maxBatch(1).modelStateTtlMs(3 * gap).build());
            harness.sendAll(alice.subList(0, 2));
            harness.watermark(ms(lastSeen));
            harness.watermark(ms(at) - 1);
            assertThat(harness.userState(ALICE).window().isEmpty()).as("past the horizon").isTrue();
            assertThat(harness.lifetime(ALICE).count(spec.typeId("cart"))).as("but kept").isEqualTo(1);

            harness.send(alice.get(2));
            harness.send(newcomer);
            harness.watermark(ms(at));

            // The reference applies the rule too; both one row per call, so bit for bit.
            ScoringReference.assertMatches(reference.steps(alice, spec.maxEvents(), spec.horizonMs()),
                    harness.scored(ALICE), 0f);
            ScoringReference.assertMatches(reference.steps(List.of(newcomer), spec.maxEvents(), spec.horizonMs()),
                    harness.scored("newcomer"), 0f);
            float[] aliceBack = harness.scored(ALICE).get(2).scores;
            float[] asNew = harness.scored("newcomer").get(0).scores;
            Lifetime a = harness.lifetime(ALICE);
            if (back > gap) {
                assertThat(aliceBack).as("back after more than the gap: a new user").containsExactly(asNew);
                assertThat(a.count(spec.typeId("view")) + a.count(spec.typeId("cart"))).isEqualTo(1);
                assertThat(a.first()).isEqualTo(ms(at));
            } else {
                assertThat(aliceBack).as("back after exactly the gap: not a new user").isNotEqualTo(asNew);
                assertThat(a.count(spec.typeId("view")) + a.count(spec.typeId("cart"))).isEqualTo(3);
                assertThat(a.first()).isEqualTo(ms(T0));
            }
            harness.close();
            harness = null;
        }
    }

    /**
     * A user back after more than the model-state TTL (0: the horizon) is a new user, however the watermark moved in
     * between: whether it passed the user's last event + TTL first (the timer dropped the value) or jumped to the
     * returning event (nothing dropped yet), and also when a running cooldown keeps the value. Scores must not
     * depend on the watermark's steps, or a replay would not reproduce them.
     */
    @Test
    void aUserBackAfterTheModelStateTtlIsNewWhateverTheWatermarksSteps() throws Exception {
        long hour = ScoringFixture.ONE_HOUR;
        long[][] cases = {{2 * hour, 0}, {0, 0}, {0, 3 * hour}}; // model-state TTL, cooldown
        for (long[] c : cases) {
            long retention = c[0] > 0 ? c[0] : hour;
            Instant back = T0.plusMillis(retention + 1);
            List<float[]> scores = new ArrayList<>();
            for (boolean stepped : new boolean[] {true, false}) {
                harness = ScoringHarness.open(incremental().horizonMs(hour).modelStateTtlMs(c[0]).cooldownMs(c[1])
                        .thresholds(0.0, 0.0).maxBatch(1).build());
                harness.send(click(ALICE).type("cart").at(T0));
                harness.watermark(ms(T0));
                harness.send(click(ALICE).type("view").item("i2").at(back));
                harness.send(click("newcomer").type("view").item("i2").at(back));
                if (stepped) {
                    harness.watermark(ms(back) - 1);
                }
                harness.watermark(ms(back));
                assertThat(harness.scored(ALICE).get(1).scores)
                        .as("TTL %d ms, cooldown %d ms, watermark %s: back after the TTL is a new user", c[0], c[1],
                                stepped ? "stepping past last + TTL" : "jumping")
                        .containsExactly(harness.scored("newcomer").get(0).scores);
                scores.add(harness.scored(ALICE).get(1).scores);
                harness.close();
                harness = null;
            }
            assertThat(scores.get(0)).containsExactly(scores.get(1));
        }
    }

    // ---------------------------------------------------------------- helpers

    /** {@code count} events of one user a minute apart, alternating view and cart. */
    private static List<Clicks.Builder> history(String user, int count) {
        List<Clicks.Builder> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(click(user).type(i % 2 == 0 ? "view" : "cart").item("i" + (i % 3)).at(T0.plusSeconds(60L * i)));
        }
        return out;
    }

    private static List<Clicks.Builder> randomHistory(Random random, int count, String user) {
        List<String> types = spec.vocabulary();
        List<Clicks.Builder> out = new ArrayList<>();
        Instant t = T0;
        for (int i = 0; i < count; i++) {
            t = t.plusSeconds(random.nextInt(4) == 0 ? 0 : random.nextInt(3 * 3600));
            out.add(click(user).type(types.get(random.nextInt(types.size()))).item("i" + random.nextInt(6))
                    .category("c" + random.nextInt(3)).at(t).offset(i));
        }
        return out;
    }
}
