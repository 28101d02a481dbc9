package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class DemoReportTest {
    private static final long SECOND = 1_000_000_000L;
    private static final Instant NOW = Instant.parse("2026-11-30T10:00:00Z");

    private static final List<DemoReport.Rule> RULES = List.of(
            new DemoReport.Rule("purchase_30m", "HIGH_PURCHASE_INTENT", 0.2349, 0.01),
            new DemoReport.Rule("churn_24h", "CHURN_RISK", 0.5, Double.NaN));
    private final DemoReport report =
            new DemoReport("c62abcf5", RULES, new JobHealthReporter(URI.create("http://127.0.0.1:1"), "job"), 0);

    private static OutputSummary.Totals totals(long scored) {
        return new OutputSummary.Totals(scored, (int) scored / 2,
                scored == 0 ? Map.of() : Map.of("purchase_30m", 60L, "churn_24h", 8L), Map.of("CHURN_RISK", 3L),
                Map.of("CHURN_RISK", List.of("user 7 (churn_24h 0.71 at 2017-11-26T01:00:00Z)")), Map.of());
    }

    private static JobHealth running(JobHealth.Checkpoint last) {
        return new JobHealth(NOW, "RUNNING", 0, last == null ? 0 : 1, 0, 1, 0, last, null, JobHealth.Extremes.NONE,
                JobHealth.Extremes.NONE, List.of(), null, null);
    }

    @Test
    void zeroNewScoresAlwaysComeWithTheReasonAndNewScoresWithARate() {
        DemoReport.Input in = new DemoReport.Input(5_000, 10, 1_000, 900, 4_000, 700);
        String first = report.render(Duration.ofSeconds(5), 5 * SECOND, in, totals(0), running(null));

        assertThat(first).contains("[00:00:05] model c62abcf5")
                .contains("in:     5,000 clicks sent (1,000/s): 1,000 real Taobao from 900 users, "
                        + "4,000 simulated from 700 users; 10 malformed injected")
                .contains("scored: 0 (0/s: no checkpoint has completed yet")
                .contains("job:    RUNNING, 0 restarts; checkpoints: 0 completed, 0 failed, 1 in progress");

        JobHealth.Checkpoint cp = new JobHealth.Checkpoint(1, NOW.minusSeconds(1), 1 << 20, 1 << 20, 300);
        String second = report.render(Duration.ofSeconds(10), 10 * SECOND,
                new DemoReport.Input(10_000, 20, 2_000, 1_500, 8_000, 1_200), totals(4_000), running(cp));

        assertThat(second).contains("scored: 4,000 (800/s) for 2,000 users; committed at each checkpoint")
                .contains("CHURN_RISK", "e.g. user 7");
        assertThat(second).contains("purchase_30m    1.50% at or above 0.2349, chosen for 1.00% in validation; "
                + "0.00% alerted after the cooldown")
                .contains("churn_24h       0.20% at or above 0.5000, chosen for under 0.01% in validation; "
                        + "0.08% alerted after the cooldown");
        assertThat(first).as("no rates before anything is scored").doesNotContain("alert rate");
        assertThat(report.reports()).isEqualTo(2);
        assertThat(report.reportsWithNewOutput()).isEqualTo(1);

        String third = report.render(Duration.ofSeconds(15), 15 * SECOND,
                new DemoReport.Input(10_000, 20, 2_000, 1_500, 8_000, 1_200), totals(4_000), running(cp));
        assertThat(third).contains("scored: 4,000 (0/s: no new input)");
        // From the start to the first report with output.
        assertThat(report.longestWithoutOutput()).isEqualTo(Duration.ofSeconds(10));
    }

    @Test
    void theShadowBlockPutsServingBesideCandidatePerOutput() {
        ShadowComparison.Totals none = new ShadowComparison.Totals(null, "c62abcf5-v2", 0, 0, List.of());
        assertThat(DemoReport.shadowComparison(none)).isEqualTo("  shadow: candidate c62abcf5-v2: no event "
                + "compared yet (its scores and the serving model's are committed at the same checkpoints)\n");
        assertThat(DemoReport.shadowComparison(null)).isEmpty();

        ShadowComparison.Totals t = new ShadowComparison.Totals("c62abcf5", "c62abcf5-v2", 4_000, 0, List.of(
                new ShadowComparison.Output("purchase_30m", 0.2349, 0.25, 60, 52, 10, 4_000 * 0.0125),
                new ShadowComparison.Output("churn_24h", 0.5, 0.5, 8, 8, 0, 0)));
        String block = DemoReport.shadowComparison(t);
        assertThat(block.lines()).containsExactly(
                "  shadow: serving c62abcf5 against candidate c62abcf5-v2 (no alerts) on the same 4,000 events:",
                "    output        serving alert rate       candidate alert rate      disagree mean |diff|",
                "    purchase_30m    1.50% at >= 0.2349       1.30% at >= 0.2500         0.25%      0.0125",
                "    churn_24h       0.20% at >= 0.5000       0.20% at >= 0.5000         0.00%      0.0000");

        String withUnpaired = DemoReport.shadowComparison(
                new ShadowComparison.Totals("a", "b", 1, 12_345, t.outputs()));
        assertThat(withUnpaired).contains("on the same 1 events (12,345 scores without their pair):");

        // In the periodic report, after the serving model's alert rates.
        String report = this.report.render(Duration.ofSeconds(5), 5 * SECOND,
                new DemoReport.Input(5_000, 10, 1_000, 900, 4_000, 700),
                new OutputSummary.Totals(4_000, 2_000, Map.of("purchase_30m", 60L), Map.of(), Map.of(), Map.of(), t),
                running(null));
        assertThat(report).contains("alert rate (share of scored events)")
                .contains(block.stripTrailing());
        assertThat(report.indexOf("alert rate (share")).isLessThan(report.indexOf("shadow: serving"));
    }
}
