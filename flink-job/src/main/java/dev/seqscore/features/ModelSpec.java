package dev.seqscore.features;

import java.io.IOException;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Optional;

/**
 * The parsed, validated {@code model-spec.json} of a model bundle (docs/feature-contract.md, format_version 1 to 3):
 * every constant the job needs to rebuild the model's input tensors and to turn its outputs into alerts. Format 3
 * adds the streaming model ({@link #streaming()}); {@link #served} gives the parts of whichever model is served.
 *
 * <p>Immutable and {@link Serializable}, because it travels inside Flink operators to the TaskManagers. {@link #parse}
 * binds the JSON to records ({@link ModelSpecJson}), then validates everything the job relies on
 * ({@link ModelSpecValidator}), so a bad spec fails at start-up with a message naming the file and the problem
 * rather than producing wrong scores later.
 */
public final class ModelSpec implements Serializable {
    private static final long serialVersionUID = 1L;

    /**
     * The format this job writes about and reads; it reads formats 1 (no recent window, no quantiles) and 2 (no
     * streaming model) too.
     */
    public static final int FORMAT_VERSION = 3;
    public static final String HASH_NAME = "fnv1a64-utf8";

    /** Sequence features the encoder implements. */
    public static final List<String> SEQUENCE_FEATURES =
            List.of("gap_log1p", "age_log1p", "hour_sin", "hour_cos", "same_item", "same_category");
    /**
     * Profile features the encoder implements, besides one per vocabulary entry and prefix in
     * {@link #TYPE_PREFIXES}.
     */
    public static final List<String> PROFILE_FEATURES = List.of("distinct_items", "distinct_categories",
            "carts_without_buy", "session_events", "since_prev_buy", "has_prev_buy", "window_length",
            "since_prev_event", "same_item_count", "same_category_count", "event_hour_sin", "event_hour_cos");
    public static final String COUNT_PREFIX = "count_";
    /** Events of the type in the last {@code window.recent_ms}. */
    public static final String RECENT_PREFIX = "recent_";
    /** 1 if the scored event has the type. */
    public static final String IS_PREFIX = "is_";
    public static final List<String> TYPE_PREFIXES = List.of(COUNT_PREFIX, RECENT_PREFIX, IS_PREFIX);

    /** The input tensors the encoder produces, in contract order. */
    public static final List<String> INPUT_NAMES =
            List.of("event_type", "item_bucket", "category_bucket", "seq_numeric", "mask", "profile");

    /** Lifetime features the encoder implements, besides {@link #LIFE_COUNT_PREFIX} one per vocabulary entry. */
    public static final List<String> LIFETIME_FEATURES = List.of("life_active_days", "life_days_since_first",
            "life_since_prev_event", "life_since_prev_buy", "life_has_prev_buy");
    public static final String LIFE_COUNT_PREFIX = "life_count_";
    /** The step graph's two inputs beyond {@link #INPUT_NAMES}. */
    public static final String LIFETIME_INPUT = "lifetime";
    public static final String STATE_INPUT = "state";
    /** The step graph's outputs: a probability per {@code streaming.outputs} entry, and the next state. */
    public static final String SCORES_OUTPUT = "scores";
    public static final String STATE_OUTPUT = "state_out";

    /** A standardised feature: {@code float32((raw - mean) / std)}. */
    public record FeatureSpec(String name, double mean, double std) implements Serializable {}

    /**
     * A tensor's declared name, dtype and shape. Shape entries are decimal sizes or symbolic names such as
     * {@code "batch"}; {@link #dim(int)} gives -1 for symbolic ones, as ONNX Runtime reports dynamic dimensions.
     */
    public record TensorSpec(String name, String dtype, List<String> shape) implements Serializable {
        public int rank() {
            return shape.size();
        }

        public long dim(int i) {
            String d = shape.get(i);
            return isNumeric(d) ? Long.parseLong(d) : -1;
        }

        public String shapeString() {
            return "[" + String.join(", ", shape) + "]";
        }
    }

    /**
     * A model output: a probability per row, and how it becomes an alert. {@code thresholdRule} says how the threshold
     * was chosen: the spec's text, or its object as compact JSON. {@code quantiles} (format 2, may be null) maps an
     * alert rate to a threshold.
     */
    public record OutputSpec(String name, String dtype, List<String> shape, String alertType, double threshold,
                             String thresholdRule, ScoreQuantiles quantiles) implements Serializable {
        public TensorSpec tensor() {
            return new TensorSpec(name, dtype, shape);
        }
    }

