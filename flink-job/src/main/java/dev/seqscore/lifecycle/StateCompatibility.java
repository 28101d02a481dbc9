package dev.seqscore.lifecycle;

import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.Scoring;

/**
 * Whether a published bundle can score from the per-user state a running job keeps: the state holds windows of the
 * job's N events within its horizon H, and lifetime records laid out by the job's vocabulary and day boundary. A model
 * that needs more history than that, or reads the records another way, would be fed state it was not trained on, so
 * it is refused before it is loaded; such a model needs a new deployment (with a bootstrap, bin/seqscore bootstrap).
 * The recurrent model state is not part of this: it is tagged with the model version, and a new model starts it
 * again from zeros.
 */
public final class StateCompatibility {
    private StateCompatibility() {}

    /**
     * Why {@code candidate} cannot take over from state kept by a job of {@code job}'s spec, window N
     * {@code maxEvents} and horizon {@code horizonMs}, served with {@code scoring}; null if it can.
     */
    public static String refusal(ModelSpec candidate, ModelSpec job, Scoring scoring, int maxEvents, long horizonMs) {
        if (scoring == Scoring.INCREMENTAL && candidate.streaming().isEmpty()) {
            return "model " + candidate.modelVersion() + " has no streaming model (format "
                    + candidate.formatVersion() + ") and the job scores incrementally (--scoring incremental): "
                    + "export it with this version of model-export";
        }
        if (candidate.maxEvents() > maxEvents || candidate.horizonMs() > horizonMs) {
            return "model " + candidate.modelVersion() + " needs more history than the job's state keeps: its window "
                    + "is " + candidate.maxEvents() + " events within " + candidate.horizonMs() + " ms, the state "
                    + "keeps " + maxEvents + " events within " + horizonMs + " ms; deploy it as a new job (bin/seqscore"
                    + " bootstrap writes its state from history)";
        }
        if (candidate.maxEvents() < maxEvents) {
            return "model " + candidate.modelVersion() + " reads windows of " + candidate.maxEvents() + " events, "
                    + "shorter than the job's " + maxEvents + " (the tensors are that wide); deploy it as a new job "
                    + "with --max-events " + candidate.maxEvents();
        }
        if (!candidate.vocabulary().equals(job.vocabulary())) {
            return "model " + candidate.modelVersion() + " has the event types " + candidate.vocabulary()
                    + ", the job's state counts " + job.vocabulary() + "; deploy it as a new job";
        }
        if (candidate.utcOffsetMs() != job.utcOffsetMs()) {
            return "model " + candidate.modelVersion() + " counts days in zone " + candidate.zone() + ", the job's "
                    + "state in " + job.zone() + "; deploy it as a new job";
        }
        return null;
    }
}
