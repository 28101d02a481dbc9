package dev.seqscore.model;

import dev.seqscore.features.Scoring;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.WindowEvent;
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
 * {@link OnnxScorer} serving the streaming model: the tiny step graph, whose scores and next state
 * {@link TinyOnnx#expectedStep} recomputes from the batch arrays.
 */
class StepScorerTest {
    @TempDir
    Path tmp;

    private ModelBundle bundle;
    private ModelSpec spec;
    private ModelSpec.Served served;
    private FeatureEncoder encoder;
    private OnnxScorer scorer;

    @BeforeEach
    void open() {
        bundle = ModelBundle.load(TestBundles.tinyStreaming(tmp.resolve("b")));
        spec = bundle.spec();
        served = bundle.served(Scoring.INCREMENTAL);
        encoder = new FeatureEncoder(spec);
        scorer = new OnnxScorer(bundle, Scoring.INCREMENTAL, 1);
    }

    @AfterEach
    void close() {
        scorer.close();
    }

    /** {@code rows} random windows, with random lifetime and state rows. */
    private FeatureBatch batch(int capacity, int rows, long seed) {
        Random r = new Random(seed);
        FeatureBatch b = FeatureBatch.forServed(spec, served, capacity);
        for (int row = 0; row < rows; row++) {
            List<WindowEvent> window = new ArrayList<>();
            long t = 1_511_539_200_000L + r.nextInt(1_000_000_000);
            for (int i = 0, len = 1 + r.nextInt(5); i < len; i++) {
                t += r.nextInt(900_000);
                window.add(new WindowEvent("i" + r.nextInt(50), "c" + r.nextInt(5), 1 + r.nextInt(5), t));
            }
            encoder.add(window, b);
            for (int f = 0; f < b.lifetimeFeatures; f++) b.lifetime[row * b.lifetimeFeatures + f] = r.nextFloat() - 0.5f;
            for (int z = 0; z < b.stateSize; z++) b.state[row * b.stateSize + z] = 2 * r.nextFloat() - 1;
        }
        return b;
    }

    private static void assertMatchesFormula(FeatureBatch b, float[][] scores) {
        for (int row = 0; row < b.size; row++) {
            double[] want = TinyOnnx.expectedStep(b, row);
            assertThat(scores[0][row]).as("purchase row %d", row).isCloseTo((float) want[0], within(1e-5f));
            assertThat(scores[1][row]).as("churn row %d", row).isCloseTo((float) want[1], within(1e-5f));
            for (int z = 0; z < b.stateSize; z++) {
                assertThat(b.stateOut[row * b.stateSize + z]).as("state_out row %d [%d]", row, z)
                        .isCloseTo((float) want[2 + z], within(1e-5f));
            }
        }
    }

    @Test
    void scoresEveryRowAndReturnsItsNextState() {
        FeatureBatch b = batch(16, 11, 1);
        float[][] scores = scorer.score(b);
        assertThat(scorer.outputNames()).containsExactly("purchase_30m", "churn_24h");
        assertThat(scorer.served().incremental()).isTrue();
        assertThat(scores).hasDimensions(2, 11);
        assertMatchesFormula(b, scores);
        assertThat(scores[0]).doesNotHaveDuplicates();
        assertThat(b.stateOutRow(11)).as("rows past size are not written").containsOnly(0f);
    }

    @Test
    void theRowCountVariesFromCallToCall() {
        FeatureBatch big = batch(64, 40, 2);
        float[][] into = new float[2][64];
        scorer.score(big, into);
        assertMatchesFormula(big, into);
        FeatureBatch small = batch(64, 3, 3);
        scorer.score(small, into);
        assertMatchesFormula(small, into);
        FeatureBatch one = batch(1, 1, 4);
        assertMatchesFormula(one, scorer.score(one));
        assertThat(scorer.score(FeatureBatch.forServed(spec, served, 4))).hasDimensions(2, 0);
    }

    @Test
    void aUsersStateFedBackThroughBatchesOfManyUsersEqualsOneUserAtATime() {
        int users = 6, steps = 5;
        FeatureBatch events = batch(users * steps, users * steps, 5); // row u * steps + k: user u's k-th event
        float[][] aloneScores = new float[users * steps][];
        FeatureBatch one = FeatureBatch.forServed(spec, served, 1);
        for (int u = 0; u < users; u++) {
            float[] state = new float[spec.streaming().orElseThrow().stateSize()];
            for (int k = 0; k < steps; k++) {
                one.clear();
                events.copyRow(u * steps + k, one, 0);
                one.size = 1;
                one.setState(0, state);
                float[][] s = scorer.score(one);
                aloneScores[u * steps + k] = new float[] {s[0][0], s[1][0]};
                one.copyStateOut(0, state);
            }
        }
        FeatureBatch together = FeatureBatch.forServed(spec, served, users);
        float[][] states = new float[users][spec.streaming().orElseThrow().stateSize()];
        for (int k = 0; k < steps; k++) {
            together.clear();
            for (int u = 0; u < users; u++) {
                events.copyRow(u * steps + k, together, u);
                together.setState(u, states[u]);
            }
            together.size = users;
            float[][] s = scorer.score(together);
            assertMatchesFormula(together, s);
            for (int u = 0; u < users; u++) {
                assertThat(s[0][u]).isCloseTo(aloneScores[u * steps + k][0], within(1e-6f));
                assertThat(s[1][u]).isCloseTo(aloneScores[u * steps + k][1], within(1e-6f));
                together.copyStateOut(u, states[u]);
            }
        }
        assertThat(Arrays.stream(states).map(Arrays::toString).distinct()).hasSize(users);
    }

    @Test
    void theWindowedModelOfTheSameBundleStillServes() {
        try (OnnxScorer windowed = new OnnxScorer(bundle)) {
            assertThat(windowed.served().incremental()).isFalse();
            FeatureBatch b = batch(4, 4, 6);
            float[][] scores = windowed.score(b);
            for (int row = 0; row < 4; row++) {
                double[] want = TinyOnnx.expected(b.eventType, b.itemBucket, b.categoryBucket, b.seqNumeric, b.mask,
                        b.profile, row, b.maxEvents, b.sequenceFeatures, b.profileFeatures);
                assertThat(scores[0][row]).isCloseTo((float) want[0], within(1e-5f));
            }
            assertThat(b.stateOut).as("the windowed graph has no state").containsOnly(0f);
        }
    }

    @Test
    void refusesAWindowedBatch() {
        FeatureBatch windowed = encoder.newBatch(2);
        windowed.size = 1;
        assertThatThrownBy(() -> scorer.score(windowed)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("F=0, Z=0 but the model needs N=5, S=6, P=27, F=10, Z=4");
    }

    @Test
    void aBundleWithoutAStreamingModelCannotServeIncrementally() {
        ModelBundle v1 = ModelBundle.load(TestBundles.tiny(tmp.resolve("v1")));
        assertThatThrownBy(() -> new OnnxScorer(v1, Scoring.INCREMENTAL, 1))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("has no streaming model: use --scoring windowed");
    }
}
