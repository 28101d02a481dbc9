package dev.seqscore.alerts;

import java.io.Serializable;
import java.util.List;

/**
 * What makes an alert: per model output, the alert type and threshold (the spec's default unless overridden), and
 * the per-user cooldown per alert type, in event time.
 */
public final class AlertPolicy implements Serializable {
    private static final long serialVersionUID = 1L;

    /** One model output's alert rule; outputs are in the model's output order. */
    public static final class Rule implements Serializable {
        private static final long serialVersionUID = 1L;
        public final String output;
        public final String alertType;
        public final double threshold;

        public Rule(String output, String alertType, double threshold) {
            if (!(threshold >= 0.0 && threshold <= 1.0)) {
                throw new IllegalArgumentException(
                        "threshold for " + output + " must be within [0, 1], got " + threshold);
            }
            this.output = output;
            this.alertType = alertType;
            this.threshold = threshold;
        }

        /** Scores are probabilities; reaching the threshold counts as crossing it. */
        public boolean crossedBy(double score) {
            return score >= threshold;
        }
    }

    public final List<Rule> rules;
    public final long cooldownMs;
    public final String modelVersion;
    /** Distinct alert types, in rule order: the cooldown is kept per type. */
    public final List<String> alertTypes;
    private final int[] typeOfRule;

    public AlertPolicy(List<Rule> rules, long cooldownMs, String modelVersion) {
        if (cooldownMs < 0) {
            throw new IllegalArgumentException("cooldown must not be negative, got " + cooldownMs + " ms");
        }
        this.rules = List.copyOf(rules);
        this.cooldownMs = cooldownMs;
        this.modelVersion = modelVersion;
        this.alertTypes = rules.stream().map(r -> r.alertType).distinct().toList();
        this.typeOfRule = rules.stream().mapToInt(r -> alertTypes.indexOf(r.alertType)).toArray();
    }

    /** The index in {@link #alertTypes} of rule {@code rule}'s alert type. */
    public int typeIndex(int rule) {
        return typeOfRule[rule];
    }
}
