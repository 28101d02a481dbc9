package dev.seqscore.model;

import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.WindowEvent;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** The scorer on the tiny model, whose outputs {@link TinyOnnx#expected} recomputes from the batch arrays. */
class OnnxScorerTest {
    @TempDir
    Path tmp;

    private ModelBundle bundle;
    private FeatureEncoder encoder;
    private OnnxScorer scorer;

    @BeforeEach
    void open() {
        bundle = ModelBundle.load(TestBundles.tiny(tmp.resolve("b")));
        encoder = new FeatureEncoder(bundle.spec());
        scorer = new OnnxScorer(bundle);
    }

    @AfterEach
    void close() {
        scorer.close();
    }

    private static List<List<WindowEvent>> windows(int count, long seed) {
        Random r = new Random(seed);
        List<List<WindowEvent>> out = new ArrayList<>();
        for (int w = 0; w < count; w++) {
            List<WindowEvent> window = new ArrayList<>();
            long t = 1_511_539_200_000L + r.nextInt(1_000_000_000);
            int len = 1 + r.nextInt(5);
            for (int i = 0; i < len; i++) {
                t += r.nextInt(900_000);
                window.add(new WindowEvent("i" + r.nextInt(50), "c" + r.nextInt(5), 1 + r.nextInt(5), t));
            }
            out.add(window);
        }
        return out;
    }

    private static void assertMatchesFormula(FeatureBatch b, float[][] scores) {
        for (int row = 0; row < b.size; row++) {
            double[] want = TinyOnnx.expected(b.eventType, b.itemBucket, b.categoryBucket, b.seqNumeric, b.mask,
                    b.profile, row, b.maxEvents, b.sequenceFeatures, b.profileFeatures);
            assertThat(scores[0][row]).as("purchase row %d", row).isCloseTo((float) want[0], within(1e-5f));
            assertThat(scores[1][row]).as("churn row %d", row).isCloseTo((float) want[1], within(1e-5f));
        }
    }

    @Test
    void scoresEveryRowInSpecOutputOrder() {
        FeatureBatch batch = encoder.newBatch(16);
        for (List<WindowEvent> w : windows(11, 3)) encoder.add(w, batch);
        float[][] scores = scorer.score(batch);
        assertThat(scorer.outputNames()).containsExactly("purchase_30m", "churn_24h");
        assertThat(scores).hasDimensions(2, 11);
        assertMatchesFormula(batch, scores);
        // Different windows, different scores: the rows are not all fed the same data.
        assertThat(scores[1]).doesNotHaveDuplicates();
    }

    @Test
    void batchOfOneEqualsTheRowInABatch() {
        List<List<WindowEvent>> ws = windows(9, 4);
        FeatureBatch batch = encoder.newBatch(9);
        for (List<WindowEvent> w : ws) encoder.add(w, batch);
        float[][] all = scorer.score(batch);
        FeatureBatch one = encoder.newBatch(1);
        for (int i = 0; i < ws.size(); i++) {
            one.clear();
            encoder.add(ws.get(i), one);
            float[][] single = scorer.score(one);
            assertThat(single[0][0]).isCloseTo(all[0][i], within(1e-6f));
            assertThat(single[1][0]).isCloseTo(all[1][i], within(1e-6f));
        }
    }

    @Test
    void reusesBuffersAcrossBatchSizesAndIntoArrays() {
        FeatureBatch small = encoder.newBatch(2);
        for (List<WindowEvent> w : windows(2, 5)) encoder.add(w, small);
        assertMatchesFormula(small, scorer.score(small));
        FeatureBatch big = encoder.newBatch(64);
        for (List<WindowEvent> w : windows(40, 6)) encoder.add(w, big);
        float[][] into = new float[2][64];
        scorer.score(big, into);
        assertMatchesFormula(big, into);
        // Shrinking again must feed only the filled rows (ORT checks the element count).
        big.clear();
        for (List<WindowEvent> w : windows(3, 7)) encoder.add(w, big);
        assertMatchesFormula(big, scorer.score(big));
    }

    @Test
    void emptyBatchScoresNothing() {
        assertThat(scorer.score(encoder.newBatch(4))).hasDimensions(2, 0);
    }

    @Test
    void rejectsMisshapedBatchesAndResultArrays() {
        FeatureBatch wrong = new FeatureBatch(1, 6, 6, 12);
        wrong.size = 1;
        assertThatThrownBy(() -> scorer.score(wrong)).hasMessageContaining("N=6");
        FeatureBatch batch = encoder.newBatch(4);
        for (List<WindowEvent> w : windows(3, 8)) encoder.add(w, batch);
        assertThatThrownBy(() -> scorer.score(batch, new float[2][2])).hasMessageContaining("for 3 rows");
        assertThatThrownBy(() -> scorer.score(batch, new float[1][3])).hasMessageContaining("need 2 result arrays");
    }

    @Test
    void moreIntraOpThreadsGiveTheSameScores() {
        FeatureBatch batch = encoder.newBatch(8);
        for (List<WindowEvent> w : windows(8, 9)) encoder.add(w, batch);
        try (OnnxScorer two = new OnnxScorer(bundle, 2)) {
            float[][] a = scorer.score(batch);
            float[][] b = two.score(batch);
            for (int o = 0; o < 2; o++) {
                for (int i = 0; i < 8; i++) assertThat(b[o][i]).isCloseTo(a[o][i], within(1e-6f));
            }
        }
        assertThatThrownBy(() -> new OnnxScorer(bundle, 0)).hasMessageContaining("intraOpThreads");
    }
}
