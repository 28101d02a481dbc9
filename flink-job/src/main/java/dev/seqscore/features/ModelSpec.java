package dev.seqscore.features;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The parsed, validated {@code model-spec.json} of a model bundle (docs/feature-contract.md, format_version 1 to 3):
 * every constant the job needs to rebuild the model's input tensors and to turn its outputs into alerts. Format 3
 * adds the streaming model ({@link #streaming()}); {@link #served} gives the parts of whichever model is served.
 *
 * <p>Immutable and {@link Serializable}, because it travels inside Flink operators to the TaskManagers. Construction
 * validates everything the job relies on, so a bad spec fails at start-up with a message naming the file and the
 * problem rather than producing wrong scores later.
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

    private ModelSpec(Parser p) {
        JsonNode root = p.root;
        int format = p.positiveInt(root, "format_version");
        if (format < 1 || format > FORMAT_VERSION) {
            throw p.fail("format_version is " + format + " but this job reads format_version 1, 2 or "
                    + FORMAT_VERSION);
        }
        this.formatVersion = format;
        this.source = p.source;
        this.modelVersion = p.nonEmptyText(root, "model_version");
        this.onnxFile = p.nonEmptyText(root, "onnx_file");
        if (onnxFile.contains("/") || onnxFile.contains("\\") || onnxFile.equals("..")) {
            throw p.fail("onnx_file must be a file name inside the bundle directory, got '" + onnxFile + "'");
        }
        this.opset = root.has("opset") ? p.positiveInt(root, "opset") : 0;

        JsonNode window = p.object(root, "window");
        this.maxEvents = p.positiveInt(window, "window.max_events");
        this.horizonMs = p.positiveLong(window, "window.horizon_ms");
        this.sessionGapMs = p.positiveLong(window, "window.session_gap_ms");
        this.recentMs = window.has("recent_ms") ? p.positiveLong(window, "window.recent_ms") : 0L;

        JsonNode time = p.object(root, "time");
        this.zone = time.has("zone") ? p.nonEmptyText(time, "time.zone") : "";
        this.utcOffsetMs = p.longValue(time, "time.utc_offset_ms");
        if (Math.abs(utcOffsetMs) >= 86_400_000L) {
            throw p.fail("time.utc_offset_ms must be within one day, got " + utcOffsetMs);
        }

        JsonNode types = p.object(root, "event_types");
        if (types.has("padding_id") && p.longValue(types, "event_types.padding_id") != 0) {
            throw p.fail("event_types.padding_id must be 0, got " + types.get("padding_id"));
        }
        JsonNode vocab = p.array(types, "event_types.vocabulary");
        if (vocab.isEmpty()) {
            throw p.fail("event_types.vocabulary is empty");
        }
        List<String> v = new ArrayList<>();
        HashMap<String, Integer> ids = new HashMap<>();
        for (int i = 0; i < vocab.size(); i++) {
            JsonNode t = vocab.get(i);
            if (!t.isTextual() || t.asText().isEmpty()) {
                throw p.fail("event_types.vocabulary[" + i + "] must be a non-empty string, got " + t);
            }
            if (ids.putIfAbsent(t.asText(), i + 1) != null) {
                throw p.fail("event_types.vocabulary has the duplicate entry '" + t.asText() + "'");
            }
            v.add(t.asText());
        }
        this.vocabulary = List.copyOf(v);
        this.typeIds = ids;

        JsonNode hash = p.object(root, "hash");
        String hashName = p.nonEmptyText(hash, "hash.name");
        if (!hashName.equals(HASH_NAME)) {
            throw p.fail("hash.name is '" + hashName + "' but this job implements only '" + HASH_NAME + "'");
        }
        this.itemBuckets = p.positiveInt(hash, "hash.item_buckets");
        this.categoryBuckets = p.positiveInt(hash, "hash.category_buckets");

        this.sequenceFeatures =
                p.features(root, "sequence_features", "sequence feature", Set.copyOf(SEQUENCE_FEATURES));
        Set<String> profileKnown = new HashSet<>(PROFILE_FEATURES);
        for (String t : vocabulary) {
            for (String prefix : TYPE_PREFIXES) {
                profileKnown.add(prefix + t);
            }
        }
        this.profileFeatures = p.features(root, "profile_features", "profile feature", profileKnown);
        for (FeatureSpec f : profileFeatures) {
            if (f.name().startsWith(RECENT_PREFIX) && recentMs == 0) {
                throw p.fail("profile feature '" + f.name() + "' needs 'window.recent_ms', which is missing");
            }
        }

        Map<String, List<String>> windowInputs = windowInputShapes();
        this.inputs = p.inputs(root, "inputs", windowInputs,
                "window.max_events, sequence_features and profile_features imply");
        this.outputs = p.outputs(root, "outputs");
        if (root.has("reasons")) {
            JsonNode reasons = p.object(root, "reasons");
            this.reasonTop = p.positiveInt(reasons, "reasons.top");
            this.reasonGroups = p.reasonGroups(reasons, "reasons", profileFeatureNames(), List.of());
        } else {
            this.reasonTop = 0;
            this.reasonGroups = List.of();
        }

        boolean hasStreaming = root.has("streaming") && !root.get("streaming").isNull();
        if (format == 3 && !hasStreaming) {
            throw p.fail("format_version 3 needs a 'streaming' section (the streaming model), which is missing");
        }
        if (format < 3 && hasStreaming) {
            throw p.fail("'streaming' needs format_version 3, but the spec says " + format);
        }
        this.streaming = hasStreaming ? p.streaming(p.object(root, "streaming"), windowInputs, profileFeatureNames(),
                vocabulary, onnxFile) : null;
    }

    /** dtype and shape (after the batch dimension) of each windowed input, in contract order. */
    private Map<String, List<String>> windowInputShapes() {
        Map<String, List<String>> expected = new LinkedHashMap<>();
        String nn = Integer.toString(maxEvents);
        expected.put("event_type", List.of("int64", "batch", nn));
        expected.put("item_bucket", List.of("int64", "batch", nn));
        expected.put("category_bucket", List.of("int64", "batch", nn));
        expected.put("seq_numeric", List.of("float32", "batch", nn, Integer.toString(sequenceFeatures.size())));
        expected.put("mask", List.of("float32", "batch", nn));
        expected.put("profile", List.of("float32", "batch", Integer.toString(profileFeatures.size())));
        return expected;
    }

    /** Parses and validates spec JSON; {@code source} names where it came from in error messages. */
    public static ModelSpec parse(String json, String source) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(source + " is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException(source + " must hold a JSON object");
        }
        return new ModelSpec(new Parser(root, source));
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

    private static boolean isNumeric(String s) {
        if (s.isEmpty()) return false;
        for (int i = 0; i < s.length(); i++) {
            if (!Character.isDigit(s.charAt(i))) return false;
        }
        return true;
    }

    /** Typed access to the JSON tree; every failure names the key path and the source file. */
    private static final class Parser {
        final JsonNode root;
        final String source;

        Parser(JsonNode root, String source) {
            this.root = root;
            this.source = source;
        }

        IllegalArgumentException fail(String problem) {
            return new IllegalArgumentException("invalid model spec " + source + ": " + problem);
        }

        private static String leaf(String path) {
            int dot = path.lastIndexOf('.');
            return dot < 0 ? path : path.substring(dot + 1);
        }

        JsonNode required(JsonNode parent, String path) {
            JsonNode n = parent.get(leaf(path));
            if (n == null || n.isNull()) {
                throw fail("missing key '" + path + "'");
            }
            return n;
        }

        JsonNode object(JsonNode parent, String path) {
            JsonNode n = required(parent, path);
            if (!n.isObject()) throw fail("'" + path + "' must be an object, got " + n);
            return n;
        }

        JsonNode array(JsonNode parent, String path) {
            JsonNode n = required(parent, path);
            if (!n.isArray()) throw fail("'" + path + "' must be an array, got " + n);
            return n;
        }

        String nonEmptyText(JsonNode parent, String path) {
            JsonNode n = required(parent, path);
            if (!n.isTextual() || n.asText().isEmpty()) {
                throw fail("'" + path + "' must be a non-empty string, got " + n);
            }
            return n.asText();
        }

        long longValue(JsonNode parent, String path) {
            JsonNode n = required(parent, path);
            if (!n.isIntegralNumber() || !n.canConvertToLong()) {
                throw fail("'" + path + "' must be an integer, got " + n);
            }
            return n.asLong();
        }

        long positiveLong(JsonNode parent, String path) {
            long v = longValue(parent, path);
            if (v <= 0) throw fail("'" + path + "' must be positive, got " + v);
            return v;
        }

        int positiveInt(JsonNode parent, String path) {
            long v = positiveLong(parent, path);
            if (v > Integer.MAX_VALUE) throw fail("'" + path + "' is too large: " + v);
            return (int) v;
        }

        double finite(JsonNode parent, String path) {
            JsonNode n = required(parent, path);
            if (!n.isNumber() || !Double.isFinite(n.asDouble())) {
                throw fail("'" + path + "' must be a finite number, got " + n);
            }
            return n.asDouble();
        }

        /**
         * {@code key.groups}; {@code lifetimeNames} is empty for the windowed model, whose groups cannot occlude a
         * history.
         */
        List<ReasonGroup> reasonGroups(JsonNode reasons, String key, List<String> profileNames,
                                       List<String> lifetimeNames) {
            JsonNode arr = array(reasons, key + ".groups");
            List<ReasonGroup> out = new ArrayList<>();
            Set<String> names = new HashSet<>();
            for (int i = 0; i < arr.size(); i++) {
                JsonNode g = arr.get(i);
                String at = key + ".groups[" + i + "]";
                if (!g.isObject()) throw fail("'" + at + "' must be an object, got " + g);
                String name = nonEmptyText(g, at + ".name");
                if (!names.add(name)) throw fail("reason group '" + name + "' appears twice");
                JsonNode feats = array(g, at + ".profile_features");
                int[] idx = new int[feats.size()];
                for (int f = 0; f < feats.size(); f++) {
                    idx[f] = profileNames.indexOf(feats.get(f).asText());
                    if (idx[f] < 0) {
                        throw fail("reason group '" + name + "' names profile feature '" + feats.get(f).asText()
                                + "', which is not in 'profile_features'");
                    }
                }
                JsonNode seq = required(g, at + ".sequence");
                if (!seq.isBoolean()) throw fail("'" + at + ".sequence' must be true or false, got " + seq);
                JsonNode hist = g.get("history");
                boolean history = false;
                if (hist != null && !hist.isNull()) {
                    if (!hist.isBoolean()) throw fail("'" + at + ".history' must be true or false, got " + hist);
                    history = hist.asBoolean();
                }
                if (history && lifetimeNames.isEmpty()) {
                    throw fail("reason group '" + name + "' occludes the history, which only the streaming model "
                            + "has: move it to 'streaming.reasons'");
                }
                checkLifetimeList(g, at, name, history, lifetimeNames);
                String text = nonEmptyText(g, at + ".text");
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("\\{([a-z_0-9]+)}").matcher(text);
                while (m.find()) {
                    String ref = m.group(1);
                    if (!ref.equals("event_type") && !profileNames.contains(ref) && !lifetimeNames.contains(ref)) {
                        throw fail("reason group '" + name + "' text refers to {" + ref + "}, which is neither a "
                                + (lifetimeNames.isEmpty() ? "profile" : "profile or lifetime")
                                + " feature nor {event_type}");
                    }
                }
                if (idx.length == 0 && !seq.asBoolean() && !history) {
                    throw fail("reason group '" + name + "' occludes nothing: no profile features, not the sequence"
                            + (lifetimeNames.isEmpty() ? "" : ", not the history"));
                }
                out.add(new ReasonGroup(name, nonEmptyText(g, at + ".title"), idx, seq.asBoolean(), history, text));
            }
            return List.copyOf(out);
        }

        /**
         * A group may list the lifetime features it occludes (the exporter does, for readers); the contract only
         * occludes all of them at once, with the state, so the list must be all of them and the group a history one.
         */
        private void checkLifetimeList(JsonNode g, String at, String name, boolean history, List<String> lifetimeNames) {
            JsonNode list = g.get("lifetime_features");
            if (list == null || list.isNull()) {
                return;
            }
            JsonNode arr = array(g, at + ".lifetime_features");
            Set<String> listed = new HashSet<>();
            for (int f = 0; f < arr.size(); f++) {
                String feature = arr.get(f).asText();
                if (!lifetimeNames.contains(feature)) {
                    throw fail("reason group '" + name + "' names lifetime feature '" + arr.get(f)
                            + "', which is not in 'streaming.lifetime_features'");
                }
                listed.add(feature);
            }
            if (!history && !listed.isEmpty()) {
                throw fail("reason group '" + name + "' lists lifetime features but does not occlude the history: "
                        + "lifetime features are occluded all at once, with the state, by a group with "
                        + "\"history\": true");
            }
            if (history && !listed.isEmpty() && !listed.containsAll(lifetimeNames)) {
                throw fail("reason group '" + name + "' occludes the history, which sets every lifetime feature to "
                        + "its mean, but lists only " + arr);
            }
        }

        List<FeatureSpec> features(JsonNode root, String key, String what, Set<String> implemented) {
            JsonNode arr = array(root, key);
            if (arr.isEmpty()) throw fail("'" + key + "' is empty");
            List<FeatureSpec> out = new ArrayList<>();
            Set<String> seen = new HashSet<>();
            for (int i = 0; i < arr.size(); i++) {
                JsonNode f = arr.get(i);
                String at = key + "[" + i + "]";
                if (!f.isObject()) throw fail("'" + at + "' must be an object, got " + f);
                String name = nonEmptyText(f, at + ".name");
                if (!implemented.contains(name)) {
                    throw new IllegalArgumentException(what + " '" + name + "' in " + source
                            + " is not implemented by this job (it implements " + new java.util.TreeSet<>(implemented)
                            + ")");
                }
                if (!seen.add(name)) throw fail(what + " '" + name + "' appears twice in '" + key + "'");
                double mean = finite(f, at + ".mean");
                double std = finite(f, at + ".std");
                if (std <= 0) throw fail(what + " '" + name + "' has std " + std + ", which must be > 0");
                out.add(new FeatureSpec(name, mean, std));
            }
            return List.copyOf(out);
        }

        private List<String> shape(JsonNode t, String at) {
            JsonNode arr = array(t, at + ".shape");
            List<String> dims = new ArrayList<>();
            for (int i = 0; i < arr.size(); i++) {
                JsonNode d = arr.get(i);
                if (d.isIntegralNumber() && d.asLong() > 0) {
                    dims.add(Long.toString(d.asLong()));
                } else if (d.isTextual() && !d.asText().isEmpty() && !isNumeric(d.asText())) {
                    dims.add(d.asText());
                } else {
                    throw fail("'" + at + ".shape[" + i + "]' must be a positive size or a dimension name, got " + d);
                }
            }
            return List.copyOf(dims);
        }

        /**
         * The tensors of {@code key}: exactly the {@code expected} names (dtype, then the shape after a symbolic
         * batch dimension), each once, in any order.
         */
        List<TensorSpec> inputs(JsonNode parent, String key, Map<String, List<String>> expected, String impliedBy) {
            String kind = key.endsWith("graph_outputs") ? "graph output" : "input";
            JsonNode arr = array(parent, key);
            List<TensorSpec> out = new ArrayList<>();
            Set<String> seen = new HashSet<>();
            for (int i = 0; i < arr.size(); i++) {
                JsonNode t = arr.get(i);
                String at = key + "[" + i + "]";
                if (!t.isObject()) throw fail("'" + at + "' must be an object, got " + t);
                String name = nonEmptyText(t, at + ".name");
                List<String> want = expected.get(name);
                if (want == null) {
                    throw fail(kind + " '" + name + "' is not one of the " + kind + "s this job "
                            + (kind.equals("input") ? "produces " : "reads ") + List.copyOf(expected.keySet()));
                }
                if (!seen.add(name)) throw fail(kind + " '" + name + "' appears twice");
                TensorSpec ts = new TensorSpec(name, nonEmptyText(t, at + ".dtype"), shape(t, at));
                if (!ts.dtype().equals(want.get(0))) {
                    throw fail(kind + " '" + name + "' has dtype " + ts.dtype() + " but the contract says "
                            + want.get(0));
                }
                List<String> wantShape = want.subList(1, want.size());
                boolean ok = ts.rank() == wantShape.size() && ts.dim(0) == -1;
                for (int d = 1; ok && d < ts.rank(); d++) {
                    ok = ts.shape().get(d).equals(wantShape.get(d));
                }
                if (!ok) {
                    throw fail(kind + " '" + name + "' has shape " + ts.shapeString() + " but " + impliedBy + " "
                            + new TensorSpec(name, "", wantShape).shapeString());
                }
                out.add(ts);
            }
            for (String name : expected.keySet()) {
                if (!seen.contains(name)) throw fail(kind + " '" + name + "' is missing from '" + key + "'");
            }
            return List.copyOf(out);
        }

        Streaming streaming(JsonNode st, Map<String, List<String>> windowInputs, List<String> profileNames,
                            List<String> vocabulary, String windowedOnnx) {
            String onnx = fileName(st, "streaming.onnx_file");
            if (onnx.equals(windowedOnnx)) {
                throw fail("streaming.onnx_file is '" + onnx + "', the windowed model's onnx_file: the step graph "
                        + "needs a file of its own");
            }
            String version = nonEmptyText(st, "streaming.model_version");
            int z = positiveInt(st, "streaming.state_size");
            long resetGap = positiveLong(st, "streaming.reset_gap_ms");
            Set<String> known = new HashSet<>(LIFETIME_FEATURES);
            for (String t : vocabulary) {
                known.add(LIFE_COUNT_PREFIX + t);
            }
            List<FeatureSpec> lifetime = features(st, "streaming.lifetime_features", "lifetime feature", known);
            int f = lifetime.size();

            Map<String, List<String>> expected = new LinkedHashMap<>(windowInputs);
            expected.put(LIFETIME_INPUT, List.of("float32", "batch", Integer.toString(f)));
            expected.put(STATE_INPUT, List.of("float32", "batch", Integer.toString(z)));
            List<TensorSpec> inputs = inputs(st, "streaming.inputs", expected,
                    "the windowed inputs, streaming.lifetime_features and streaming.state_size imply");
            List<OutputSpec> outputs = outputs(st, "streaming.outputs");
            Map<String, List<String>> graphExpected = new LinkedHashMap<>();
            graphExpected.put(SCORES_OUTPUT, List.of("float32", "batch", Integer.toString(outputs.size())));
            graphExpected.put(STATE_OUTPUT, List.of("float32", "batch", Integer.toString(z)));
            List<TensorSpec> graphOutputs = inputs(st, "streaming.graph_outputs", graphExpected,
                    "streaming.outputs and streaming.state_size imply");

            List<ReasonGroup> groups = List.of();
            int top = 0;
            if (st.has("reasons") && !st.get("reasons").isNull()) {
                JsonNode reasons = object(st, "streaming.reasons");
                top = positiveInt(reasons, "streaming.reasons.top");
                groups = reasonGroups(reasons, "streaming.reasons", profileNames,
                        lifetime.stream().map(FeatureSpec::name).toList());
            }
            String golden = st.has("golden_file") && !st.get("golden_file").isNull()
                    ? fileName(st, "streaming.golden_file") : null;
            return new Streaming(onnx, version, z, resetGap, lifetime, inputs, outputs, graphOutputs, groups, top,
                    golden);
        }

        /** A file of the bundle: a plain name inside its directory. */
        String fileName(JsonNode parent, String path) {
            String name = nonEmptyText(parent, path);
            if (name.contains("/") || name.contains("\\") || name.equals("..") || name.equals(".")) {
                throw fail(path + " must be a file name inside the bundle directory, got '" + name + "'");
            }
            return name;
        }

        ScoreQuantiles quantiles(JsonNode output, String at, String name) {
            JsonNode q = output.get("score_quantiles");
            if (q == null || q.isNull()) {
                return null;
            }
            if (!q.isObject()) throw fail("'" + at + ".score_quantiles' must be an object, got " + q);
            JsonNode rates = array(q, at + ".score_quantiles.alert_rate");
            JsonNode thresholds = array(q, at + ".score_quantiles.threshold");
            if (rates.size() < 2 || rates.size() != thresholds.size()) {
                throw fail("output '" + name + "' has score_quantiles with " + rates.size() + " alert rates and "
                        + thresholds.size() + " thresholds; it needs two or more of each, as many of one as of the other");
            }
            List<Double> r = new ArrayList<>();
            List<Double> t = new ArrayList<>();
            for (int i = 0; i < rates.size(); i++) {
                double rate = finite(rates, at + ".score_quantiles.alert_rate[" + i + "]", i);
                double thr = finite(thresholds, at + ".score_quantiles.threshold[" + i + "]", i);
                if (!(rate > 0 && rate <= 1) || (i > 0 && rate <= r.get(i - 1))) {
                    throw fail("output '" + name + "' score_quantiles.alert_rate must increase strictly within (0, 1],"
                            + " got " + rates);
                }
                if (!(thr >= 0 && thr <= 1) || (i > 0 && thr > t.get(i - 1))) {
                    throw fail("output '" + name + "' score_quantiles.threshold must not increase and lie in [0, 1],"
                            + " got " + thresholds);
                }
                r.add(rate);
                t.add(thr);
            }
            return new ScoreQuantiles(List.copyOf(r), List.copyOf(t));
        }

        double finite(JsonNode array, String path, int index) {
            JsonNode n = array.get(index);
            if (n == null || !n.isNumber() || !Double.isFinite(n.asDouble())) {
                throw fail("'" + path + "' must be a finite number, got " + n);
            }
            return n.asDouble();
        }

        List<OutputSpec> outputs(JsonNode parent, String key) {
            JsonNode arr = array(parent, key);
            if (arr.isEmpty()) throw fail("'" + key + "' is empty: the model would score nothing");
            List<OutputSpec> out = new ArrayList<>();
            Set<String> seen = new HashSet<>();
            for (int i = 0; i < arr.size(); i++) {
                JsonNode t = arr.get(i);
                String at = key + "[" + i + "]";
                if (!t.isObject()) throw fail("'" + at + "' must be an object, got " + t);
                String name = nonEmptyText(t, at + ".name");
                if (!seen.add(name)) throw fail("output '" + name + "' appears twice");
                if (INPUT_NAMES.contains(name) || name.equals(LIFETIME_INPUT) || name.equals(STATE_INPUT)) {
                    throw fail("output '" + name + "' has the name of an input");
                }
                String dtype = nonEmptyText(t, at + ".dtype");
                if (!dtype.equals("float32")) {
                    throw fail("output '" + name + "' has dtype " + dtype + " but the contract says float32");
                }
                List<String> shape = shape(t, at);
                if (shape.size() != 1 || isNumeric(shape.get(0))) {
                    throw fail("output '" + name + "' has shape " + new TensorSpec(name, dtype, shape).shapeString()
                            + " but the contract says [batch]");
                }
                String alertType = nonEmptyText(t, at + ".alert_type");
                double threshold = finite(t, at + ".threshold");
                if (threshold < 0 || threshold > 1) {
                    throw fail("output '" + name + "' has threshold " + threshold + ", which is not in [0, 1]");
                }
                JsonNode rule = t.get("threshold_rule");
                // The exporter writes an object (rule, fallback, validation metrics); keep it whole, as compact JSON.
                String thresholdRule = rule == null || rule.isNull() ? "" : rule.isTextual() ? rule.asText()
                        : rule.toString();
                out.add(new OutputSpec(name, dtype, shape, alertType, threshold, thresholdRule,
                        quantiles(t, at, name)));
            }
            return List.copyOf(out);
        }
    }
}
