package dev.seqscore.job;

import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.Timestamps;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.flink.runtime.checkpoint.OperatorState;
import org.apache.flink.runtime.checkpoint.metadata.CheckpointMetadata;
import org.apache.flink.runtime.jobgraph.OperatorID;
import org.apache.flink.state.api.OperatorIdentifier;
import org.apache.flink.state.api.runtime.SavepointLoader;

/**
 * Before a job that starts from a savepoint ({@code flink run -s}) is submitted: does the savepoint fit it? A
 * savepoint written by the warm-start bootstrap carries a {@link SavepointManifest}; its max parallelism and window
 * rule must be the job's, or the restore fails (max parallelism) or the windows are not what the job would have built
 * (window rule). Flink's own metadata gives the scorer's max parallelism for any savepoint or retained checkpoint.
 * What cannot be read (storage the client does not reach) is a warning: Flink checks again on restore.
 */
public final class SavepointCheck {
    private SavepointCheck() {}

    /** @throws ConfigException naming each mismatch and its fix */
    public static void check(String savepoint, PipelineSettings s, PrintStream warnings) {
        List<String> problems = new ArrayList<>();
        Optional<SavepointManifest> manifest = Optional.empty();
        try {
            manifest = SavepointManifest.read(savepoint);
        } catch (IOException | RuntimeException e) {
            warnings.println("warning: cannot read " + SavepointManifest.FILE + " in " + savepoint + " (" + e
                    + "); the window rule is not checked");
        }
        if (manifest.isPresent()) {
            SavepointManifest m = manifest.get();
            if (m.maxParallelism() != s.maxParallelism) {
                problems.add(maxParallelism(savepoint, m.maxParallelism(), s.maxParallelism));
            }
            if (m.maxEvents() != s.maxEvents || m.horizonMs() != s.horizonMs) {
                problems.add("the savepoint's windows were bootstrapped with the window rule N = " + m.maxEvents()
                        + ", H = " + Duration.ofMillis(m.horizonMs()) + "; this job keeps N = " + s.maxEvents
                        + ", H = " + Duration.ofMillis(s.horizonMs) + ": start it with --"
                        + JobConfig.MAX_EVENTS.name() + " " + m.maxEvents() + " --" + JobConfig.HORIZON.name() + " "
                        + m.horizonMs() + "ms, or bootstrap again with this job's --" + JobConfig.MAX_EVENTS.name()
                        + " and --" + JobConfig.HORIZON.name() + " (and model)");
            }
            boolean jobTtl = !s.scoringSettings().effectiveStateTtl().isZero();
            if ((m.stateTtlMs() != 0) != jobTtl) {
                // The TTL wraps each serialized value: a restore with the other setting fails in the scorer.
                problems.add("the savepoint's values were written " + (jobTtl ? "without" : "with")
                        + " the processing-time TTL backstop and this job runs " + (jobTtl ? "with" : "without")
                        + " it: start it with --" + JobConfig.STATE_TTL.name() + " "
                        + (jobTtl ? "0" : Duration.ofMillis(m.stateTtlMs()).toHours() + "h") + ", or bootstrap "
                        + "again with this job's --" + JobConfig.STATE_TTL.name());
            }
            if (!m.modelVersion().equals(s.served.modelVersion()) || !m.scoring().equals(Option.cliName(s.scoring))) {
                warnings.println("warning: the savepoint was bootstrapped for model " + m.modelVersion() + " ("
                        + m.scoring() + "); this job serves " + s.served.modelVersion() + " ("
                        + Option.cliName(s.scoring) + "): each user's recurrent model state starts again from zeros at "
                        + "their next event, while windows, lifetime records and cooldowns carry on");
            }
            warnings.println("starting from the bootstrap of " + m.users() + " users up to "
                    + Timestamps.format(m.untilMs()) + "; the Kafka source must start there: --"
                    + JobConfig.STARTING_OFFSETS.name() + " timestamp:" + m.untilMs());
        }
        try {
            CheckpointMetadata metadata = SavepointLoader.loadSavepointMetadata(savepoint);
            OperatorID scorer = OperatorIdentifier.forUid(SeqScorePipeline.UID_SCORE).getOperatorId();
            for (OperatorState op : metadata.getOperatorStates()) {
                if (op.getOperatorID().equals(scorer) && op.getMaxParallelism() != s.maxParallelism
                        && (manifest.isEmpty() || manifest.get().maxParallelism() == s.maxParallelism)) {
                    problems.add(maxParallelism(savepoint, op.getMaxParallelism(), s.maxParallelism));
                }
            }
        } catch (IOException | RuntimeException e) {
            warnings.println("warning: cannot read the savepoint's metadata at " + savepoint + " (" + e
                    + "); Flink checks it again when the job starts");
        }
        if (!problems.isEmpty()) {
            throw new ConfigException("cannot start from " + savepoint + ": " + String.join("; ", problems));
        }
    }

    private static String maxParallelism(String savepoint, int saved, int job) {
        return "its state (operator " + SeqScorePipeline.UID_SCORE + ") was written with max parallelism " + saved
                + ", this job has --" + JobConfig.MAX_PARALLELISM.name() + " " + job + "; max parallelism is fixed "
                + "for the state's lifetime: start the job with --" + JobConfig.MAX_PARALLELISM.name() + " " + saved
                + ", or bootstrap again with --" + JobConfig.MAX_PARALLELISM.name() + " " + job;
    }
}
