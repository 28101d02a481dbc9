package dev.seqscore.job;

import dev.seqscore.options.ConfigException;
import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.click;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.events.DeadLetterReason;
import dev.seqscore.events.EventValidator;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.Scoring;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.testing.RepoPaths;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.apache.flink.util.InstantiationUtil;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Resolving the operators' settings from the flags and the committed model bundle: the spec supplies every
 * default (window, thresholds, alert types, model version), flags override, and a flag the model cannot honour (a
 * window wider than its tensors, a threshold for an output it does not have) fails on the client with a message
 * naming the flag.
 */
class PipelineSettingsTest {
    private static ModelBundle bundle;
    private static ModelSpec spec;
    private static ModelSpec.Served served;

    @BeforeAll
    static void loadBundle() {
        bundle = ModelBundle.load(RepoPaths.defaultModel());
        spec = bundle.spec();
        // What the job serves by default (--scoring incremental): the streaming model's outputs and thresholds.
        served = spec.served(Scoring.INCREMENTAL);
    }

    @Test
    void specSuppliesTheDefaults() {
        PipelineSettings s = PipelineSettings.from(JobConfig.parse(), bundle);

        assertThat(s.maxEvents).isEqualTo(spec.maxEvents());
        assertThat(s.horizonMs).isEqualTo(spec.horizonMs());
        assertThat(s.alertPolicy.modelVersion).isEqualTo(served.modelVersion());
        assertThat(s.alertPolicy.cooldownMs).isEqualTo(Duration.ofMinutes(10).toMillis());
        assertThat(s.alertPolicy.rules).hasSameSizeAs(served.outputs());
        for (int i = 0; i < served.outputs().size(); i++) {
            ModelSpec.OutputSpec o = served.outputs().get(i);
            AlertPolicy.Rule r = s.alertPolicy.rules.get(i);
            // Same order as the model's outputs: the scorer indexes scores by position.
            assertThat(r.output).isEqualTo(o.name());
            assertThat(r.alertType).isEqualTo(o.alertType());
            assertThat(r.threshold).isEqualTo(o.threshold());
        }
        assertThat(s.stateTtl).isEqualTo(Duration.ofHours(48));
        assertThat(s.scoreBatch).isEqualTo(64);
        assertThat(s.maxParallelism).isEqualTo(128);
    }

    @Test
    void flagsOverrideTheSpec() {
        String first = served.outputs().get(0).name();
        PipelineSettings s = PipelineSettings.from(JobConfig.parse("--max-events", "3", "--horizon", "1h",
                "--threshold." + first, "0.99", "--cooldown", "0", "--state-ttl", "0"), bundle);

        assertThat(s.maxEvents).isEqualTo(3);
        assertThat(s.horizonMs).isEqualTo(Duration.ofHours(1).toMillis());
        assertThat(s.alertPolicy.rules.get(0).threshold).isEqualTo(0.99);
        assertThat(s.alertPolicy.rules.get(1).threshold).isEqualTo(served.outputs().get(1).threshold());
        assertThat(s.alertPolicy.cooldownMs).isZero();
        assertThat(s.stateTtl).isZero();
    }

    @Test
    void windowAsWideAsTheModelIsAccepted() {
        PipelineSettings s = PipelineSettings.from(
                JobConfig.parse("--max-events", Integer.toString(spec.maxEvents())), bundle);

        assertThat(s.maxEvents).isEqualTo(spec.maxEvents());
    }

    @Test
    void windowWiderThanTheModelFailsNamingTheFlagAndTheLimit() {
        JobConfig c = JobConfig.parse("--max-events", Integer.toString(spec.maxEvents() + 1));

        assertThatThrownBy(() -> PipelineSettings.from(c, bundle))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--max-events " + (spec.maxEvents() + 1))
                .hasMessageContaining(Integer.toString(spec.maxEvents()));
    }

    @Test
    void thresholdForAnOutputTheModelLacksFailsListingTheOutputs() {
        JobConfig c = JobConfig.parse("--threshold.purchase_7d", "0.5");

        assertThatThrownBy(() -> PipelineSettings.from(c, bundle))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--threshold.purchase_7d")
                .hasMessageContaining(served.outputs().get(0).name());
    }

