package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.features.Scoring;
import dev.seqscore.job.JobConfig;
import dev.seqscore.lifecycle.PublishedBundles;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.testing.RepoPaths;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code bin/seqscore demo --shadow-model DIR} as it runs (broker, MiniCluster, job, producer, started by the same
 * code): the candidate is accepted before the first click, so every committed score has the candidate's beside it;
 * with the serving model's weights under another version, the report's comparison finds no difference.
 */
class DemoShadowITCase {
    private static final Duration DEADLINE = Duration.ofMinutes(3);
    private static final int AT_LEAST = 500;

    @TempDir
    Path dir;

    @Test
    void everyScoredClickIsComparedWithTheCandidatesScore() throws Exception {
        Path base = RepoPaths.defaultModel();
        String baseVersion = ModelBundle.load(base).served(Scoring.INCREMENTAL).modelVersion();
        Path candidate = PublishedBundles.retrained(base, dir.resolve("candidate"), "-v2");
        var options = Demo.OPTIONS.parse("--source", "simulator", "--rate", "300", "--web-port", "0",
                "--kafka-port", "0", "--metrics-port", "0", "--sim-users", "20000", "--sim-sessions", "5",
                "--checkpoint-interval", "1s", "--shadow-model", candidate.toString());
        try (DemoStack stack = DemoStack.start(options, System.out)) {
            assertThat(stack.config.shadowScoresTopic()).isEqualTo("shadow-scores");
            Map<String, Double> thresholds = new HashMap<>();
            Demo.alertRules(stack).forEach(r -> thresholds.put(r.output(), r.threshold()));
            try (OutputSummary summary = new OutputSummary(stack.kafka.bootstrapServers(),
                    stack.config.scoresTopic(), stack.config.get(JobConfig.ALERTS_TOPIC),
                    stack.config.get(JobConfig.DEAD_LETTER_TOPIC), thresholds, stack.config.shadowScoresTopic(),
                    Demo.shadowComparison(stack))) {
                long deadline = System.nanoTime() + DEADLINE.toNanos();
                OutputSummary.Totals t = summary.totals();
                // Both topics are read up to the same checkpoints between polls now and then: then every score
                // read has its pair, which it would not if any click had been scored before the candidate shadowed.
                while (!(t.shadow().paired() >= AT_LEAST && t.shadow().paired() == t.scored())) {
                    assertThat(System.nanoTime()).as("never every score paired: %s scores, %s", t.scored(),
                            t.shadow()).isLessThan(deadline);
                    summary.poll(Duration.ofMillis(200));
                    t = summary.totals();
                }
                ShadowComparison.Totals shadow = t.shadow();
                Map<String, Long> atThreshold = t.atThreshold();
                assertThat(shadow.servingVersion()).isEqualTo(baseVersion);
                assertThat(shadow.candidateVersion()).isEqualTo(baseVersion + "-v2");
                assertThat(shadow.unpaired()).isZero();
                assertThat(shadow.outputs()).extracting(ShadowComparison.Output::output)
                        .containsExactlyInAnyOrderElementsOf(thresholds.keySet());
                assertThat(shadow.outputs()).allSatisfy(o -> {
                    assertThat(o.disagreements()).as("%s", o).isZero();
                    assertThat(o.absDiffSum()).as("%s", o).isZero();
                    assertThat(o.candidateAbove()).as("%s", o).isEqualTo(o.servingAbove());
                    assertThat(o.servingAbove()).isEqualTo(atThreshold.getOrDefault(o.output(), 0L));
                });
                assertThat(DemoReport.shadowComparison(shadow)).contains("against candidate " + baseVersion + "-v2");
            }
        }
    }
}
