package dev.seqscore.features;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * Hand-made windows against the small test spec (N=5, horizon 1 h, session gap 10 min, UTC+8; all means 0 and stds
 * 1 except same_category (0.25, 0.5) and window_length (0.5, 0.25)). Bucket values come from Python's fnv1a64.
 */
class FeatureEncoderTest {
    private static final int VIEW = 1, CART = 2, FAV = 3, BUY = 4, REMOVE = 5;
    private static final long MIN = 60_000L;
    /** 2017-11-25 00:00 in China (UTC+8). */
    private static final long MIDNIGHT_CN = 1_511_539_200_000L;
    private static final float EPS = 1e-6f;

    private final ModelSpec spec = SpecFixtures.smallSpec();
    private final FeatureEncoder encoder = new FeatureEncoder(spec);

    private static WindowEvent ev(String item, String category, int type, long t) {
        return new WindowEvent(item, category, type, t);
    }

    private static float f(double v) {
        return (float) v;
    }

    @Test
    void shortWindowIsLeftPaddedWithZeros() {
        FeatureBatch batch = encoder.newBatch(2);
        long t1 = MIDNIGHT_CN + 90_000;
        int row = encoder.add(List.of(ev("i1", "c1", VIEW, MIDNIGHT_CN), ev("i2", "c1", CART, t1)), batch);

        assertThat(row).isZero();
        assertThat(batch.size).isEqualTo(1);
        assertThat(batch.eventTypeRow(0)).containsExactly(0, 0, 0, VIEW, CART);
        assertThat(batch.itemBucketRow(0)).containsExactly(0, 0, 0, 432, 867);
        assertThat(batch.categoryBucketRow(0)).containsExactly(0, 0, 0, 90, 90);
        assertThat(batch.maskRow(0)).containsExactly(0, 0, 0, 1, 1);
        for (int p = 0; p < 3; p++) {
            for (int k = 0; k < 6; k++) {
                // Padding stays 0 even where standardisation would move a real 0 (same_category: -0.5).
                assertThat(batch.seqNumeric(0, p, k)).as("pad %d feature %d", p, k).isZero();
            }
        }
        // Oldest event: no gap; 00:00 local time.
        assertSeq(batch, 0, 3, 0, Math.log1p(90), 0, 1, 0, 1.5);
        double angle = 2 * Math.PI * 90 / 86400;
        assertSeq(batch, 0, 4, Math.log1p(90), 0, Math.sin(angle), Math.cos(angle), 1, 1.5);

        assertThat(batch.profileRow(0)).containsExactly(new float[] {
                f(Math.log1p(1)), f(Math.log1p(1)), 0, 0, 0,      // count_view .. count_remove_from_cart
                f(Math.log1p(2)), f(Math.log1p(1)),                // distinct items, categories
                f(Math.log1p(1)),                                  // the cart has no later buy
                f(Math.log1p(2)),                                  // 90 s gap: one session
                f(Math.log1p(3600)), 0,                            // no buy: a full horizon, has_prev_buy 0
                f((0.4 - 0.5) / 0.25)}, within(EPS));
    }

