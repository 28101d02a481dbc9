package dev.seqscore.tools.demo;

import dev.seqscore.avro.Score;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The serving model against the shadow candidate on the same events, as the demo reads them back from the scores
 * topic and the shadow scores topic: each event's two scores are paired by user, event time, type and item (the job
 * drops exact duplicates, so that names one event), then per output counted at each model's own threshold, for how
 * often exactly one of the two reaches it, and for how far apart the scores are.
 *
 * <p>Both topics are written in the checkpoint's transactions, so a score waits for its pair about one checkpoint at
 * most; {@link #MAX_UNPAIRED} bounds what waits if one side never comes (e.g. the candidate was withdrawn).
 */
final class ShadowComparison {
    /** Scores waiting for their pair, per side, before the oldest is given up (and counted as unpaired). */
    static final int MAX_UNPAIRED = 200_000;

    /** One output's alert rule in both models. */
    record Rule(String output, double servingThreshold, double candidateThreshold) {}

    /** One output over the paired events. */
    record Output(String output, double servingThreshold, double candidateThreshold, long servingAbove,
            long candidateAbove, long disagreements, double absDiffSum) {}

    /**
     * What has been compared so far.
     *
     * @param servingVersion the model version of the latest paired serving score (null before the first)
     * @param candidateVersion the latest paired candidate score's model version, else the one published
     * @param paired events with both scores
     * @param unpaired scores given up on without their pair
     */
    record Totals(String servingVersion, String candidateVersion, long paired, long unpaired, List<Output> outputs) {}

    private final List<Rule> rules;
    private final Map<String, double[]> servingWaiting = new LinkedHashMap<>();
    private final Map<String, double[]> candidateWaiting = new LinkedHashMap<>();
    private final long[] servingAbove;
    private final long[] candidateAbove;
    private final long[] disagreements;
    private final double[] absDiffSum;
    private String servingVersion;
    private String candidateVersion;
    private long paired;
    private long unpaired;

    ShadowComparison(List<Rule> rules, String candidateVersion) {
        this.rules = List.copyOf(rules);
        this.candidateVersion = candidateVersion;
        servingAbove = new long[rules.size()];
        candidateAbove = new long[rules.size()];
        disagreements = new long[rules.size()];
        absDiffSum = new double[rules.size()];
    }

    /** A score of the scores topic (the serving model's). */
    void serving(Score s) {
        double[] mine = scores(s);
        double[] other = candidateWaiting.remove(key(s));
        if (other == null) {
            wait(servingWaiting, key(s), mine);
        } else {
            servingVersion = s.getModelVersion().toString();
            compare(mine, other);
        }
    }

    /** A score of the shadow scores topic (the candidate's). */
    void candidate(Score s) {
        double[] mine = scores(s);
        double[] other = servingWaiting.remove(key(s));
        if (other == null) {
            wait(candidateWaiting, key(s), mine);
        } else {
            candidateVersion = s.getModelVersion().toString();
            compare(other, mine);
        }
    }

    Totals totals() {
        List<Output> out = new ArrayList<>();
        for (int o = 0; o < rules.size(); o++) {
            Rule r = rules.get(o);
            out.add(new Output(r.output(), r.servingThreshold(), r.candidateThreshold(), servingAbove[o],
                    candidateAbove[o], disagreements[o], absDiffSum[o]));
        }
        return new Totals(servingVersion, candidateVersion, paired, unpaired, out);
    }

    private void compare(double[] serving, double[] candidate) {
        paired++;
        for (int o = 0; o < rules.size(); o++) {
            Rule r = rules.get(o);
            // As the job's alert rules decide: at or above the threshold.
            boolean a = serving[o] >= r.servingThreshold();
            boolean b = candidate[o] >= r.candidateThreshold();
            if (a) {
                servingAbove[o]++;
            }
            if (b) {
                candidateAbove[o]++;
            }
            if (a != b) {
                disagreements[o]++;
            }
            absDiffSum[o] += Math.abs(serving[o] - candidate[o]);
        }
    }

    private void wait(Map<String, double[]> waiting, String key, double[] scores) {
        waiting.put(key, scores);
        if (waiting.size() > MAX_UNPAIRED) {
            Iterator<String> oldest = waiting.keySet().iterator();
            oldest.next();
            oldest.remove();
            unpaired++;
        }
    }

    private double[] scores(Score s) {
        double[] out = new double[rules.size()];
        for (int o = 0; o < out.length; o++) {
            Double v = s.getScores().get(rules.get(o).output());
            out[o] = v == null ? Double.NaN : v;
        }
        return out;
    }

    private static String key(Score s) {
        return s.getUserId() + "\u0000" + s.getEventTime().toEpochMilli() + "\u0000" + s.getEventType() + "\u0000"
                + s.getItemId();
    }
}
