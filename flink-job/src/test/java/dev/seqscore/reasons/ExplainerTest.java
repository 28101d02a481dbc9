package dev.seqscore.reasons;

import static dev.seqscore.testing.Clicks.T0;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.SpecFixtures;
import dev.seqscore.features.WindowEvent;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.testing.RepoPaths;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Reasons by occlusion on the committed model and real ONNX Runtime: one batched call gives the same drops as
 * scoring every occluded window on its own, reasons come best first, and the texts carry the window's values.
 */
class ExplainerTest {
    private static final float TOLERANCE = 1e-5f;

    private static ModelBundle bundle;
    private static ModelSpec spec;
    private static OnnxScorer scorer;
    private static FeatureEncoder encoder;

    @BeforeAll
    static void load() {
        bundle = ModelBundle.load(RepoPaths.defaultModel());
        spec = bundle.spec();
        scorer = new OnnxScorer(bundle);
        encoder = new FeatureEncoder(spec);
    }

    @AfterAll
    static void close() {
        if (scorer != null) {
            scorer.close();
        }
    }

    private static WindowEvent event(String type, String item, String category, Instant at) {
        return new WindowEvent(item, category, spec.typeId(type), at.toEpochMilli());
    }

    /** Three carts of different items, none bought, then views of the last cart's item: a shopper about to buy. */
    private static List<WindowEvent> cartsWithoutBuy() {
        List<WindowEvent> w = new ArrayList<>();
        w.add(event("view", "i1", "c1", T0));
        w.add(event("cart", "i1", "c1", T0.plus(Duration.ofMinutes(2))));
        w.add(event("cart", "i2", "c1", T0.plus(Duration.ofMinutes(4))));
        w.add(event("view", "i3", "c2", T0.plus(Duration.ofMinutes(5))));
        w.add(event("cart", "i3", "c2", T0.plus(Duration.ofMinutes(6))));
        w.add(event("view", "i3", "c2", T0.plus(Duration.ofMinutes(16))));
        return w;
    }

    private static List<WindowEvent> lonelyView() {
        return List.of(event("view", "i9", "c9", T0));
    }