    @Test
    void historyCutByHorizonAndCount() {
        long e = MIDNIGHT_CN + 10 * 60 * MIN;
        List<WindowEvent> history = List.of(
                ev("a", "x", VIEW, e - 120 * MIN),
                ev("a", "x", BUY, e - 61 * MIN),       // older than the horizon
                ev("a", "x", CART, e - 50 * MIN),      // in the horizon, but the sixth from last
                ev("b", "y", BUY, e - 45 * MIN),
                ev("b", "y", CART, e - 30 * MIN),
                ev("c", null, VIEW, e - 25 * MIN),
                ev("a", "x", BUY, e - 20 * MIN),
                ev("b", "y", REMOVE, e));
        List<WindowEvent> window = WindowRule.windowEndingAt(history, spec.maxEvents(), spec.horizonMs());
        FeatureBatch batch = encoder.newBatch(1);
        encoder.add(window, batch);

        assertThat(batch.eventTypeRow(0)).containsExactly(BUY, CART, VIEW, BUY, REMOVE);
        assertThat(batch.itemBucketRow(0)).containsExactly(422, 422, 4083, 3213, 422);
        // A null category is the contract's empty category.
        assertThat(batch.categoryBucketRow(0)).containsExactly(341, 341, 806, 776, 341);
        assertThat(batch.maskRow(0)).containsExactly(1, 1, 1, 1, 1);

        double[] gaps = {0, Math.log1p(900), Math.log1p(300), Math.log1p(300), Math.log1p(1200)};
        double[] ages = {Math.log1p(2700), Math.log1p(1800), Math.log1p(1500), Math.log1p(1200), 0};
        double[] same = {1, 1, 0, 0, 1};
        for (int p = 0; p < 5; p++) {
            assertThat(batch.seqNumeric(0, p, 0)).as("gap %d", p).isCloseTo(f(gaps[p]), within(EPS));
            assertThat(batch.seqNumeric(0, p, 1)).as("age %d", p).isCloseTo(f(ages[p]), within(EPS));
            assertThat(batch.seqNumeric(0, p, 4)).as("same_item %d", p).isEqualTo(f(same[p]));
            assertThat(batch.seqNumeric(0, p, 5)).as("same_category %d", p).isEqualTo(f((same[p] - 0.25) / 0.5));
        }
        assertThat(batch.profileRow(0)).containsExactly(new float[] {
                f(Math.log1p(1)), f(Math.log1p(1)), 0, f(Math.log1p(2)), f(Math.log1p(1)),
                f(Math.log1p(3)), f(Math.log1p(3)),                // b, c, a; y, "", x
                f(Math.log1p(1)),                                  // cart b: the later buy is of a
                f(Math.log1p(1)),                                  // the last gap (20 min) breaks the session
                f(Math.log1p(1200)), 1,                            // latest earlier buy: 20 min before e
                f((1.0 - 0.5) / 0.25)}, within(EPS));
    }

    @Test
    void cartFollowedByABuyOfTheSameItemIsNotCounted() {
        long t = MIDNIGHT_CN;
        float[] p = profile(ev("a", "x", CART, t), ev("b", "x", CART, t + MIN), ev("a", "x", BUY, t + 2 * MIN),
                ev("a", "x", VIEW, t + 3 * MIN));
        assertThat(p[7]).isEqualTo(f(Math.log1p(1)));
        // A buy before the cart does not settle it.
        p = profile(ev("a", "x", BUY, t), ev("a", "x", CART, t + MIN));
        assertThat(p[7]).isEqualTo(f(Math.log1p(1)));
    }

    @Test
    void theScoredBuyIsNotAPreviousBuy() {
        float[] p = profile(ev("a", "x", VIEW, MIDNIGHT_CN), ev("a", "x", BUY, MIDNIGHT_CN + MIN));
        assertThat(p[9]).isEqualTo(f(Math.log1p(3600)));
        assertThat(p[10]).isZero();
        assertThat(p[3]).isEqualTo(f(Math.log1p(1)));
    }

    @Test
    void sinceAPreviousBuyIsCappedAtTheHorizon() {
        // The pipeline may keep a longer horizon than the model's; the feature still saturates at horizon_ms.
        float[] p = profile(ev("a", "x", BUY, MIDNIGHT_CN), ev("a", "x", VIEW, MIDNIGHT_CN + 3 * 60 * MIN));
        assertThat(p[9]).isEqualTo(f(Math.log1p(3600)));
        assertThat(p[10]).isEqualTo(1f);
    }

    @Test
    void sessionCountsBackFromTheScoredEvent() {
        long t = MIDNIGHT_CN;
        // Gaps: 20 min (break), 10 min (exactly the gap: same session), 1 min.
        float[] p = profile(ev("a", "x", VIEW, t), ev("a", "x", VIEW, t + 20 * MIN),
                ev("a", "x", VIEW, t + 30 * MIN), ev("a", "x", VIEW, t + 31 * MIN));
        assertThat(p[8]).isEqualTo(f(Math.log1p(3)));
        assertThat(p[0]).isEqualTo(f(Math.log1p(4)));
        assertThat(p[5]).isEqualTo(f(Math.log1p(1)));
    }

