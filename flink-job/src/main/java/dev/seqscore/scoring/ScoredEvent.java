package dev.seqscore.scoring;

import dev.seqscore.reasons.Reason;
import java.util.Arrays;

/**
 * One scored click: the event, the window length the model saw, and one score per model output (in the order of
 * {@code model-spec.json}'s outputs). Feeds the alert decision, the scores topic and the backtest CSV.
 */
public class ScoredEvent {
    public String userId;
    public String eventType;
    public String itemId;
    public long eventTime;
    public int windowLength;
    public float[] scores;
    /** Reasons per output whose score reached the explain threshold, or null when none did (or reasons are off). */
    public Reason[] reasons;
    /** The version of the model that scored it. */
    public String modelVersion;

    public String sourceTopic;
    public int sourcePartition;
    public long sourceOffset;

    public ScoredEvent() {}

    @Override
    public String toString() {
        return "ScoredEvent{" + userId + ", " + eventType + ", item=" + itemId + ", t=" + eventTime + ", L="
                + windowLength + ", scores=" + Arrays.toString(scores)
                + (reasons == null ? "" : ", reasons=" + Arrays.toString(reasons)) + "}";
    }
}