    @Test
    void alertRateSetsTheThresholdFromTheSpecsScoreQuantiles() {
        ModelSpec.OutputSpec churn = served.outputs().get(1);
        assertThat(churn.quantiles()).as("the committed bundle records score quantiles").isNotNull();

        PipelineSettings one = PipelineSettings.from(JobConfig.parse("--alert-rate.churn_24h", "0.01"), bundle);
        PipelineSettings five = PipelineSettings.from(JobConfig.parse("--alert-rate.churn_24h=0.05"), bundle);

        assertThat(one.alertPolicy.rules.get(1).threshold).isEqualTo(churn.quantiles().thresholdFor(0.01));
        assertThat(five.alertPolicy.rules.get(1).threshold).isLessThan(one.alertPolicy.rules.get(1).threshold);
        assertThat(one.alertPolicy.rules.get(0).threshold).as("the other output keeps the spec's")
                .isEqualTo(served.outputs().get(0).threshold());
    }

    @Test
    void thresholdAndAlertRateForTheSameOutputIsAnErrorNamingBoth() {
        JobConfig c = JobConfig.parse("--threshold.purchase_30m", "0.5", "--alert-rate.purchase_30m", "0.01");

        assertThatThrownBy(() -> PipelineSettings.from(c, bundle))
                .isInstanceOf(ConfigException.class)
                .hasMessage("--threshold.purchase_30m and --alert-rate.purchase_30m both set the alert threshold of "
                        + "'purchase_30m': give only one of them");
        // One of each for different outputs is fine.
        PipelineSettings s = PipelineSettings.from(JobConfig.parse("--threshold.purchase_30m", "0.5",
                "--alert-rate.churn_24h", "0.01"), bundle);
        assertThat(s.alertPolicy.rules.get(0).threshold).isEqualTo(0.5);
    }