    @Test
    void timeOfDayUsesTheSpecOffset() {
        FeatureBatch batch = encoder.newBatch(1);
        // 06:00 in China is 22:00 UTC the day before.
        encoder.add(List.of(ev("a", "x", VIEW, MIDNIGHT_CN + 6 * 60 * MIN)), batch);
        assertThat(batch.seqNumeric(0, 4, 2)).isCloseTo(1f, within(EPS));
        assertThat(batch.seqNumeric(0, 4, 3)).isCloseTo(0f, within(EPS));
        // Before the epoch, t + offset is negative; floorMod still gives 23:00.
        batch.clear();
        encoder.add(List.of(ev("a", "x", VIEW, -28_800_000L - 60 * MIN)), batch);
        double angle = 2 * Math.PI * 23 / 24;
        assertThat(batch.seqNumeric(0, 4, 2)).isCloseTo(f(Math.sin(angle)), within(EPS));
        assertThat(batch.seqNumeric(0, 4, 3)).isCloseTo(f(Math.cos(angle)), within(EPS));
    }

    @Test
    void reusedRowIsFullyOverwritten() {
        FeatureBatch batch = encoder.newBatch(1);
        List<WindowEvent> full = new ArrayList<>();
        for (int i = 0; i < 5; i++) full.add(ev("i" + i, "c", CART, MIDNIGHT_CN + i * MIN));
        encoder.encode(full, batch, 0);
        encoder.encode(List.of(ev("i1", "c1", VIEW, MIDNIGHT_CN)), batch, 0);

        FeatureBatch fresh = encoder.newBatch(1);
        encoder.encode(List.of(ev("i1", "c1", VIEW, MIDNIGHT_CN)), fresh, 0);
        assertThat(batch.eventType).containsExactly(fresh.eventType);
        assertThat(batch.itemBucket).containsExactly(fresh.itemBucket);
        assertThat(batch.categoryBucket).containsExactly(fresh.categoryBucket);
        assertThat(batch.seqNumeric).containsExactly(fresh.seqNumeric);
        assertThat(batch.mask).containsExactly(fresh.mask);
        assertThat(batch.profile).containsExactly(fresh.profile);
        assertThat(batch.eventTypeRow(0)).containsExactly(0, 0, 0, 0, VIEW);
    }

    @Test
    void rowsAreIndependent() {
        FeatureBatch batch = encoder.newBatch(3);
        List<WindowEvent> a = List.of(ev("a", "x", VIEW, MIDNIGHT_CN));
        List<WindowEvent> b = List.of(ev("b", "y", CART, MIDNIGHT_CN), ev("b", "y", BUY, MIDNIGHT_CN + MIN));
        encoder.add(a, batch);
        encoder.add(b, batch);
        FeatureBatch single = encoder.newBatch(1);
        encoder.add(b, single);
        assertThat(batch.size).isEqualTo(2);
        assertThat(batch.eventTypeRow(1)).containsExactly(single.eventTypeRow(0));
        assertThat(batch.profileRow(1)).containsExactly(single.profileRow(0));
        assertThat(batch.eventTypeRow(0)).containsExactly(0, 0, 0, 0, VIEW);
    }

