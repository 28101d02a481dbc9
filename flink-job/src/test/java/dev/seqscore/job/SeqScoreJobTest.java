package dev.seqscore.job;

import dev.seqscore.options.ConfigException;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.model.ModelBundle;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

import dev.seqscore.testing.RepoPaths;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job's entry point fails fast, before anything is submitted, with a message naming the problem; and it throws
 * rather than exiting, so a cluster that runs main() in its JobManager survives a bad submission.
 */
class SeqScoreJobTest {

    @Test
    void withoutDurableCheckpointStorageTheJobRefusesToStartAndSaysWhatToSet() {
        assertThatThrownBy(() -> SeqScoreJob.main(new String[] {}))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--checkpoint-dir")
                .hasMessageContaining("execution.checkpointing.dir");
    }

    @Test
    void jobManagerStorageIsRefusedEvenWithADirectory(@TempDir Path tmp) {
        Configuration cluster = new Configuration();
        cluster.set(CheckpointingOptions.CHECKPOINT_STORAGE, "jobmanager");
        cluster.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, tmp.toUri().toString());
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(cluster);

        assertThatThrownBy(() -> SeqScoreJob.assemble(env, JobConfig.parse(), ModelBundle.packaged()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("execution.checkpointing.storage: jobmanager");
    }

    @Test
    void theClustersCheckpointDirectoryIsEnough(@TempDir Path tmp) {
        Configuration cluster = new Configuration();
        cluster.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, tmp.toUri().toString());
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(cluster);

        SeqScoreJob.assemble(env, JobConfig.parse(), ModelBundle.packaged());

        assertThat(env.getConfiguration().get(CheckpointingOptions.CHECKPOINTS_DIRECTORY))
                .isEqualTo(tmp.toUri().toString());
    }

    @Test
    void stateFlagsReachTheEnvironment(@TempDir Path tmp) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        String checkpoints = tmp.resolve("cp").toUri().toString();
        String savepoints = tmp.resolve("sp").toUri().toString();

        SeqScoreJob.assemble(env, JobConfig.parse("--checkpoint-dir", checkpoints, "--savepoint-dir", savepoints,
                "--state-backend", "rocksdb"), ModelBundle.packaged());

        ReadableConfig c = env.getConfiguration();
        assertThat(c.get(CheckpointingOptions.CHECKPOINTS_DIRECTORY)).isEqualTo(checkpoints);
        assertThat(c.get(CheckpointingOptions.CHECKPOINT_STORAGE)).isEqualTo("filesystem");
        assertThat(c.get(CheckpointingOptions.SAVEPOINT_DIRECTORY)).isEqualTo(savepoints);
        assertThat(c.get(StateBackendOptions.STATE_BACKEND)).isEqualTo("rocksdb");
        assertThat(c.get(CheckpointingOptions.INCREMENTAL_CHECKPOINTS)).isTrue();
    }

    @Test
    void aBadFlagFailsNamingTheOption() {
        assertThatThrownBy(() -> SeqScoreJob.main(new String[] {"--cooldown", "soon"}))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--cooldown");
    }

    @Test
    void aMissingModelDirectoryFailsNamingIt(@TempDir Path tmp) {
        Path missing = tmp.resolve("no-such-model");
        assertThatThrownBy(() -> SeqScoreJob.main(new String[] {"--model", missing.toString()}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(missing.toString());
    }

    @Test
    void aCorruptOnnxGraphFailsNamingTheFile(@TempDir Path tmp) throws Exception {
        Path model = tmp.resolve("model");
        Files.createDirectories(model);
        Files.copy(RepoPaths.defaultModel().resolve("model-spec.json"), model.resolve("model-spec.json"));
        if (Files.exists(RepoPaths.defaultModel().resolve("step.onnx"))) {
            Files.copy(RepoPaths.defaultModel().resolve("step.onnx"), model.resolve("step.onnx"));
        }
        Files.write(model.resolve("model.onnx"), new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
        assertThatThrownBy(() -> SeqScoreJob.main(new String[] {"--model", model.toString()}))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("model.onnx");
    }

    @Test
    void flagsThatDoNotFitTheModelFailBeforeSubmission() {
        assertThatThrownBy(() -> SeqScoreJob.main(new String[] {
                    "--model", RepoPaths.defaultModel().toString(), "--max-events", "500"}))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--max-events 500");
    }
}
