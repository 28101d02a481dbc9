package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.features.Scoring;
import dev.seqscore.job.JobConfig;
import dev.seqscore.lifecycle.GoldenCheck;
import dev.seqscore.lifecycle.PublishedBundles;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.OptionValues;
import dev.seqscore.testing.RepoPaths;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code bin/seqscore demo --shadow-model DIR}: a bundle that cannot shadow fails before anything starts. */
class DemoShadowModelTest {
    @TempDir
    Path dir;

    private final ByteArrayOutputStream log = new ByteArrayOutputStream();

    private void check(String... args) {
        Demo.check(Demo.OPTIONS.parse(args), new PrintStream(log, true, StandardCharsets.UTF_8));
    }

    @Test
    void aRetrainedBundleIsCheckedAndGetsTheControlStatusAndShadowScoresTopics() {
        Path base = RepoPaths.defaultModel();
        Path v2 = PublishedBundles.retrained(base, dir.resolve("v2"), "-v2");
        check("--shadow-model", v2.toString());
        assertThat(log.toString(StandardCharsets.UTF_8)).contains("checked " + v2.toAbsolutePath(),
                "golden events score as exported");

        OptionValues v = Demo.demoDefaults(Demo.OPTIONS.parse("--shadow-model", v2.toString()), "localhost:1",
                dir.resolve("cp"));
        JobConfig config = JobConfig.of(v);
        assertThat(config.modelControlTopic()).isEqualTo("model-control");
        assertThat(config.modelStatusTopic()).isEqualTo("model-status");
        assertThat(config.shadowScoresTopic()).isEqualTo("shadow-scores");
        assertThat(config.scoresTopic()).isEqualTo("scores");
        // Without a candidate the job runs without the model topics, as before.
        assertThat(JobConfig.of(Demo.demoDefaults(Demo.OPTIONS.parse(), "localhost:1", dir.resolve("cp")))
                .modelControlTopic()).isEmpty();
    }

    @Test
    void aDirectoryThatIsNoBundleFailsNamingWhatToGive() throws Exception {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        for (Path bad : new Path[] {dir.resolve("missing"), empty}) {
            assertThatThrownBy(() -> check("--shadow-model", bad.toString()))
                    .isInstanceOf(ConfigException.class)
                    .hasMessageStartingWith("--shadow-model " + bad)
                    .hasMessageContaining("Give a model bundle directory as the export writes it");
        }
    }

    @Test
    void aBundleWhoseGraphsDoNotScoreItsGoldenVectorsFails() {
        Path base = RepoPaths.defaultModel();
        Path bad = PublishedBundles.retrained(base, dir.resolve("bad"), "-bad");
        PublishedBundles.corruptGolden(bad, GoldenCheck.fileOf(ModelBundle.load(base).spec(), Scoring.INCREMENTAL));
        assertThatThrownBy(() -> check("--shadow-model", bad.toString()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("golden vectors disagree")
                .hasMessageContaining("Give a model bundle directory");
    }

    @Test
    void theComparisonNeedsTheScoresTopic() {
        Path v2 = PublishedBundles.retrained(RepoPaths.defaultModel(), dir.resolve("v2"), "-v2");
        assertThatThrownBy(() -> check("--shadow-model", v2.toString(), "--scores-topic", ""))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--shadow-model needs --scores-topic");
    }
}
