package dev.seqscore.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.GoldenHistories;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.WindowEvent;
import dev.seqscore.features.WindowRule;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * The proof that Java serving computes what Python trained on: every line of {@code models/default/golden.jsonl}
 * goes through WindowRule, FeatureEncoder and OnnxScorer, and must reproduce the recorded tensors (ints equal, floats
 * within 1e-5) and model outputs (within 1e-4). Fails, rather than skips, if the committed bundle is missing.
 */
class GoldenParityTest {
    private static final double FEATURE_TOLERANCE = 1e-5;
    private static final double OUTPUT_TOLERANCE = 1e-4;

    private static ModelBundle bundle;
    private static ModelSpec spec;
    private static List<Golden> goldens;

    private record Golden(int line, List<WindowEvent> history, JsonNode features, JsonNode outputs) {}

    @BeforeAll
    static void load() throws IOException {
        Path dir = TestBundles.defaultBundle();
        bundle = ModelBundle.load(dir);
        spec = bundle.spec();
        ObjectMapper mapper = new ObjectMapper();
        goldens = new ArrayList<>();
        int line = 0;
        for (String text : Files.readAllLines(dir.resolve("golden.jsonl"), StandardCharsets.UTF_8)) {
            line++;
            if (text.isBlank()) continue;
            JsonNode g = mapper.readTree(text);
            List<WindowEvent> history = GoldenHistories.of(g, spec);
            for (WindowEvent e : history) {
                assertThat(e.typeId).as("golden line %d: event type of %s", line, e).isPositive();
            }
            goldens.add(new Golden(line, history, g.get("features"), g.get("outputs")));
        }
    }

    @Test
    void goldenCoversTheCasesTheContractPromises() {
        int n = spec.maxEvents();
        int shortWindows = 0, horizonCut = 0, full = 0;
        for (Golden g : goldens) {
            int len = WindowRule.windowEndingAt(g.history(), n, spec.horizonMs()).size();
            if (len == n) full++;
            else if (len < g.history().size()) horizonCut++;
            else shortWindows++;
        }
        assertThat(goldens).hasSizeGreaterThanOrEqualTo(200);
        assertThat(shortWindows).as("windows with L < N").isPositive();
        assertThat(horizonCut).as("windows cut by the horizon").isPositive();
        assertThat(full).as("windows with L = N").isPositive();
    }

    @Test
    void featuresMatchPythonOnEveryGoldenWindow() {
        FeatureEncoder encoder = new FeatureEncoder(spec);
        FeatureBatch batch = encoder.newBatch(1);
        int n = spec.maxEvents();
        int s = spec.sequenceFeatures().size();
        int p = spec.profileFeatures().size();
        double worst = 0;
        for (Golden g : goldens) {
            batch.clear();
            encoder.add(WindowRule.windowEndingAt(g.history(), n, spec.horizonMs()), batch);
            JsonNode f = g.features();
            String at = "golden line " + g.line();
            assertInts(at + " event_type", f.get("event_type"), batch.eventTypeRow(0));
            assertInts(at + " item_bucket", f.get("item_bucket"), batch.itemBucketRow(0));
            assertInts(at + " category_bucket", f.get("category_bucket"), batch.categoryBucketRow(0));
            float[] mask = batch.maskRow(0);
            JsonNode seq = f.get("seq_numeric");
            assertThat(seq.size()).as(at + " seq_numeric positions").isEqualTo(n);
            for (int pos = 0; pos < n; pos++) {
                assertThat(f.get("mask").get(pos).asDouble()).as(at + " mask[%d]", pos).isEqualTo(mask[pos]);
                assertThat(seq.get(pos).size()).as(at + " seq_numeric[%d] width", pos).isEqualTo(s);
                for (int k = 0; k < s; k++) {
                    double diff = Math.abs(seq.get(pos).get(k).asDouble() - batch.seqNumeric(0, pos, k));
                    worst = Math.max(worst, diff);
                    if (diff > FEATURE_TOLERANCE) {
                        fail("%s seq_numeric[%d][%s]: python %s, java %s", at, pos,
                                spec.sequenceFeatures().get(k).name(), seq.get(pos).get(k), batch.seqNumeric(0, pos, k));
                    }
                }
            }
            float[] profile = batch.profileRow(0);
            assertThat(f.get("profile").size()).as(at + " profile width").isEqualTo(p);
            for (int k = 0; k < p; k++) {
                double diff = Math.abs(f.get("profile").get(k).asDouble() - profile[k]);
                worst = Math.max(worst, diff);
                if (diff > FEATURE_TOLERANCE) {
                    fail("%s profile[%s]: python %s, java %s", at, spec.profileFeatures().get(k).name(),
                            f.get("profile").get(k), profile[k]);
                }
            }
        }
        System.out.printf("golden features: %d windows, max |python - java| = %.3g%n", goldens.size(), worst);
    }

    @Test
    void outputsMatchPythonBatchedAndOneByOne() {
        bundle.validate();
        FeatureEncoder encoder = new FeatureEncoder(spec);
        int n = spec.maxEvents();
        List<String> names = spec.outputs().stream().map(ModelSpec.OutputSpec::name).toList();
        double worst = 0;
        try (OnnxScorer scorer = new OnnxScorer(bundle)) {
            // Batches of 64 and a short last batch, as the operator sends them.
            FeatureBatch batch = encoder.newBatch(64);
            List<Golden> inBatch = new ArrayList<>();
            for (int i = 0; i < goldens.size(); i++) {
                Golden g = goldens.get(i);
                encoder.add(WindowRule.windowEndingAt(g.history(), n, spec.horizonMs()), batch);
                inBatch.add(g);
                if (batch.isFull() || i == goldens.size() - 1) {
                    float[][] scores = scorer.score(batch);
                    for (int row = 0; row < inBatch.size(); row++) {
                        worst = Math.max(worst, check(inBatch.get(row), names, scores, row));
                    }
                    batch.clear();
                    inBatch.clear();
                }
            }
            FeatureBatch one = encoder.newBatch(1);
            for (Golden g : goldens.subList(0, Math.min(10, goldens.size()))) {
                one.clear();
                encoder.add(WindowRule.windowEndingAt(g.history(), n, spec.horizonMs()), one);
                check(g, names, scorer.score(one), 0);
            }
        }
        System.out.printf("golden outputs: %d windows, max |python - java| = %.3g%n", goldens.size(), worst);
    }

    private static double check(Golden g, List<String> names, float[][] scores, int row) {
        double worst = 0;
        for (int o = 0; o < names.size(); o++) {
            JsonNode want = g.outputs().get(names.get(o));
            assertThat(want).as("golden line %d has no output %s", g.line(), names.get(o)).isNotNull();
            double diff = Math.abs(want.asDouble() - scores[o][row]);
            worst = Math.max(worst, diff);
            if (diff > OUTPUT_TOLERANCE) {
                fail("golden line %d %s: python %s, java %s", g.line(), names.get(o), want, scores[o][row]);
            }
        }
        return worst;
    }

    private static void assertInts(String what, JsonNode expected, long[] actual) {
        long[] want = new long[expected.size()];
        for (int i = 0; i < want.length; i++) want[i] = expected.get(i).asLong();
        assertThat(actual).as(what).containsExactly(want);
    }
}
