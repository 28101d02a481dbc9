package dev.seqscore.scoring;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.features.Scoring;
import dev.seqscore.testing.RepoPaths;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The model bundle the scoring operator's tests run on, and {@link ScoringSettings} for them with the job's defaults
 * unless a test says otherwise. The bundle is {@code -Dseqscore.bundle=DIR} (or {@code $SEQSCORE_BUNDLE}) when given,
 * else {@code models/default}, loaded once per JVM; tests of the streaming model skip with a message when it has
 * none (a format 2 bundle).
 */
public final class ScoringFixture {
    public static final Duration MAX_DELAY = Duration.ofMillis(5);
    public static final long ONE_HOUR = Duration.ofHours(1).toMillis();
    public static final long TEN_MINUTES = Duration.ofMinutes(10).toMillis();

    private static Path dir;
    private static ModelBundle bundle;

    private ScoringFixture() {}

    public static synchronized Path bundleDir() {
        if (dir == null) {
            String given = System.getProperty("seqscore.bundle", System.getenv("SEQSCORE_BUNDLE"));
            dir = given == null || given.isBlank() ? RepoPaths.defaultModel() : Path.of(given);
        }
        return dir;
    }

    public static synchronized ModelBundle bundle() {
        if (bundle == null) {
            bundle = ModelBundle.load(bundleDir());
        }
        return bundle;
    }

    public static ModelSpec spec() {
        return bundle().spec();
    }

    public static boolean hasStreaming() {
        return spec().streaming().isPresent();
    }

    /** Skips the calling test unless the bundle serves {@code scoring}: a format 2 bundle has no streaming model. */
    public static void assumeServes(Scoring scoring) {
        if (scoring == Scoring.INCREMENTAL) {
            assumeStreaming();
        }
    }

    /** Skips the calling test when the bundle has no streaming model. */
    public static void assumeStreaming() {
        assumeTrue(hasStreaming(), () -> "skipped: the bundle " + bundleDir() + " is format "
                + spec().formatVersion() + ", without a streaming model, so --scoring incremental cannot run; "
                + "these tests run against a format 3 bundle (models/default, or -Dseqscore.bundle=DIR)");
    }

    /** Settings as the job's defaults give them for this bundle, with a short batching deadline; change any. */
    public static Settings settings(Scoring scoring) {
        return new Settings(scoring);
    }

    /**
     * A copy of the bundle in {@code target} (its spec and graphs) with its spec edited, e.g. another
     * {@code streaming.model_version}, or without the streaming model (format 2).
     */
    public static ModelBundle derivedBundle(Path target, Consumer<ObjectNode> editSpec) {
        try {
            Files.createDirectories(target);
            ObjectMapper mapper = new ObjectMapper();
            ObjectNode root = (ObjectNode) mapper.readTree(bundleDir().resolve(ModelBundle.SPEC_FILE).toFile());
            List<String> graphs = new ArrayList<>(List.of(root.get("onnx_file").asText()));
            if (root.has("streaming")) {
                graphs.add(root.get("streaming").get("onnx_file").asText());
            }
            for (String g : graphs) {
                Files.copy(bundleDir().resolve(g), target.resolve(g));
            }
            editSpec.accept(root);
            mapper.writerWithDefaultPrettyPrinter().writeValue(target.resolve(ModelBundle.SPEC_FILE).toFile(), root);
            return ModelBundle.load(target);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The bundle's windowed model alone, as a format 2 bundle: what a bundle before the streaming model is. */
    public static ModelBundle withoutStreaming(Path target) {
        return derivedBundle(target, spec -> {
            spec.remove("streaming");
            spec.put("format_version", 2);
        });
    }

    /** What {@link ScoringOperator} gets, built like PipelineSettings builds it, with every knob a test turns. */
    public static final class Settings {
        public Scoring scoring;
        public ModelBundle bundle = ScoringFixture.bundle();
        public int maxEvents = spec().maxEvents();
        public long horizonMs = spec().horizonMs();
        public Duration stateTtl = Duration.ZERO;
        /** Null: the job's default (the reset gap with incremental scoring, 0 with windowed). */
        public Long modelStateTtlMs;
        public int maxBatch = 64;
        public long maxDelayMs = MAX_DELAY.toMillis();
        /** Null: the served model's thresholds. */
        public double[] thresholds;
        public long cooldownMs = TEN_MINUTES;
        public int reasonTop;

        private Settings(Scoring scoring) {
            this.scoring = scoring;
        }

        public Settings bundle(ModelBundle v) { bundle = v; return this; }
        public Settings maxEvents(int v) { maxEvents = v; return this; }
        public Settings horizonMs(long v) { horizonMs = v; return this; }
        public Settings stateTtl(Duration v) { stateTtl = v; return this; }
        public Settings modelStateTtlMs(long v) { modelStateTtlMs = v; return this; }
        public Settings maxBatch(int v) { maxBatch = v; return this; }
        public Settings thresholds(double... v) { thresholds = v; return this; }
        public Settings cooldownMs(long v) { cooldownMs = v; return this; }
        public Settings reasonTop(int v) { reasonTop = v; return this; }

        public ScoringSettings build() {
            ModelSpec.Served served = bundle.spec().served(scoring);
            List<AlertPolicy.Rule> rules = new ArrayList<>();
            for (int o = 0; o < served.outputs().size(); o++) {
                ModelSpec.OutputSpec out = served.outputs().get(o);
                rules.add(new AlertPolicy.Rule(out.name(), out.alertType(),
                        thresholds == null ? out.threshold() : thresholds[o]));
            }
            long modelTtl = modelStateTtlMs != null ? modelStateTtlMs
                    : served.incremental() ? served.resetGapMs() : 0L;
            return new ScoringSettings(bundle, scoring, maxEvents, horizonMs, stateTtl, modelTtl, 1, maxBatch,
                    maxDelayMs, new AlertPolicy(rules, cooldownMs, served.modelVersion()), reasonTop);
        }
    }
}
