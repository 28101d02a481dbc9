package dev.seqscore.reasons;

import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.features.Scoring;
import java.util.Arrays;
import java.util.List;

/**
 * Explains scored rows by occlusion: every reason group of the served model is replaced, one at a time, by its
 * training mean (0 after standardisation), for the sequence by the current event alone, and for the history (streaming
 * model) by a new user's: lifetime features at their mean and the state zeros. All variants of all rows go through
 * one ONNX Runtime call, and each output's reasons are the groups whose occlusion lowers its score most.
 *
 * <p>Keeps its variant batch between calls, so explaining allocates little beyond the reasons. One per task; not
 * thread-safe.
 */
public final class Explainer {
    private final List<ModelSpec.ReasonGroup> groups;
    private final int top;
    private final int rowsPerCall;
    private final int outputs;
    private final ReasonText text;
    private final FeatureBatch variants;
    private final float[][] variantScores;
    private final Integer[] order;
    private final float[] drops;

    /** An explainer of the windowed model. */
    public Explainer(ModelSpec spec, int top, int rowsPerCall) {
        this(spec, spec.served(Scoring.WINDOWED), top, rowsPerCall);
    }

    /**
     * @param served      the model whose scores are explained, with the scorer of that model
     * @param top         reasons per output at most
     * @param rowsPerCall rows explained per ONNX Runtime call; more rows take more calls
     * @throws IllegalArgumentException if the served model has no reason groups
     */
    public Explainer(ModelSpec spec, ModelSpec.Served served, int top, int rowsPerCall) {
        if (served.reasonGroups().isEmpty()) {
            throw new IllegalArgumentException("model " + served.modelVersion() + " (" + spec.source()
                    + (served.incremental() ? ", streaming" : "") + ") defines no reason groups: export it again "
                    + "with this version of model-export, or run without reasons (--alert-reasons 0)");
        }
        if (top < 1 || rowsPerCall < 1) {
            throw new IllegalArgumentException("top and rowsPerCall must be positive, got " + top + ", "
                    + rowsPerCall);
        }
        this.groups = served.reasonGroups();
        this.top = top;
        this.rowsPerCall = rowsPerCall;
        this.outputs = served.outputs().size();
        this.text = new ReasonText(spec, served);
        this.variants = FeatureBatch.forServed(spec, served, rowsPerCall * groups.size());
        this.variantScores = new float[outputs][rowsPerCall * groups.size()];
        this.order = new Integer[groups.size()];
        this.drops = new float[groups.size()];
    }

    /** Variant rows per explained row: one per reason group. */
    public int variantsPerRow() {
        return groups.size();
    }

    /**
     * Reasons for {@code rows[0..count)} of {@code batch}, whose scores are {@code scores[output][row]}: for each row,
     * up to {@code top} reasons per output, best first; a row always gets each output's best group, even when no
     * occlusion lowers its score (then its drop is not positive).
     */
    public Reason[][] explain(FeatureBatch batch, int[] rows, int count, float[][] scores, String[] eventTypes,
            OnnxScorer scorer) {
        Reason[][] out = new Reason[count][];
        int g = groups.size();
        for (int start = 0; start < count; start += rowsPerCall) {
            int chunk = Math.min(rowsPerCall, count - start);
            variants.clear();
            for (int i = 0; i < chunk; i++) {
                int row = rows[start + i];
                for (int k = 0; k < g; k++) {
                    int v = i * g + k;
                    batch.copyRow(row, variants, v);
                    occlude(groups.get(k), v);
                }
            }
            variants.size = chunk * g;
            scorer.score(variants, variantScores);
            for (int i = 0; i < chunk; i++) {
                int row = rows[start + i];
                out[start + i] = reasons(batch, row, i * g, scores, eventTypes[start + i]);
            }
        }
        return out;
    }

    private void occlude(ModelSpec.ReasonGroup group, int v) {
        if (group.sequence()) {
            int n = variants.maxEvents;
            int from = v * n;
            int to = from + n - 1; // the current event is the window's last, right-aligned position
            Arrays.fill(variants.eventType, from, to, 0L);
            Arrays.fill(variants.itemBucket, from, to, 0L);
            Arrays.fill(variants.categoryBucket, from, to, 0L);
            Arrays.fill(variants.mask, from, to, 0f);
            Arrays.fill(variants.seqNumeric, from * variants.sequenceFeatures, to * variants.sequenceFeatures, 0f);
        }
        int p = v * variants.profileFeatures;
        for (int f : group.profileIndices()) {
            variants.profile[p + f] = 0f;
        }
        if (group.history()) {
            int lf = variants.lifetimeFeatures;
            int z = variants.stateSize;
            Arrays.fill(variants.lifetime, v * lf, (v + 1) * lf, 0f);
            Arrays.fill(variants.state, v * z, (v + 1) * z, 0f);
        }
    }

    private Reason[] reasons(FeatureBatch batch, int row, int firstVariant, float[][] scores, String eventType) {
        int g = groups.size();
        int kept = Math.min(top, g);
        Reason[] out = new Reason[outputs * kept];
        int n = 0;
        for (int o = 0; o < outputs; o++) {
            for (int k = 0; k < g; k++) {
                order[k] = k;
                drops[k] = scores[o][row] - variantScores[o][firstVariant + k];
            }
            // Stable: equal drops keep the spec's group order.
            Arrays.sort(order, (a, b) -> Float.compare(drops[b], drops[a]));
            for (int r = 0; r < kept; r++) {
                int k = order[r];
                if (r > 0 && drops[k] <= 0f) {
                    break;
                }
                ModelSpec.ReasonGroup group = groups.get(k);
                out[n++] = new Reason(o, group.name(), text.fill(group.text(), batch.profile,
                        row * batch.profileFeatures, batch.lifetime, row * batch.lifetimeFeatures, eventType),
                        drops[k]);
            }
        }
        return n == out.length ? out : Arrays.copyOf(out, n);
    }
}