    @Test
    void encoderSurvivesJavaSerialization() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(encoder);
        }
        FeatureEncoder copy;
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            copy = (FeatureEncoder) in.readObject();
        }
        List<WindowEvent> w = List.of(ev("a", "x", FAV, MIDNIGHT_CN), ev("b", "x", BUY, MIDNIGHT_CN + MIN));
        FeatureBatch expected = encoder.newBatch(1);
        FeatureBatch actual = copy.newBatch(1);
        encoder.add(w, expected);
        copy.add(w, actual);
        assertThat(actual.seqNumeric).containsExactly(expected.seqNumeric);
        assertThat(actual.profile).containsExactly(expected.profile);
    }

    @Test
    void featureOrderFollowsTheSpec() {
        // Same features, different order: the tensors must follow the spec, not a fixed layout.
        String json = SpecFixtures.edited("{\"name\": \"gap_log1p\", \"mean\": 0.0, \"std\": 1.0},\n", "")
                .replace("{\"name\": \"same_category\", \"mean\": 0.25, \"std\": 0.5}",
                        "{\"name\": \"same_category\", \"mean\": 0.25, \"std\": 0.5},\n"
                                + "    {\"name\": \"gap_log1p\", \"mean\": 0.0, \"std\": 2.0}");
        FeatureEncoder reordered = new FeatureEncoder(ModelSpec.parse(json, "reordered.json"));
        FeatureBatch batch = reordered.newBatch(1);
        reordered.add(List.of(ev("a", "x", VIEW, MIDNIGHT_CN), ev("a", "x", VIEW, MIDNIGHT_CN + 90_000)), batch);
        assertThat(batch.seqNumeric(0, 4, 5)).isCloseTo(f(Math.log1p(90) / 2), within(EPS));
        assertThat(batch.seqNumeric(0, 4, 0)).isZero();   // age of e
    }

    @Test
    void rejectsWindowsTheRuleCannotProduce() {
        FeatureBatch batch = encoder.newBatch(1);
        assertThatThrownBy(() -> encoder.add(List.of(), batch)).hasMessageContaining("1..5 events, got 0");
        List<WindowEvent> six = new ArrayList<>();
        for (int i = 0; i < 6; i++) six.add(ev("a", "x", VIEW, i));
        assertThatThrownBy(() -> encoder.add(six, batch)).hasMessageContaining("1..5 events, got 6");
        assertThatThrownBy(() -> encoder.add(List.of(ev("a", "x", 0, 0)), batch))
                .hasMessageContaining("type id 0 outside the vocabulary 1..5");
        assertThat(batch.size).isZero();
    }

    @Test
    void refusesToOverfillABatchOrUseAMisshapedOne() {
        FeatureBatch batch = encoder.newBatch(1);
        encoder.add(List.of(ev("a", "x", VIEW, 0)), batch);
        assertThat(batch.isFull()).isTrue();
        assertThatThrownBy(() -> encoder.add(List.of(ev("a", "x", VIEW, 0)), batch))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("full");
        FeatureBatch wrong = new FeatureBatch(1, 4, 6, 12);
        assertThatThrownBy(() -> encoder.add(List.of(ev("a", "x", VIEW, 0)), wrong))
                .hasMessageContaining("N=4");
    }

    private float[] profile(WindowEvent... window) {
        FeatureBatch batch = encoder.newBatch(1);
        encoder.add(List.of(window), batch);
        return batch.profileRow(0);
    }

    @Test
    void formatTwoProfileFeaturesOfTheScoredEvent() {
        FeatureEncoder v2 = new FeatureEncoder(SpecFixtures.smallSpecV2());
        FeatureBatch batch = v2.newBatch(1);
        long t0 = MIDNIGHT_CN;
        v2.add(List.of(
                ev("i1", "c1", VIEW, t0),
                ev("i2", "c1", CART, t0 + 5 * MIN),
                ev("i1", "c2", VIEW, t0 + 20 * MIN),     // 5 min before e: inside the 10 min recent window
                ev("i1", "c1", CART, t0 + 25 * MIN)), batch);

        float[] p = batch.profileRow(0);
        assertThat(p).hasSize(27);
        // The 12 format-1 features come first, unchanged.
        assertThat(p[0]).isCloseTo(f(Math.log1p(2)), within(EPS));                  // count_view
        // recent_view, recent_cart, recent_fav, recent_buy, recent_remove_from_cart (e itself counts)
        assertThat(java.util.Arrays.copyOfRange(p, 12, 17)).containsExactly(new float[] {
                f(Math.log1p(1)), f(Math.log1p(1)), 0, 0, 0}, within(EPS));
        // is_<type> of the scored event: a cart
        assertThat(java.util.Arrays.copyOfRange(p, 17, 22)).containsExactly(0, 1, 0, 0, 0);
        double angle = 2 * Math.PI * (25 * 60) / 86400;
        assertThat(java.util.Arrays.copyOfRange(p, 22, 27)).containsExactly(new float[] {
                f(Math.log1p(5 * 60)),       // since_prev_event: 5 min
                f(Math.log1p(2)),            // same_item_count: i1 twice before e
                f(Math.log1p(2)),            // same_category_count: c1 twice before e
                f(Math.sin(angle)), f(Math.cos(angle))}, within(EPS));

        // A lone event: no previous event in the window means a full horizon, and nothing the same before it.
        batch.clear();
        v2.add(List.of(ev("i9", "c9", BUY, t0)), batch);
        float[] lone = batch.profileRow(0);
        assertThat(lone[15]).as("recent_buy").isCloseTo(f(Math.log1p(1)), within(EPS));
        assertThat(lone[20]).as("is_buy").isEqualTo(1f);
        assertThat(java.util.Arrays.copyOfRange(lone, 22, 25)).containsExactly(new float[] {
                f(Math.log1p(3600)), 0, 0}, within(EPS));
    }

    private static void assertSeq(FeatureBatch batch, int row, int p, double... expected) {
        for (int k = 0; k < expected.length; k++) {
            assertThat(batch.seqNumeric(row, p, k)).as("position %d feature %d", p, k)
                    .isCloseTo(f(expected[k]), within(EPS));
        }
    }

    @Test
    void lifetimeFeaturesNeedAStreamingModelAndABatchShapedForIt() {
        Lifetime record = Lifetime.forSpec(spec);
        assertThatThrownBy(() -> encoder.addLifetime(record, MIDNIGHT_CN, VIEW, encoder.newBatch(1), 0))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("has no streaming model");
        ModelSpec v3 = SpecFixtures.smallSpecV3();
        FeatureEncoder streaming = new FeatureEncoder(v3);
        assertThatThrownBy(() -> streaming.addLifetime(record, MIDNIGHT_CN, VIEW, streaming.newBatch(1), 0))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("0 lifetime features per row but the spec needs 10");
        FeatureBatch batch = FeatureBatch.forServed(v3, v3.served(Scoring.INCREMENTAL), 2);
        assertThatThrownBy(() -> streaming.addLifetime(record, MIDNIGHT_CN, 6, batch, 0))
                .hasMessageContaining("outside the vocabulary");
        assertThatThrownBy(() -> streaming.addLifetime(record, MIDNIGHT_CN, VIEW, batch, 2))
                .isInstanceOf(IndexOutOfBoundsException.class);
        // The windowed features of a streaming batch encode as in a windowed one.
        FeatureBatch windowed;
        FeatureBatch both = FeatureBatch.forServed(v3, v3.served(Scoring.INCREMENTAL), 1);
        List<WindowEvent> w = List.of(ev("a", "x", VIEW, MIDNIGHT_CN), ev("b", "x", CART, MIDNIGHT_CN + MIN));
        windowed = FeatureBatch.forSpec(SpecFixtures.smallSpecV2(), 1);
        new FeatureEncoder(SpecFixtures.smallSpecV2()).add(w, windowed);
        streaming.add(w, both);
        assertThat(both.profile).containsExactly(windowed.profile);
        assertThat(both.seqNumeric).containsExactly(windowed.seqNumeric);
    }

    @Test
    void aStreamingEncoderSurvivesJavaSerialization() throws Exception {
        ModelSpec v3 = SpecFixtures.smallSpecV3();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(new FeatureEncoder(v3));
        }
        FeatureEncoder copy;
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            copy = (FeatureEncoder) in.readObject();
        }
        Lifetime record = Lifetime.forSpec(v3);
        record.apply(MIDNIGHT_CN, BUY);
        FeatureBatch a = FeatureBatch.forServed(v3, v3.served(Scoring.INCREMENTAL), 1);
        FeatureBatch b = FeatureBatch.forServed(v3, v3.served(Scoring.INCREMENTAL), 1);
        new FeatureEncoder(v3).addLifetime(record, MIDNIGHT_CN + 5 * MIN, FAV, a, 0);
        copy.addLifetime(record, MIDNIGHT_CN + 5 * MIN, FAV, b, 0);
        assertThat(b.lifetime).containsExactly(a.lifetime);
        assertThat(a.lifetime[9]).as("has a previous buy").isEqualTo(1f);
    }
}
