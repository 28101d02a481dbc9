package dev.seqscore.tools.demo;

import java.time.Duration;
import java.util.List;
import java.util.Locale;

/**
 * One block of the demo's live summary: what went in, what the job committed (and, when nothing new was committed,
 * why), alerts, dead letters and the job's health. Remembers the previous report for rates, and counts the reports
 * that saw new output, for the closing verdict.
 */
final class DemoReport {

    /**
     * One model output's alert rule: its threshold, and the fraction of validation events at or above it (from the
     * spec's out-of-fold score quantiles; NaN when rarer than they cover).
     */
    record Rule(String output, String alertType, double threshold, double validationRate) {}

    /** What the producer has sent so far. */
    record Input(long sent, long malformed, long realSent, int realUsers, long simulatedSent, int simulatedUsers) {}

    private final String modelVersion;
    private final List<Rule> rules;
    private final JobHealthReporter health;
    private long lastSent;
    private long lastScored;
    private long lastNanos;
    private int reports;
    private int reportsWithNewOutput;
    private long lastOutputNanos;
    private long longestWithoutOutputNanos;

    DemoReport(String modelVersion, List<Rule> rules, JobHealthReporter health, long startNanos) {
        this.modelVersion = modelVersion;
        this.rules = List.copyOf(rules);
        this.health = health;
        this.lastNanos = startNanos;
        this.lastOutputNanos = startNanos;
    }

    String render(Duration elapsed, long nowNanos, Input in, OutputSummary.Totals out, JobHealth h) {
        double secs = Math.max(1e-9, (nowNanos - lastNanos) / 1e9);
        long newInput = in.sent() - lastSent;
        long newScores = out.scored() - lastScored;
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%n[%s] model %s%n", clock(elapsed), modelVersion));
        sb.append(String.format(Locale.ROOT, "  in:     %,d clicks sent (%,.0f/s)", in.sent(), newInput / secs));
        if (in.realSent() > 0) {
            sb.append(String.format(Locale.ROOT, ": %,d real Taobao from %,d users, %,d simulated from %,d users",
                    in.realSent(), in.realUsers(), in.simulatedSent(), in.simulatedUsers()));
        } else {
            sb.append(String.format(Locale.ROOT, ", simulated, from %,d users", in.simulatedUsers()));
        }
        sb.append(String.format(Locale.ROOT, "; %,d malformed injected%n", in.malformed()));
        sb.append(String.format(Locale.ROOT, "  scored: %,d", out.scored()));
        if (newScores > 0) {
            sb.append(String.format(Locale.ROOT, " (%,.0f/s) for %,d users; committed at each checkpoint "
                    + "(exactly-once)%n", newScores / secs, out.scoredUsers()));
        } else {
            sb.append(" (0/s: ").append(JobHealthReporter.whyNoNewOutput(h, newInput, Duration.ofNanos(
                    nowNanos - lastNanos))).append(")\n");
        }
        sb.append(String.format(Locale.ROOT, "  alerts: %,d%n", out.alerts()));
        out.alertsByType().forEach((type, n) -> {
            sb.append(String.format(Locale.ROOT, "    %-22s %,d%n", type, n));
            out.examples().getOrDefault(type, List.of()).forEach(e -> sb.append("      e.g. ").append(e).append('\n'));
        });
        sb.append(alertRates(out));
        sb.append(shadowComparison(out.shadow()));
        sb.append(String.format(Locale.ROOT, "  dead letters: %,d %s%n", out.deadLetters(),
                out.deadByReason().isEmpty() ? "" : out.deadByReason().toString()));
        sb.append(health.render(h));

        reports++;
        longestWithoutOutputNanos = Math.max(longestWithoutOutputNanos, nowNanos - lastOutputNanos);
        if (newScores > 0) {
            reportsWithNewOutput++;
            lastOutputNanos = nowNanos;
        }
        lastSent = in.sent();
        lastScored = out.scored();
        lastNanos = nowNanos;
        return sb.toString().stripTrailing();
    }

    /**
     * Per output, the share of scored events at or above the threshold beside the share of validation events the
     * threshold was chosen for, and the share that alerted after the cooldown. Empty without scores.
     */
    String alertRates(OutputSummary.Totals out) {
        if (out.scored() == 0 || rules.isEmpty()) {
            return "";
        }
        StringBuilder sb = new StringBuilder("  alert rate (share of scored events):\n");
        for (Rule r : rules) {
            long at = out.atThreshold().getOrDefault(r.output(), 0L);
            long alerts = out.alertsByType().getOrDefault(r.alertType(), 0L);
            sb.append(String.format(Locale.ROOT, "    %-13s %6.2f%% at or above %.4f, chosen for %s in validation; "
                            + "%.2f%% alerted after the cooldown%n", r.output(), 100.0 * at / out.scored(),
                    r.threshold(), Double.isNaN(r.validationRate()) ? "under 0.01%"
                            : String.format(Locale.ROOT, "%.2f%%", 100 * r.validationRate()),
                    100.0 * alerts / out.scored()));
        }
        return sb.toString();
    }

    /**
     * Per output, the serving model against the shadow candidate on the same events: each one's alert rate at its
     * own threshold, the share of events where exactly one of them would alert, and the mean absolute difference of
     * their scores. Empty without a candidate.
     */
    static String shadowComparison(ShadowComparison.Totals t) {
        if (t == null) {
            return "";
        }
        if (t.paired() == 0) {
            return String.format(Locale.ROOT, "  shadow: candidate %s: no event compared yet (its scores and the "
                    + "serving model's are committed at the same checkpoints)%n", t.candidateVersion());
        }
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "  shadow: serving %s against candidate %s "
                + "(no alerts) on the same %,d events%s:%n", t.servingVersion(), t.candidateVersion(), t.paired(),
                t.unpaired() == 0 ? "" : String.format(Locale.ROOT, " (%,d scores without their pair)",
                        t.unpaired())));
        sb.append(String.format(Locale.ROOT, "    %-13s %-24s %-24s %9s %11s%n", "output", "serving alert rate",
                "candidate alert rate", "disagree", "mean |diff|"));
        double n = t.paired();
        for (ShadowComparison.Output o : t.outputs()) {
            sb.append(String.format(Locale.ROOT, "    %-13s %-24s %-24s %8.2f%% %11.4f%n", o.output(),
                    String.format(Locale.ROOT, "%6.2f%% at >= %.4f", 100 * o.servingAbove() / n,
                            o.servingThreshold()),
                    String.format(Locale.ROOT, "%6.2f%% at >= %.4f", 100 * o.candidateAbove() / n,
                            o.candidateThreshold()),
                    100 * o.disagreements() / n, o.absDiffSum() / n));
        }
        return sb.toString();
    }

    int reports() {
        return reports;
    }

    int reportsWithNewOutput() {
        return reportsWithNewOutput;
    }

    /**
     * The longest time from the start or from a report that saw new committed output to the next such report (or
     * the last report): an upper bound, at the reports' resolution, on how long output stood still.
     */
    Duration longestWithoutOutput() {
        return Duration.ofNanos(longestWithoutOutputNanos);
    }

    private static String clock(Duration d) {
        return String.format(Locale.ROOT, "%02d:%02d:%02d", d.toHours(), d.toMinutesPart(), d.toSecondsPart());
    }
}
