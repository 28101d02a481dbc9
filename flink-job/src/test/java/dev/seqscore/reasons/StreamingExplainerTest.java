package dev.seqscore.reasons;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.Lifetime;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.SpecFixtures;
import dev.seqscore.features.WindowEvent;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.features.Scoring;
import dev.seqscore.model.TestBundles;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reasons for the streaming model, on the tiny step graph: the history group occludes the lifetime features and the
 * state, the other groups occlude as for the windowed model, and texts read lifetime values back.
 */
class StreamingExplainerTest {
    private static final long T0 = 1_511_539_200_000L;

    @TempDir
    Path tmp;

    private ModelSpec spec;
    private ModelSpec.Served served;
    private OnnxScorer scorer;
    private FeatureEncoder encoder;

    @BeforeEach
    void open() {
        ModelBundle bundle = ModelBundle.load(TestBundles.tinyStreaming(tmp.resolve("b")));
        spec = bundle.spec();
        served = bundle.served(Scoring.INCREMENTAL);
        scorer = new OnnxScorer(bundle, Scoring.INCREMENTAL, 1);
        encoder = new FeatureEncoder(spec);
    }

    @AfterEach
    void close() {
        scorer.close();
    }

    /** Rows of users with a few earlier events, their lifetime features and a non-zero state. */
    private FeatureBatch batch(int rows) {
        Random r = new Random(rows);
        FeatureBatch b = FeatureBatch.forServed(spec, served, rows);
        for (int row = 0; row < rows; row++) {
            Lifetime record = Lifetime.forSpec(spec);
            List<WindowEvent> window = new ArrayList<>();
            long t = T0 + r.nextInt(100_000);
            for (int i = 0, len = 2 + r.nextInt(4); i < len; i++) {
                t += r.nextInt(600_000);
                int type = 1 + r.nextInt(5);
                window.add(new WindowEvent("i" + r.nextInt(5), "c" + r.nextInt(2), type, t));
                if (i < len - 1) record.apply(t, type);
            }
            encoder.add(window, b);
            WindowEvent e = window.get(window.size() - 1);
            encoder.addLifetime(record, e.eventTime, e.typeId, b, row);
            for (int z = 0; z < b.stateSize; z++) b.state[row * b.stateSize + z] = r.nextFloat() - 0.2f;
        }
        return b;
    }

    /** The spec's occlusion written out independently of the explainer, scored as a batch of one. */
    private float[] scoreOccluded(FeatureBatch batch, int row, ModelSpec.ReasonGroup group) {
        FeatureBatch one = FeatureBatch.forServed(spec, served, 1);
        batch.copyRow(row, one, 0);
        one.size = 1;
        if (group.sequence()) {
            for (int p = 0; p < one.maxEvents - 1; p++) {
                one.eventType[p] = 0;
                one.itemBucket[p] = 0;
                one.categoryBucket[p] = 0;
                one.mask[p] = 0;
                Arrays.fill(one.seqNumeric, p * one.sequenceFeatures, (p + 1) * one.sequenceFeatures, 0f);
            }
        }
        for (int f : group.profileIndices()) one.profile[f] = 0;
        if (group.history()) {
            Arrays.fill(one.lifetime, 0f);
            Arrays.fill(one.state, 0f);
        }
        float[][] s = scorer.score(one);
        return new float[] {s[0][0], s[1][0]};
    }

    @Test
    void dropsFromOneBatchedCallEqualScoringEachOcclusionAlone() {
        FeatureBatch b = batch(5);
        b.size = 5;
        float[][] scores = scorer.score(b);
        float[] stateOut = b.stateOut.clone();
        List<ModelSpec.ReasonGroup> groups = served.reasonGroups();
        Explainer explainer = new Explainer(spec, served, groups.size(), 2);
        Reason[][] reasons = explainer.explain(b, new int[] {1, 3, 4}, 3, scores, new String[] {"view", "cart", "buy"},
                scorer);

        assertThat(explainer.variantsPerRow()).isEqualTo(3);
        assertThat(b.stateOut).as("explaining leaves the scored rows' next states alone").containsExactly(stateOut);
        boolean historyExplained = false;
        for (int i = 0; i < 3; i++) {
            int row = new int[] {1, 3, 4}[i];
            assertThat(reasons[i]).isNotEmpty();
            for (Reason r : reasons[i]) {
                ModelSpec.ReasonGroup g = groups.stream().filter(x -> x.name().equals(r.group)).findFirst()
                        .orElseThrow();
                float expected = scores[r.output][row] - scoreOccluded(b, row, g)[r.output];
                assertThat(r.drop).as("row %d output %d %s", row, r.output, r.group).isCloseTo(expected, within(1e-6f));
                historyExplained |= g.history();
            }
        }
        assertThat(historyExplained).as("the history group is among the reasons").isTrue();
    }