    /**
     * The training scores' upper quantiles ({@code outputs[].score_quantiles}): at alert rate {@code alertRates[i]}
     * (the fraction of all scored events at or above it), the threshold {@code thresholds[i]}. Rates increase strictly
     * and thresholds do not increase.
     */
    public record ScoreQuantiles(List<Double> alertRates, List<Double> thresholds) implements Serializable {
        /**
         * The threshold that alerts on a fraction {@code rate} of events: the stored one at a stored rate, else
         * interpolated linearly in log(rate) between the two neighbouring rates.
         *
         * @throws IllegalArgumentException naming the covered range when {@code rate} lies outside it
         */
        public double thresholdFor(double rate) {
            double lo = alertRates.get(0);
            double hi = alertRates.get(alertRates.size() - 1);
            if (!(rate >= lo && rate <= hi)) {
                throw new IllegalArgumentException("alert rate " + rate + " is outside the range the model's score "
                        + "quantiles cover, [" + lo + ", " + hi + "]");
            }
            for (int i = 0; i < alertRates.size() - 1; i++) {
                double r0 = alertRates.get(i);
                double r1 = alertRates.get(i + 1);
                if (rate == r0) {
                    return thresholds.get(i);
                }
                if (rate < r1) {
                    double w = (Math.log(rate) - Math.log(r0)) / (Math.log(r1) - Math.log(r0));
                    return thresholds.get(i) + w * (thresholds.get(i + 1) - thresholds.get(i));
                }
            }
            return thresholds.get(thresholds.size() - 1);
        }

        /**
         * The inverse of {@link #thresholdFor}: the fraction of the training events scored at or above
         * {@code threshold}, interpolated the same way; NaN when the threshold lies above the highest stored one
         * (the rate is below the smallest stored rate). Where thresholds repeat, the largest rate is returned.
         */
        public double rateFor(double threshold) {
            if (threshold > thresholds.get(0)) {
                return Double.NaN;
            }
            for (int i = thresholds.size() - 1; i > 0; i--) {
                double t0 = thresholds.get(i - 1);
                double t1 = thresholds.get(i);
                if (threshold <= t0 && threshold >= t1) {
                    if (t0 == t1) {
                        return alertRates.get(i);
                    }
                    double w = (t0 - threshold) / (t0 - t1);
                    return Math.exp(Math.log(alertRates.get(i - 1))
                            + w * (Math.log(alertRates.get(i)) - Math.log(alertRates.get(i - 1))));
                }
            }
            return alertRates.get(alertRates.size() - 1);
        }
    }

    /**
     * A named set of model inputs that explains an alert when occluded: profile features (indices into
     * {@link #profileFeatures()}), the sequence itself, or (streaming model only) the user's history: every lifetime
     * feature and the recurrent state. {@code text} has {@code {feature}} placeholders for readable values of profile
     * and lifetime features, and {@code {event_type}}.
     */
    public record ReasonGroup(String name, String title, int[] profileIndices, boolean sequence, boolean history,
                              String text) implements Serializable {
        public ReasonGroup(String name, String title, int[] profileIndices, boolean sequence, String text) {
            this(name, title, profileIndices, sequence, false, text);
        }
    }

    /**
     * The streaming model of a format 3 bundle ({@code streaming} in the spec): a step graph fed the six windowed
     * inputs plus {@code lifetime} [batch, F] and {@code state} [batch, Z], returning {@code scores} [batch, O] and
     * {@code state_out} [batch, Z]. {@code goldenFile} is null when the spec names none.
     */
    public record Streaming(String onnxFile, String modelVersion, int stateSize, long resetGapMs,
                            List<FeatureSpec> lifetimeFeatures, List<TensorSpec> inputs, List<OutputSpec> outputs,
                            List<TensorSpec> graphOutputs, List<ReasonGroup> reasonGroups, int reasonTop,
                            String goldenFile) implements Serializable {
        public List<String> lifetimeFeatureNames() {
            return lifetimeFeatures.stream().map(FeatureSpec::name).toList();
        }
    }

    /**
     * What the job serves, whichever model it is: the operator, the explainer and the alerts read this rather than
     * the spec's top level, so that they need not know which graph runs. {@code stateSize} is 0,
     * {@code lifetimeFeatures} empty and {@code resetGapMs} 0 for the windowed model; {@code inputs} and
     * {@code graphOutputs} are the graph's signature as the spec declares it.
     */
    public record Served(Scoring scoring, String modelVersion, String onnxFile, List<OutputSpec> outputs,
                         List<ReasonGroup> reasonGroups, int reasonTop, int stateSize,
                         List<FeatureSpec> lifetimeFeatures, long resetGapMs, List<TensorSpec> inputs,
                         List<TensorSpec> graphOutputs) implements Serializable {
        public boolean incremental() {
            return scoring == Scoring.INCREMENTAL;
        }

        /** {@link ModelSpec#versionTag} of {@link #modelVersion}. */
        public long versionTag() {
            return ModelSpec.versionTag(modelVersion);
        }

        public List<String> outputNames() {
            return outputs.stream().map(OutputSpec::name).toList();
        }
    }

