package dev.seqscore.alerts;

import dev.seqscore.features.ModelSpec;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * How the job picks each output's alert threshold, kept so that a model published to a running job gets thresholds
 * by the same rule as the one it was started with: an explicit threshold per output, else the one an alert rate
 * implies by the model's own score quantiles, else the model's own threshold.
 */
public record AlertRules(Map<String, Double> thresholds, Map<String, Double> alertRates, long cooldownMs)
        implements Serializable {

    public AlertRules {
        thresholds = Map.copyOf(thresholds);
        alertRates = Map.copyOf(alertRates);
    }

    /** The rules that keep {@code policy}'s thresholds for every model. */
    public static AlertRules fixed(AlertPolicy policy) {
        Map<String, Double> t = new java.util.HashMap<>();
        for (AlertPolicy.Rule r : policy.rules) {
            t.put(r.output, r.threshold);
        }
        return new AlertRules(t, Map.of(), policy.cooldownMs);
    }

    /**
     * The policy for {@code served}.
     *
     * @throws IllegalArgumentException when an alert rate is set for an output whose spec has no score quantiles
     */
    public AlertPolicy policyFor(ModelSpec.Served served) {
        List<AlertPolicy.Rule> rules = new ArrayList<>();
        for (ModelSpec.OutputSpec o : served.outputs()) {
            rules.add(new AlertPolicy.Rule(o.name(), o.alertType(), threshold(o)));
        }
        return new AlertPolicy(rules, cooldownMs, served.modelVersion());
    }

    private double threshold(ModelSpec.OutputSpec o) {
        Double explicit = thresholds.get(o.name());
        if (explicit != null) {
            return explicit;
        }
        Double rate = alertRates.get(o.name());
        if (rate == null) {
            return o.threshold();
        }
        if (o.quantiles() == null) {
            throw new IllegalArgumentException("the job sets an alert rate for '" + o.name() + "' and model "
                    + "spec has no score quantiles for it (bundles before format_version 2 have none)");
        }
        return o.quantiles().thresholdFor(rate);
    }
}