    @Test
    void theHistoryGroupIsANewUsersLifetimeAndState() {
        FeatureBatch b = batch(1);
        b.size = 1;
        float[][] scores = scorer.score(b);
        ModelSpec.ReasonGroup history = served.reasonGroups().get(1);
        assertThat(history.history()).isTrue();
        // On the tiny graph, purchase's logit loses mean(lifetime) + mean(state) when both are occluded.
        double lm = 0, stm = 0;
        for (float v : b.lifetime) lm += v / b.lifetimeFeatures;
        for (float v : b.state) stm += v / b.stateSize;
        double logit = Math.log(scores[0][0] / (1 - scores[0][0]));
        double occluded = 1 / (1 + Math.exp(-(logit - lm - stm)));
        Reason[][] reasons = new Explainer(spec, served, 3, 1).explain(b, new int[] {0}, 1, scores,
                new String[] {"view"}, scorer);
        Reason r = Arrays.stream(reasons[0]).filter(x -> x.output == 0 && x.group.equals("history")).findFirst()
                .orElseThrow();
        assertThat((double) r.drop).isCloseTo(scores[0][0] - occluded, within(1e-5));
    }

    @Test
    void textsReadLifetimeValuesBack() {
        Lifetime record = Lifetime.forSpec(spec);
        long day = 86_400_000L;
        record.apply(T0, 4); // buy
        record.apply(T0 + day, 1);
        record.apply(T0 + 3 * day, 4); // buy
        FeatureBatch b = FeatureBatch.forServed(spec, served, 1);
        encoder.addLifetime(record, T0 + 3 * day + 2 * 3_600_000L, 1, b, 0);
        ReasonText text = new ReasonText(spec, served);
        String template = served.reasonGroups().get(1).text();
        assertThat(text.fill(template, b.profile, 0, b.lifetime, 0, "view"))
                .isEqualTo("2 buys on 3 active days, the last 2 h ago");
        assertThat(text.fill("{life_since_prev_event}, {life_days_since_first}, {life_has_prev_buy}, "
                + "{life_count_view}", b.profile, 0, b.lifetime, 0, "view"))
                .isEqualTo("2 h, 3 days, yes, 2");
        Lifetime empty = Lifetime.forSpec(spec);
        encoder.addLifetime(empty, T0, 2, b, 0);
        assertThat(text.fill("{life_since_prev_buy}, {life_has_prev_buy}", b.profile, 0, b.lifetime, 0, "cart"))
                .as("no buy yet: the reset gap, capped").isEqualTo("30 days or more, no");
        assertThat(ReasonText.longDuration(47 * 3600)).isEqualTo("47 h");
        assertThat(ReasonText.longDuration(86400 * 2.4)).isEqualTo("2 days");
    }

    @Test
    void theServedModelChoosesTheGroups() {
        ModelSpec v3 = SpecFixtures.smallSpecV3();
        assertThat(new Explainer(v3, 2, 4).variantsPerRow()).isEqualTo(v3.reasonGroups().size());
        assertThat(new Explainer(v3, v3.served(Scoring.INCREMENTAL), 2, 4).variantsPerRow())
                .isEqualTo(v3.streaming().orElseThrow().reasonGroups().size());
        String noStreamingReasons = SpecFixtures.smallSpecV3Json()
                .replaceAll("(?s),\\n    \"reasons\": \\{\"top\": 3.*?\\n    ]},", ",");
        ModelSpec bare = ModelSpec.parse(noStreamingReasons, "s.json");
        assertThatThrownBy(() -> new Explainer(bare, bare.served(Scoring.INCREMENTAL), 2, 4))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("fedcba9876543210 (s.json, streaming) defines no reason groups")
                .hasMessageContaining("--alert-reasons 0");
    }
}
