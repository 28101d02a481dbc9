package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The reporter's text for job states read from the REST API (the REST reading itself: JobHealthITCase). */
class JobHealthReporterTest {
    private static final Instant NOW = Instant.parse("2026-11-30T10:00:00Z");
    private static final Duration WINDOW = Duration.ofSeconds(5);
    private static final List<JobHealth.VertexLoad> LOADED = List.of(
            new JobHealth.VertexLoad("Source: Kafka clicks -> Validate events", "high", 0.97, 0.02),
            new JobHealth.VertexLoad("Score user sequences -> (Decide alerts -> Kafka alerts: Writer)", "ok", 0, 1.0));

    private final JobHealthReporter reporter = new JobHealthReporter(URI.create("http://127.0.0.1:1"), "job");

    private static JobHealth health(String state, long restarts, JobHealth.Checkpoint last, int failed,
            JobHealth.Failure failure) {
        return new JobHealth(NOW, state, restarts, last == null ? 0 : (int) last.id(), failed, 0, 0, last,
                failed > 0 ? "Checkpoint expired before completing." : null, JobHealth.Extremes.NONE,
                JobHealth.Extremes.NONE, LOADED, failure, null);
    }

    private static JobHealth.Checkpoint checkpoint(long id, long secondsAgo) {
        return new JobHealth.Checkpoint(id, NOW.minusSeconds(secondsAgo), 60L << 20, 3L << 20, 1_400);
    }

    @Test
    void aHealthyJobShowsItsLastCheckpointAndWhereItIsBackPressured() {
        String text = reporter.render(health("RUNNING", 0, checkpoint(12, 3), 0, null));

        assertThat(text).isEqualTo("""
                  job:    RUNNING, 0 restarts; checkpoints: 12 completed, 0 failed; last #12 3 s ago, 60.0 MiB \
                (3.0 MiB uploaded) in 1.4 s
                  load:   back-pressured: Source: Kafka clicks -> ... (high, 97% of the time); busiest: Score user \
                sequences -> ... (100% busy)
                """);
    }

    @Test
    void aRestartShowsItsRootCauseOnceAndFailedCheckpointsTheirMessage() {
        JobHealth.Failure f = new JobHealth.Failure(NOW.minusSeconds(20), "Score user sequences -> X (1/2)#0",
                "java.io.IOException: disk full");
        JobHealth restarted = health("RUNNING", 1, checkpoint(13, 2), 2, f);

        String first = reporter.render(restarted);
        String second = reporter.render(restarted);

        assertThat(first).contains("RUNNING, 1 restart;", "2 failed",
                "last failed checkpoint: Checkpoint expired before completing.",
                "RESTARTED at 2026-11-30T09:59:40Z in Score user sequences -> ...: java.io.IOException: disk full");
        assertThat(second).contains("RUNNING, 1 restart;").doesNotContain("RESTARTED");
    }

    @Test
    void noNewOutputIsAlwaysExplained() {
        JobHealth.Failure f = new JobHealth.Failure(NOW, "t", "java.lang.OutOfMemoryError: Java heap space");

        assertThat(JobHealthReporter.whyNoNewOutput(health("RESTARTING", 3, checkpoint(4, 30), 0, f), 100, WINDOW))
                .isEqualTo("job is RESTARTING after java.lang.OutOfMemoryError: Java heap space");
        assertThat(JobHealthReporter.whyNoNewOutput(health("RUNNING", 0, null, 0, null), 100, WINDOW))
                .startsWith("no checkpoint has completed yet");
        assertThat(JobHealthReporter.whyNoNewOutput(health("RUNNING", 0, checkpoint(4, 40), 2, null), 100, WINDOW))
                .isEqualTo("no checkpoint completed in the last 40 s, and output is committed only at checkpoints "
                        + "(2 failed checkpoints)");
        assertThat(JobHealthReporter.whyNoNewOutput(health("RUNNING", 0, checkpoint(4, 1), 0, null), 0, WINDOW))
                .isEqualTo("no new input");
        assertThat(JobHealthReporter.whyNoNewOutput(health("RUNNING", 0, checkpoint(4, 1), 0, null), 50, WINDOW))
                .startsWith("checkpoint #4 completed 1 s ago, but no new scores are visible yet").contains("back-pressured");
    }

    @Test
    void checkpointsThatNeverStartedAreToldApartFromRealFailures() throws Exception {
        ObjectMapper json = new ObjectMapper();
        // Three triggers refused while tasks were starting (no id), then #1 failed and #2, #3 completed.
        JsonNode complete = json.readTree("[{\"id\":3,\"status\":\"COMPLETED\"},{\"id\":2,\"status\":"
                + "\"COMPLETED\"},{\"id\":1,\"status\":\"FAILED\"}]");
        JsonNode truncated = json.readTree("[{\"id\":13,\"status\":\"COMPLETED\"},{\"id\":12,\"status\":"
                + "\"FAILED\"}]");

        assertThat(JobHealth.refusedTriggers(4, complete)).isEqualTo(3);
        assertThat(JobHealth.refusedTriggers(2, json.readTree("[]"))).isEqualTo(2);
        assertThat(JobHealth.refusedTriggers(5, truncated)).isEqualTo(-1);

        JobHealth early = new JobHealth(NOW, "RUNNING", 0, 2, 4, 0, 3, checkpoint(3, 1), null,
                JobHealth.Extremes.NONE, JobHealth.Extremes.NONE, LOADED, null, null);
        JobHealth later = new JobHealth(NOW, "RUNNING", 0, 12, 5, 0, -1, checkpoint(13, 1), null,
                JobHealth.Extremes.NONE, JobHealth.Extremes.NONE, LOADED, null, null);
        assertThat(reporter.render(early)).contains("4 failed (3 of them never started: not all tasks were running yet)");
        // Remembered once the history no longer reaches back far enough to tell.
        assertThat(reporter.render(later)).contains("5 failed (3 of them never started");
    }

    @Test
    void theRootCauseIsTheInnermostCauseOfTheMainChain() {
        String trace = """
                org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy
                \tat org.apache.flink.runtime.Foo.bar(Foo.java:1)
                Caused by: java.lang.IllegalStateException: operator gave up
                \tat x.y(Z.java:2)
                \tSuppressed: java.lang.RuntimeException: while closing
                \t\tCaused by: java.lang.Error: not this one
                Caused by: java.io.IOException: forced failure
                \tmore detail on a second line
                \tat x.y(Z.java:3)
                """;

        assertThat(JobHealth.rootCause(trace)).isEqualTo("java.io.IOException: forced failure");
        assertThat(JobHealth.rootCause("java.lang.RuntimeException: alone\n\tat a.b(C.java:1)"))
                .isEqualTo("java.lang.RuntimeException: alone");
    }

    @Test
    void sizesAndAgesReadNaturally() {
        assertThat(JobHealthReporter.bytes(512)).isEqualTo("512 B");
        assertThat(JobHealthReporter.bytes(52_428_800)).isEqualTo("50.0 MiB");
        assertThat(JobHealthReporter.millis(950)).isEqualTo("950 ms");
        assertThat(JobHealthReporter.millis(12_340)).isEqualTo("12.3 s");
        assertThat(JobHealthReporter.age(NOW.minusSeconds(300), NOW)).isEqualTo("5 min");
    }
}
