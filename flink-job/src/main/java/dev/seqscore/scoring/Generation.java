package dev.seqscore.scoring;

import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.lifecycle.ModelSchedule;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.reasons.Explainer;

/**
 * One model loaded in a scorer subtask, with everything that depends on its spec: its session, its batch (one batch
 * never mixes models), its step and alert policy, its explainer. The job's own model is the first; each bundle
 * published to the running job is another, closed once no scheduled event time needs it.
 */
final class Generation implements AutoCloseable {
    final ModelSchedule.Model model;
    final ScoringSettings settings;
    final ModelSpec spec;
    final ModelSpec.Served served;
    final AlertPolicy policy;
    final UserStep step;
    final OnnxScorer scorer;
    final FeatureBatch batch;
    final float[][] results;
    /** Null when reasons are off. */
    final Explainer explainer;
    /** Whether it has shadowed: as the serving model it may take over the state it kept as a candidate. */
    boolean shadowed;

    Generation(ModelSchedule.Model model, ScoringSettings settings, OnnxScorer scorer) {
        this.model = model;
        this.settings = settings;
        this.spec = settings.bundle().spec();
        this.served = settings.served();
        this.policy = settings.alerts();
        this.step = new UserStep(settings);
        this.scorer = scorer;
        int maxBatch = settings.maxBatch();
        this.batch = FeatureBatch.forServed(spec, served, maxBatch);
        this.results = new float[served.outputs().size()][maxBatch];
        // Alerting rows are a small share of a batch; more than this many take more than one call.
        this.explainer = settings.reasonTop() == 0 ? null
                : new Explainer(spec, served, settings.reasonTop(), Math.min(maxBatch, 16));
    }

    String version() {
        return served.modelVersion();
    }

    @Override
    public void close() {
        scorer.close();
    }
}
