package dev.seqscore.reasons;

/**
 * Why one model output scored high: a reason group whose occlusion lowers that output's score by {@link #drop}, with a
 * readable text that carries the event's actual values.
 */
public class Reason {
    /** Index of the model output (spec order) this reason explains. */
    public int output;
    public String group;
    public String text;
    /** The calibrated score minus the score with the group occluded. */
    public float drop;

    public Reason() {}

    public Reason(int output, String group, String text, float drop) {
        this.output = output;
        this.group = group;
        this.text = text;
        this.drop = drop;
    }

    @Override
    public String toString() {
        return group + " (" + String.format(java.util.Locale.ROOT, "%+.3f", drop) + "): " + text;
    }
}