    private static List<WindowEvent> longSession() {
        List<WindowEvent> w = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            w.add(event(i % 7 == 3 ? "fav" : "view", "i" + (i % 4), "c" + (i % 2), T0.plus(Duration.ofMinutes(i))));
        }
        return w;
    }

    private static FeatureBatch encode(List<List<WindowEvent>> windows) {
        FeatureBatch batch = encoder.newBatch(windows.size());
        for (List<WindowEvent> w : windows) {
            encoder.add(w, batch);
        }
        return batch;
    }

    /** The occlusion the spec describes, written out independently of the explainer, scored as a batch of one. */
    private static float[] scoreOccluded(FeatureBatch batch, int row, ModelSpec.ReasonGroup group) {
        FeatureBatch one = encoder.newBatch(1);
        batch.copyRow(row, one, 0);
        one.size = 1;
        int n = spec.maxEvents();
        if (group.sequence()) {
            for (int p = 0; p < n - 1; p++) {
                one.eventType[p] = 0;
                one.itemBucket[p] = 0;
                one.categoryBucket[p] = 0;
                one.mask[p] = 0f;
                for (int f = 0; f < one.sequenceFeatures; f++) {
                    one.seqNumeric[p * one.sequenceFeatures + f] = 0f;
                }
            }
        }
        for (int f : group.profileIndices()) {
            one.profile[f] = 0f;
        }
        float[][] s = scorer.score(one);
        float[] out = new float[s.length];
        for (int o = 0; o < s.length; o++) {
            out[o] = s[o][0];
        }
        return out;
    }

    @Test
    void dropsFromOneBatchedCallEqualScoringEachOcclusionAlone() {
        FeatureBatch batch = encode(List.of(lonelyView(), cartsWithoutBuy(), longSession()));
        float[][] scores = scorer.score(batch);
        int groups = spec.reasonGroups().size();
        Explainer explainer = new Explainer(spec, groups, 16);

        Reason[][] reasons = explainer.explain(batch, new int[] {1, 2}, 2, scores, new String[] {"view", "view"},
                scorer);

        assertThat(reasons).hasNumberOfRows(2);
        for (int i = 0; i < 2; i++) {
            int row = i + 1;
            assertThat(reasons[i]).isNotEmpty();
            for (Reason r : reasons[i]) {
                ModelSpec.ReasonGroup g = spec.reasonGroups().stream()
                        .filter(x -> x.name().equals(r.group)).findFirst().orElseThrow();
                float expected = scores[r.output][row] - scoreOccluded(batch, row, g)[r.output];
                assertThat(r.drop).as("row %d, output %d, %s", row, r.output, r.group)
                        .isCloseTo(expected, within(TOLERANCE));
            }
        }
    }

    @Test
    void eachOutputGetsAtMostTopReasonsBestFirstAndOnlyTheFirstMayNotLowerTheScore() {
        FeatureBatch batch = encode(List.of(cartsWithoutBuy(), longSession(), lonelyView()));
        float[][] scores = scorer.score(batch);
        Reason[][] reasons = new Explainer(spec, 2, 2).explain(batch, new int[] {0, 1, 2}, 3, scores,
                new String[] {"view", "view", "view"}, scorer);

        for (Reason[] row : reasons) {
            for (int o = 0; o < spec.outputs().size(); o++) {
                int output = o;
                Reason[] mine = Arrays.stream(row).filter(r -> r.output == output).toArray(Reason[]::new);
                assertThat(mine).as("output %d always has its best group", o).hasSizeBetween(1, 2);
                for (int k = 1; k < mine.length; k++) {
                    assertThat(mine[k].drop).isPositive().isLessThanOrEqualTo(mine[k - 1].drop);
                }
            }
        }
    }

    @Test
    void textsCarryTheWindowsActualValues() {
        FeatureBatch batch = encode(List.of(cartsWithoutBuy()));
        ReasonText text = new ReasonText(spec);
        String carts = group("carts_without_buy").text();
        String since = group("time_since_previous").text();
        String sequence = group("sequence").text();

        assertThat(text.fill(carts, batch.profile, 0, "view"))
                .isEqualTo(carts.replace("{carts_without_buy}", "3").replace("{recent_cart}", "3"));
        assertThat(text.fill(since, batch.profile, 0, "view"))
                .isEqualTo(since.replace("{since_prev_event}", "10 min"));
        assertThat(text.fill(sequence, batch.profile, 0, "view"))
                .isEqualTo(sequence.replace("{window_length}", "6"));
        // The last event is at T0 + 16 min = 01:16 UTC, which is 09:16 at the model's +08:00.
        assertThat(text.fill("at {event_hour_sin}, a {event_type}", batch.profile, 0, "view"))
                .isEqualTo("at 09:16, a view");
        FeatureBatch first = encode(List.of(lonelyView()));
        assertThat(text.fill(since, first.profile, 0, "view")).as("no earlier event: the horizon, capped")
                .isEqualTo(since.replace("{since_prev_event}", "24 h or more"));
    }

    @Test
    void durationsReadLikeAPersonWouldSayThem() {
        assertThat(ReasonText.duration(42)).isEqualTo("42 s");
        assertThat(ReasonText.duration(600)).isEqualTo("10 min");
        assertThat(ReasonText.duration(3 * 3600 + 5 * 60)).isEqualTo("3 h 5 min");
        assertThat(ReasonText.duration(86400)).isEqualTo("24 h");
    }

    @Test
    void aModelWithoutReasonGroupsIsRefusedWithTheFix() {
        assertThatThrownBy(() -> new Explainer(SpecFixtures.smallSpec(), 3, 4))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("--alert-reasons 0");
    }

    private static ModelSpec.ReasonGroup group(String name) {
        return spec.reasonGroups().stream().filter(g -> g.name().equals(name)).findFirst().orElseThrow();
    }
}