    private final String source;
    private final String modelVersion;
    private final String onnxFile;
    private final int opset;
    private final int maxEvents;
    private final long horizonMs;
    private final long sessionGapMs;
    private final long recentMs;
    private final int formatVersion;
    private final String zone;
    private final long utcOffsetMs;
    private final List<String> vocabulary;
    private final HashMap<String, Integer> typeIds;
    private final int itemBuckets;
    private final int categoryBuckets;
    private final List<FeatureSpec> sequenceFeatures;
    private final List<FeatureSpec> profileFeatures;
    private final List<TensorSpec> inputs;
    private final List<OutputSpec> outputs;
    private final List<ReasonGroup> reasonGroups;
    private final int reasonTop;
    /** Null before format 3. */
    private final Streaming streaming;

    /** Values that {@link ModelSpecValidator} has checked. */
    ModelSpec(String source, String modelVersion, String onnxFile, int opset, int maxEvents, long horizonMs,
              long sessionGapMs, long recentMs, int formatVersion, String zone, long utcOffsetMs,
              List<String> vocabulary, HashMap<String, Integer> typeIds, int itemBuckets, int categoryBuckets,
              List<FeatureSpec> sequenceFeatures, List<FeatureSpec> profileFeatures, List<TensorSpec> inputs,
              List<OutputSpec> outputs, List<ReasonGroup> reasonGroups, int reasonTop, Streaming streaming) {
        this.source = source;
        this.modelVersion = modelVersion;
        this.onnxFile = onnxFile;
        this.opset = opset;
        this.maxEvents = maxEvents;
        this.horizonMs = horizonMs;
        this.sessionGapMs = sessionGapMs;
        this.recentMs = recentMs;
        this.formatVersion = formatVersion;
        this.zone = zone;
        this.utcOffsetMs = utcOffsetMs;
        this.vocabulary = vocabulary;
        this.typeIds = typeIds;
        this.itemBuckets = itemBuckets;
        this.categoryBuckets = categoryBuckets;
        this.sequenceFeatures = sequenceFeatures;
        this.profileFeatures = profileFeatures;
        this.inputs = inputs;
        this.outputs = outputs;
        this.reasonGroups = reasonGroups;
        this.reasonTop = reasonTop;
        this.streaming = streaming;
    }

    /** Parses and validates spec JSON; {@code source} names where it came from in error messages. */
    public static ModelSpec parse(String json, String source) {
        return ModelSpecValidator.validate(ModelSpecJson.read(json, source), source);
    }

    /** Reads, parses and validates a {@code model-spec.json} file. */
    public static ModelSpec load(Path file) {
        String json;
        try {
            json = Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("model spec " + file + " does not exist", e);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read model spec " + file + ": " + e, e);
        }
        return parse(json, file.toString());
    }

    /** Where the spec was read from, for messages. */
    public String source() {
        return source;
    }

    public String modelVersion() {
        return modelVersion;
    }

    public String onnxFile() {
        return onnxFile;
    }

    /** The ONNX opset the model was exported with, 0 if the spec does not say. */
    public int opset() {
        return opset;
    }

    /** N: the window's (and each sequence tensor's) length. */
    public int maxEvents() {
        return maxEvents;
    }

    public long horizonMs() {
        return horizonMs;
    }

    public long sessionGapMs() {
        return sessionGapMs;
    }

    /** The recent window of the {@code recent_<type>} features; 0 when the spec has none. */
    public long recentMs() {
        return recentMs;
    }

    public int formatVersion() {
        return formatVersion;
    }

    public String zone() {
        return zone;
    }

    public long utcOffsetMs() {
        return utcOffsetMs;
    }

    public List<String> vocabulary() {
        return vocabulary;
    }

    /** The 1-based vocabulary id of an event type, or 0 if the type is not in the vocabulary. */
    public int typeId(String eventType) {
        Integer id = eventType == null ? null : typeIds.get(eventType);
        return id == null ? 0 : id;
    }

    public int itemBuckets() {
        return itemBuckets;
    }

    public int categoryBuckets() {
        return categoryBuckets;
    }

    public List<FeatureSpec> sequenceFeatures() {
        return sequenceFeatures;
    }

