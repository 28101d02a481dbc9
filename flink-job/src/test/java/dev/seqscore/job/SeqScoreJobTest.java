package dev.seqscore.job;

import dev.seqscore.options.ConfigException;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
