package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.offline.LocalFlink;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A job that fails once, on a real MiniCluster, watched through the real REST API by the reporter the demo uses: the
 * restart and its root cause must show in the rendered text, and the output explanation must name the state.
 */
class JobHealthITCase {
    private static final Duration DEADLINE = Duration.ofMinutes(3);

    @Test
    void aForcedRestartShowsUpInTheReportWithItsRootCause(@TempDir Path checkpoints) throws Exception {
        Map<String, String> restarts = Map.of(
                "restart-strategy.type", "fixed-delay",
                "restart-strategy.fixed-delay.attempts", "3",
                "restart-strategy.fixed-delay.delay", "1 s");
        try (LocalFlink flink = LocalFlink.start(LocalFlink.LOOPBACK, 0, 1, restarts)) {
            StreamExecutionEnvironment env = flink.environment();
            Configuration state = new Configuration();
            state.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
            state.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpoints.toUri().toString());
            env.configure(state);
            env.enableCheckpointing(500, CheckpointingMode.EXACTLY_ONCE);
            env.fromSequence(0, Long.MAX_VALUE).map(new FailOnceAfterACheckpoint()).sinkTo(new DiscardingSink<>());
            JobID job = flink.submit(env, "fails once");

            JobHealthReporter reporter = new JobHealthReporter(flink.restAddress(), job.toString());
            StringBuilder rendered = new StringBuilder();
            JobHealth h = reporter.poll();
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            // Until the job runs again after its restart, with a checkpoint completed since.
            while (!(h.running() && h.restarts() >= 1 && h.lastCompleted() != null && h.latestFailure() != null
                    && h.lastCompleted().completedAt().isAfter(h.latestFailure().at()))) {
                assertThat(System.nanoTime()).as("job never restarted and recovered; saw:%n%s", rendered)
                        .isLessThan(deadline);
                rendered.append(reporter.render(h));
                Thread.sleep(300); // poll interval of a deadline loop
                h = reporter.poll();
            }
            rendered.append(reporter.render(h));
            String text = rendered.toString();
            System.out.println(text);

            assertThat(text).contains("job:    RUNNING, 1 restart; checkpoints: ");
            // Shown once, with the innermost cause rather than Flink's wrappers.
            assertThat(text).containsOnlyOnce("java.io.IOException: forced failure for the test")
                    .containsPattern("(RESTARTED|FAILURE) at \\S+ in Source: Sequence Source");
            assertThat(reporter.render(reporter.poll())).doesNotContain("forced failure");
            flink.cancel(job);
        }
    }

    @Test
    void aJobThatIsGoneIsReportedAsUnknownNotAsHealthy() throws Exception {
        try (LocalFlink flink = LocalFlink.start(LocalFlink.LOOPBACK, 0, 1, Map.of())) {
            JobHealthReporter reporter = new JobHealthReporter(flink.restAddress(), new JobID().toString());
            JobHealth h = reporter.poll();

            // Right after start the API may answer 503 (leader election) rather than 404: unknown either way.
            assertThat(h.error()).containsPattern("HTTP (404|503)");
            assertThat(h.state()).isNull();
            assertThat(reporter.render(h)).startsWith("  job:    state unknown: Flink's REST API at ");
            assertThat(JobHealthReporter.whyNoNewOutput(h, 100, Duration.ofSeconds(5)))
                    .isEqualTo("job state unknown, Flink's REST API did not answer");
        }
    }

    /** Passes numbers through slowly; in its first attempt it fails once a checkpoint has completed. */
    private static final class FailOnceAfterACheckpoint extends RichMapFunction<Long, Long>
            implements CheckpointListener {
        private transient boolean checkpointed;
        private transient int attempt;

        @Override
        public void open(OpenContext context) {
            attempt = getRuntimeContext().getTaskInfo().getAttemptNumber();
        }

        @Override
        public Long map(Long n) throws Exception {
            if (attempt == 0 && checkpointed) {
                throw new IllegalStateException("operator gave up",
                        new IOException("forced failure for the test"));
            }
            Thread.sleep(1); // about 1,000 records per second: the test needs a running job, not a busy core
            return n;
        }

        @Override
        public void notifyCheckpointComplete(long checkpointId) {
            checkpointed = true;
        }
    }
}