    public List<FeatureSpec> profileFeatures() {
        return profileFeatures;
    }

    public List<String> sequenceFeatureNames() {
        return sequenceFeatures.stream().map(FeatureSpec::name).toList();
    }

    public double[] sequenceMeans() {
        return sequenceFeatures.stream().mapToDouble(FeatureSpec::mean).toArray();
    }

    public double[] sequenceStds() {
        return sequenceFeatures.stream().mapToDouble(FeatureSpec::std).toArray();
    }

    public List<String> profileFeatureNames() {
        return profileFeatures.stream().map(FeatureSpec::name).toList();
    }

    public double[] profileMeans() {
        return profileFeatures.stream().mapToDouble(FeatureSpec::mean).toArray();
    }

    public double[] profileStds() {
        return profileFeatures.stream().mapToDouble(FeatureSpec::std).toArray();
    }

    /** The model's inputs, in spec order (always the six contract inputs). */
    public List<TensorSpec> inputs() {
        return inputs;
    }

    /** The groups that explain alerts; empty for a bundle exported before reasons existed. */
    public List<ReasonGroup> reasonGroups() {
        return reasonGroups;
    }

    /** How many reasons an alert carries at most, by default. */
    public int reasonTop() {
        return reasonTop;
    }

    /** The model's outputs, in spec order: the order of {@code OnnxScorer} results. */
    public List<OutputSpec> outputs() {
        return outputs;
    }

    /** The streaming model of a format 3 bundle; empty before format 3. */
    public Optional<Streaming> streaming() {
        return Optional.ofNullable(streaming);
    }

    /**
     * The parts of the model that {@code scoring} serves.
     *
     * @throws IllegalArgumentException naming the fix, if {@code scoring} is incremental and this bundle has no
     *                                  streaming model
     */
    public Served served(Scoring scoring) {
        if (scoring == Scoring.WINDOWED) {
            List<TensorSpec> graphOutputs = outputs.stream().map(OutputSpec::tensor).toList();
            return new Served(scoring, modelVersion, onnxFile, outputs, reasonGroups, reasonTop, 0, List.of(), 0L,
                    inputs, graphOutputs);
        }
        if (streaming == null) {
            throw new IllegalArgumentException("bundle " + bundleName() + " (format " + formatVersion + ") has no "
                    + "streaming model: use --scoring " + Scoring.WINDOWED.cliName() + " or a bundle exported by "
                    + "this version of model-export");
        }
        Streaming st = streaming;
        return new Served(scoring, st.modelVersion(), st.onnxFile(), st.outputs(), st.reasonGroups(), st.reasonTop(),
                st.stateSize(), st.lifetimeFeatures(), st.resetGapMs(), st.inputs(), st.graphOutputs());
    }

    /** The bundle directory for messages: the source without its file name, when it is a model-spec.json. */
    private String bundleName() {
        for (String suffix : new String[] {"/model-spec.json", "\\model-spec.json"}) {
            if (source.endsWith(suffix)) {
                return source.substring(0, source.length() - suffix.length());
            }
        }
        return source;
    }

    /**
     * A model version as a long, for compact tags in per-user state: the 16 hex characters the exporter writes, read
     * as an unsigned number; any other text gets its 64-bit FNV-1a hash. Never 0, which stands for "no model".
     */
    public static long versionTag(String modelVersion) {
        if (modelVersion == null || modelVersion.isEmpty()) {
            throw new IllegalArgumentException("a model version must be a non-empty string");
        }
        long tag = 0;
        if (modelVersion.length() == 16 && modelVersion.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
            tag = Long.parseUnsignedLong(modelVersion, 16);
        }
        if (tag == 0) {
            tag = Fnv1a64.hash(modelVersion);
        }
        return tag == 0 ? 1 : tag;
    }

    @Override
    public String toString() {
        return "ModelSpec{" + modelVersion + " from " + source + ", N=" + maxEvents + ", horizon=" + horizonMs
                + "ms, recent=" + recentMs + "ms, S=" + sequenceFeatures.size() + ", P=" + profileFeatures.size() + ", outputs="
                + outputs.stream().map(OutputSpec::name).toList() + (streaming == null ? "" : ", streaming "
                + streaming.modelVersion() + " (Z=" + streaming.stateSize() + ", F=" + streaming.lifetimeFeatures().size()
                + ")") + "}";
    }

    static boolean isNumeric(String s) {
        if (s.isEmpty()) return false;
        for (int i = 0; i < s.length(); i++) {
            if (!Character.isDigit(s.charAt(i))) return false;
        }
        return true;
    }
}