    @Test
    void alertRateOutsideTheQuantilesOrForAMissingOutputFailsNamingTheFlag() {
        assertThatThrownBy(() -> PipelineSettings.from(JobConfig.parse("--alert-rate.churn_24h", "0.00001"), bundle))
                .isInstanceOf(ConfigException.class)
                .hasMessageStartingWith("--alert-rate.churn_24h 1.0E-5: alert rate 1.0E-5 is outside the range");
        assertThatThrownBy(() -> PipelineSettings.from(JobConfig.parse("--alert-rate.purchase_7d", "0.01"), bundle))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--alert-rate.purchase_7d: the model has no output 'purchase_7d'");
        assertThatThrownBy(() -> JobConfig.parse("--alert-rate.churn_24h", "2"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--alert-rate.churn_24h");
    }

    @Test
    void alertRateNeedsABundleWithQuantiles(@TempDir Path dir) throws Exception {
        Path copy = Files.createDirectories(dir.resolve("bundle"));
        try (var onnx = Files.newDirectoryStream(RepoPaths.defaultModel(), "*.onnx")) {
            for (Path f : onnx) {
                Files.copy(f, copy.resolve(f.getFileName()));
            }
        }
        String json = Files.readString(RepoPaths.defaultModel().resolve("model-spec.json"));
        String withoutQuantiles = json.replaceAll("(?s),\\s*\"score_quantiles\": \\{.*?\\}", "");
        assertThat(withoutQuantiles).doesNotContain("score_quantiles");
        Files.writeString(copy.resolve("model-spec.json"), withoutQuantiles);
        ModelBundle old = ModelBundle.load(copy);

        assertThatThrownBy(() -> PipelineSettings.from(JobConfig.parse("--alert-rate.churn_24h", "0.01"), old))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--alert-rate.churn_24h: the model's spec has no score quantiles for "
                        + "'churn_24h'")
                .hasMessageContaining("set --threshold.churn_24h instead");
    }

    @Test
    void validatorUsesTheModelVocabularyAndTheFlagsSkew() {
        long now = T0.toEpochMilli();
        PipelineSettings s = PipelineSettings.builder(bundle)
                .with(JobConfig.MAX_FUTURE_SKEW, "1m")
                .clock(() -> now)
                .build();
        EventValidator v = s.validator();

        for (String type : spec.vocabulary()) {
            assertThat(v.check(click(ALICE).type(type).record()).ok()).as(type).isTrue();
        }
        assertThat(v.check(click(ALICE).type("not-a-" + spec.vocabulary().get(0)).record()).reason)
                .isEqualTo(DeadLetterReason.UNKNOWN_EVENT_TYPE);
        assertThat(v.check(click(ALICE).atMillis(now + Duration.ofMinutes(1).toMillis() + 1).record()).reason)
                .isEqualTo(DeadLetterReason.FUTURE_TIMESTAMP);
    }

    @Test
    void validatorBoundsIdsByTheFlag() {
        EventValidator byDefault = PipelineSettings.from(JobConfig.parse(), bundle).validator();
        EventValidator tight = PipelineSettings.from(JobConfig.parse("--max-id-bytes", "8"), bundle).validator();

        assertThat(byDefault.check(click("u".repeat(256)).record()).ok()).isTrue();
        assertThat(byDefault.check(click("u".repeat(257)).record()).reason).isEqualTo(DeadLetterReason.INVALID_FIELD);
        assertThat(tight.check(click("u".repeat(8)).record()).ok()).isTrue();
        EventValidator.Verdict v = tight.check(click(ALICE).item("item-0042").record());
        assertThat(v.reason).isEqualTo(DeadLetterReason.INVALID_FIELD);
        assertThat(v.detail).startsWith("item_id is 9 bytes long in UTF-8, more than the 8 allowed");
    }

    @Test
    void settingsShipWithTheJobGraph() throws Exception {
        PipelineSettings s = InstantiationUtil.clone(PipelineSettings.from(JobConfig.parse("--max-events", "7"),
                bundle));

        assertThat(s.maxEvents).isEqualTo(7);
        assertThat(s.spec().modelVersion()).isEqualTo(spec.modelVersion());
        assertThat(s.bundle.onnxSize()).isEqualTo(bundle.onnxSize());
    }

    @Test
    void scoringPicksTheModelWhoseOutputsAndVersionTheAlertsCarry() {
        PipelineSettings windowed = PipelineSettings.from(JobConfig.parse("--scoring", "windowed"), bundle);
        PipelineSettings incremental = PipelineSettings.from(JobConfig.parse(), bundle);

        assertThat(windowed.scoring).isEqualTo(Scoring.WINDOWED);
        assertThat(windowed.alertPolicy.modelVersion).isEqualTo(spec.modelVersion());
        for (int i = 0; i < spec.outputs().size(); i++) {
            assertThat(windowed.alertPolicy.rules.get(i).threshold).isEqualTo(spec.outputs().get(i).threshold());
        }
        assertThat(incremental.scoring).isEqualTo(Scoring.INCREMENTAL);
        assertThat(incremental.alertPolicy.modelVersion).isEqualTo(served.modelVersion())
                .isNotEqualTo(spec.modelVersion());
        assertThat(incremental.scoringSettings().served().stateSize()).isPositive();
    }

    @Test
    void modelStateTtlDefaultsToTheResetGapOnlyForTheStreamingModel() {
        assertThat(PipelineSettings.from(JobConfig.parse(), bundle).modelStateTtl)
                .isEqualTo(Duration.ofMillis(served.resetGapMs()));
        assertThat(PipelineSettings.from(JobConfig.parse("--scoring", "windowed"), bundle).modelStateTtl).isZero();
        assertThat(PipelineSettings.from(JobConfig.parse("--model-state-ttl", "7d"), bundle).modelStateTtl)
                .isEqualTo(Duration.ofDays(7));
    }

    @Test
    void incrementalScoringOnABundleWithoutAStreamingModelFailsNamingTheFlag(@TempDir Path dir) throws Exception {
        Path copy = Files.createDirectories(dir.resolve("bundle"));
        Files.copy(RepoPaths.defaultModel().resolve(spec.onnxFile()), copy.resolve(spec.onnxFile()));
        String json = Files.readString(RepoPaths.defaultModel().resolve("model-spec.json"));
        // A format 2 spec: the windowed model alone.
        String windowedOnly = json.substring(0, json.indexOf("\"streaming\"")).replaceAll(",\\s*$", "") + "\n}\n";
        windowedOnly = windowedOnly.replace("\"format_version\": 3", "\"format_version\": 2");
        Files.writeString(copy.resolve("model-spec.json"), windowedOnly);
        ModelBundle old = ModelBundle.load(copy);

        assertThatThrownBy(() -> PipelineSettings.from(JobConfig.parse(), old))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--scoring incremental")
                .hasMessageContaining("use --scoring windowed");
        assertThat(PipelineSettings.from(JobConfig.parse("--scoring", "windowed"), old).scoring)
                .isEqualTo(Scoring.WINDOWED);
    }
}
