package dev.seqscore.features;

import static dev.seqscore.features.ModelSpec.FORMAT_VERSION;
import static dev.seqscore.features.ModelSpec.HASH_NAME;
import static dev.seqscore.features.ModelSpec.INPUT_NAMES;
import static dev.seqscore.features.ModelSpec.LIFETIME_FEATURES;
import static dev.seqscore.features.ModelSpec.LIFETIME_INPUT;
import static dev.seqscore.features.ModelSpec.LIFE_COUNT_PREFIX;
import static dev.seqscore.features.ModelSpec.PROFILE_FEATURES;
import static dev.seqscore.features.ModelSpec.RECENT_PREFIX;
import static dev.seqscore.features.ModelSpec.SCORES_OUTPUT;
import static dev.seqscore.features.ModelSpec.SEQUENCE_FEATURES;
import static dev.seqscore.features.ModelSpec.STATE_INPUT;
import static dev.seqscore.features.ModelSpec.STATE_OUTPUT;
import static dev.seqscore.features.ModelSpec.TYPE_PREFIXES;
import static dev.seqscore.features.ModelSpec.isNumeric;

import com.fasterxml.jackson.databind.JsonNode;
import dev.seqscore.features.ModelSpec.FeatureSpec;
import dev.seqscore.features.ModelSpec.OutputSpec;
import dev.seqscore.features.ModelSpec.ReasonGroup;
import dev.seqscore.features.ModelSpec.ScoreQuantiles;
import dev.seqscore.features.ModelSpec.Streaming;
import dev.seqscore.features.ModelSpec.TensorSpec;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the values of a bound {@code model-spec.json} ({@link ModelSpecJson}) must be for the job to score with it:
 * present, in range, consistent with each other and with what the encoder implements. Checks run in the spec's
 * order and the first failure is thrown, naming the key path and the source file.
 */
final class ModelSpecValidator {
    private static final Pattern TEXT_REF = Pattern.compile("\\{([a-z_0-9]+)}");

    private final String source;

    private ModelSpecValidator(String source) {
        this.source = source;
    }

    /** The spec, if every value is valid. */
    static ModelSpec validate(ModelSpecJson.Spec json, String source) {
        return new ModelSpecValidator(source).spec(json);
    }

    private ModelSpec spec(ModelSpecJson.Spec root) {
        int format = positiveInt(root.formatVersion(), "format_version");
        if (format < 1 || format > FORMAT_VERSION) {
            throw fail("format_version is " + format + " but this job reads format_version 1, 2 or "
                    + FORMAT_VERSION);
        }
        String modelVersion = nonEmptyText(root.modelVersion(), "model_version");
        String onnxFile = nonEmptyText(root.onnxFile(), "onnx_file");
        if (onnxFile.contains("/") || onnxFile.contains("\\") || onnxFile.equals("..")) {
            throw fail("onnx_file must be a file name inside the bundle directory, got '" + onnxFile + "'");
        }
        int opset = root.opset() == null ? 0 : positiveInt(root.opset(), "opset");

        ModelSpecJson.Window window = required(root.window(), "window");
        int maxEvents = positiveInt(window.maxEvents(), "window.max_events");
        long horizonMs = positiveLong(window.horizonMs(), "window.horizon_ms");
        long sessionGapMs = positiveLong(window.sessionGapMs(), "window.session_gap_ms");
        long recentMs = window.recentMs() == null ? 0L : positiveLong(window.recentMs(), "window.recent_ms");

        ModelSpecJson.Time time = required(root.time(), "time");
        String zone = time.zone() == null ? "" : nonEmptyText(time.zone(), "time.zone");
        long utcOffsetMs = required(time.utcOffsetMs(), "time.utc_offset_ms");
        if (Math.abs(utcOffsetMs) >= 86_400_000L) {
            throw fail("time.utc_offset_ms must be within one day, got " + utcOffsetMs);
        }

        ModelSpecJson.EventTypes types = required(root.eventTypes(), "event_types");
        if (types.paddingId() != null && types.paddingId() != 0) {
            throw fail("event_types.padding_id must be 0, got " + types.paddingId());
        }
        List<String> vocab = required(types.vocabulary(), "event_types.vocabulary");
        if (vocab.isEmpty()) {
            throw fail("event_types.vocabulary is empty");
        }
        HashMap<String, Integer> typeIds = new HashMap<>();
        for (int i = 0; i < vocab.size(); i++) {
            String t = vocab.get(i);
            if (t == null || t.isEmpty()) {
                throw fail("event_types.vocabulary[" + i + "] must be a non-empty string, got "
                        + ModelSpecJson.json(t));
            }
            if (typeIds.putIfAbsent(t, i + 1) != null) {
                throw fail("event_types.vocabulary has the duplicate entry '" + t + "'");
            }
        }
        List<String> vocabulary = List.copyOf(vocab);

        ModelSpecJson.Hash hash = required(root.hash(), "hash");
        String hashName = nonEmptyText(hash.name(), "hash.name");
        if (!hashName.equals(HASH_NAME)) {
            throw fail("hash.name is '" + hashName + "' but this job implements only '" + HASH_NAME + "'");
        }
        int itemBuckets = positiveInt(hash.itemBuckets(), "hash.item_buckets");
        int categoryBuckets = positiveInt(hash.categoryBuckets(), "hash.category_buckets");

        List<FeatureSpec> sequenceFeatures = features(root.sequenceFeatures(), "sequence_features",
                "sequence feature", Set.copyOf(SEQUENCE_FEATURES));
        Set<String> profileKnown = new HashSet<>(PROFILE_FEATURES);
        for (String t : vocabulary) {
            for (String prefix : TYPE_PREFIXES) {
                profileKnown.add(prefix + t);
            }
        }
        List<FeatureSpec> profileFeatures = features(root.profileFeatures(), "profile_features", "profile feature",
                profileKnown);
        for (FeatureSpec f : profileFeatures) {
            if (f.name().startsWith(RECENT_PREFIX) && recentMs == 0) {
                throw fail("profile feature '" + f.name() + "' needs 'window.recent_ms', which is missing");
            }
        }
        List<String> profileNames = profileFeatures.stream().map(FeatureSpec::name).toList();

        Map<String, List<String>> windowInputs = windowInputShapes(maxEvents, sequenceFeatures.size(),
                profileFeatures.size());
        List<TensorSpec> inputs = tensors(root.inputs(), "inputs", windowInputs,
                "window.max_events, sequence_features and profile_features imply");
        List<OutputSpec> outputs = outputs(root.outputs(), "outputs");
        int reasonTop = 0;
        List<ReasonGroup> reasonGroups = List.of();
        if (root.reasons() != null) {
            reasonTop = positiveInt(root.reasons().top(), "reasons.top");
            reasonGroups = reasonGroups(root.reasons(), "reasons", profileNames, List.of());
        }

        boolean hasStreaming = root.streaming() != null;
        if (format == 3 && !hasStreaming) {
            throw fail("format_version 3 needs a 'streaming' section (the streaming model), which is missing");
        }
        if (format < 3 && hasStreaming) {
            throw fail("'streaming' needs format_version 3, but the spec says " + format);
        }
        Streaming streaming = hasStreaming
                ? streaming(root.streaming(), windowInputs, profileNames, vocabulary, onnxFile) : null;

        return new ModelSpec(source, modelVersion, onnxFile, opset, maxEvents, horizonMs, sessionGapMs, recentMs,
                format, zone, utcOffsetMs, vocabulary, typeIds, itemBuckets, categoryBuckets, sequenceFeatures,
                profileFeatures, inputs, outputs, reasonGroups, reasonTop, streaming);
    }

    /** dtype and shape (after the batch dimension) of each windowed input, in contract order. */
    private static Map<String, List<String>> windowInputShapes(int maxEvents, int sequenceFeatures,
                                                               int profileFeatures) {
        Map<String, List<String>> expected = new LinkedHashMap<>();
        String nn = Integer.toString(maxEvents);
        expected.put("event_type", List.of("int64", "batch", nn));
        expected.put("item_bucket", List.of("int64", "batch", nn));
        expected.put("category_bucket", List.of("int64", "batch", nn));
        expected.put("seq_numeric", List.of("float32", "batch", nn, Integer.toString(sequenceFeatures)));
        expected.put("mask", List.of("float32", "batch", nn));
        expected.put("profile", List.of("float32", "batch", Integer.toString(profileFeatures)));
        return expected;
    }

    private Streaming streaming(ModelSpecJson.Streaming st, Map<String, List<String>> windowInputs,
                                List<String> profileNames, List<String> vocabulary, String windowedOnnx) {
        String onnx = fileName(st.onnxFile(), "streaming.onnx_file");
        if (onnx.equals(windowedOnnx)) {
            throw fail("streaming.onnx_file is '" + onnx + "', the windowed model's onnx_file: the step graph "
                    + "needs a file of its own");
        }
        String version = nonEmptyText(st.modelVersion(), "streaming.model_version");
        int z = positiveInt(st.stateSize(), "streaming.state_size");
        long resetGap = positiveLong(st.resetGapMs(), "streaming.reset_gap_ms");
        Set<String> known = new HashSet<>(LIFETIME_FEATURES);
        for (String t : vocabulary) {
            known.add(LIFE_COUNT_PREFIX + t);
        }
        List<FeatureSpec> lifetime = features(st.lifetimeFeatures(), "streaming.lifetime_features",
                "lifetime feature", known);
        int f = lifetime.size();

        Map<String, List<String>> expected = new LinkedHashMap<>(windowInputs);
        expected.put(LIFETIME_INPUT, List.of("float32", "batch", Integer.toString(f)));
        expected.put(STATE_INPUT, List.of("float32", "batch", Integer.toString(z)));
        List<TensorSpec> inputs = tensors(st.inputs(), "streaming.inputs", expected,
                "the windowed inputs, streaming.lifetime_features and streaming.state_size imply");
        List<OutputSpec> outputs = outputs(st.outputs(), "streaming.outputs");
        Map<String, List<String>> graphExpected = new LinkedHashMap<>();
        graphExpected.put(SCORES_OUTPUT, List.of("float32", "batch", Integer.toString(outputs.size())));
        graphExpected.put(STATE_OUTPUT, List.of("float32", "batch", Integer.toString(z)));
        List<TensorSpec> graphOutputs = tensors(st.graphOutputs(), "streaming.graph_outputs", graphExpected,
                "streaming.outputs and streaming.state_size imply");

        List<ReasonGroup> groups = List.of();
        int top = 0;
        if (st.reasons() != null) {
            top = positiveInt(st.reasons().top(), "streaming.reasons.top");
            groups = reasonGroups(st.reasons(), "streaming.reasons", profileNames,
                    lifetime.stream().map(FeatureSpec::name).toList());
        }
        String golden = st.goldenFile() == null ? null : fileName(st.goldenFile(), "streaming.golden_file");
        return new Streaming(onnx, version, z, resetGap, lifetime, inputs, outputs, graphOutputs, groups, top,
                golden);
    }

    private List<FeatureSpec> features(List<ModelSpecJson.Feature> arr, String key, String what,
                                       Set<String> implemented) {
        required(arr, key);
        if (arr.isEmpty()) {
            throw fail("'" + key + "' is empty");
        }
        List<FeatureSpec> out = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < arr.size(); i++) {
            String at = key + "[" + i + "]";
            ModelSpecJson.Feature f = element(arr, i, at);
            String name = nonEmptyText(f.name(), at + ".name");
            if (!implemented.contains(name)) {
                throw new IllegalArgumentException(what + " '" + name + "' in " + source
                        + " is not implemented by this job (it implements " + new TreeSet<>(implemented) + ")");
            }
            if (!seen.add(name)) {
                throw fail(what + " '" + name + "' appears twice in '" + key + "'");
            }
            double mean = finite(f.mean(), at + ".mean");
            double std = finite(f.std(), at + ".std");
            if (std <= 0) {
                throw fail(what + " '" + name + "' has std " + std + ", which must be > 0");
            }
            out.add(new FeatureSpec(name, mean, std));
        }
        return List.copyOf(out);
    }

    /**
     * The tensors of {@code key}: exactly the {@code expected} names (dtype, then the shape after a symbolic batch
     * dimension), each once, in any order.
     */
    private List<TensorSpec> tensors(List<ModelSpecJson.Tensor> arr, String key, Map<String, List<String>> expected,
                                     String impliedBy) {
        String kind = key.endsWith("graph_outputs") ? "graph output" : "input";
        required(arr, key);
        List<TensorSpec> out = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < arr.size(); i++) {
            String at = key + "[" + i + "]";
            ModelSpecJson.Tensor t = element(arr, i, at);
            String name = nonEmptyText(t.name(), at + ".name");
            List<String> want = expected.get(name);
            if (want == null) {
                throw fail(kind + " '" + name + "' is not one of the " + kind + "s this job "
                        + (kind.equals("input") ? "produces " : "reads ") + List.copyOf(expected.keySet()));
            }
            if (!seen.add(name)) {
                throw fail(kind + " '" + name + "' appears twice");
            }
            TensorSpec ts = new TensorSpec(name, nonEmptyText(t.dtype(), at + ".dtype"), shape(t.shape(), at));
            if (!ts.dtype().equals(want.get(0))) {
                throw fail(kind + " '" + name + "' has dtype " + ts.dtype() + " but the contract says " + want.get(0));
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
            if (!seen.contains(name)) {
                throw fail(kind + " '" + name + "' is missing from '" + key + "'");
            }
        }
        return List.copyOf(out);
    }

    private List<String> shape(List<JsonNode> arr, String at) {
        required(arr, at + ".shape");
        List<String> dims = new ArrayList<>();
        for (int i = 0; i < arr.size(); i++) {
            JsonNode d = arr.get(i);
            if (d != null && d.isIntegralNumber() && d.asLong() > 0) {
                dims.add(Long.toString(d.asLong()));
            } else if (d != null && d.isTextual() && !d.asText().isEmpty() && !isNumeric(d.asText())) {
                dims.add(d.asText());
            } else {
                throw fail("'" + at + ".shape[" + i + "]' must be a positive size or a dimension name, got "
                        + (d == null ? "null" : d));
            }
        }
        return List.copyOf(dims);
    }

    private List<OutputSpec> outputs(List<ModelSpecJson.Output> arr, String key) {
        required(arr, key);
        if (arr.isEmpty()) {
            throw fail("'" + key + "' is empty: the model would score nothing");
        }
        List<OutputSpec> out = new ArrayList<>();
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < arr.size(); i++) {
            String at = key + "[" + i + "]";
            ModelSpecJson.Output t = element(arr, i, at);
            String name = nonEmptyText(t.name(), at + ".name");
            if (!seen.add(name)) {
                throw fail("output '" + name + "' appears twice");
            }
            if (INPUT_NAMES.contains(name) || name.equals(LIFETIME_INPUT) || name.equals(STATE_INPUT)) {
                throw fail("output '" + name + "' has the name of an input");
            }
            String dtype = nonEmptyText(t.dtype(), at + ".dtype");
            if (!dtype.equals("float32")) {
                throw fail("output '" + name + "' has dtype " + dtype + " but the contract says float32");
            }
            List<String> shape = shape(t.shape(), at);
            if (shape.size() != 1 || isNumeric(shape.get(0))) {
                throw fail("output '" + name + "' has shape " + new TensorSpec(name, dtype, shape).shapeString()
                        + " but the contract says [batch]");
            }
            String alertType = nonEmptyText(t.alertType(), at + ".alert_type");
            double threshold = finite(t.threshold(), at + ".threshold");
            if (threshold < 0 || threshold > 1) {
                throw fail("output '" + name + "' has threshold " + threshold + ", which is not in [0, 1]");
            }
            JsonNode rule = t.thresholdRule();
            // The exporter writes an object (rule, fallback, validation metrics); keep it whole, as compact JSON.
            String thresholdRule = rule == null || rule.isNull() ? "" : rule.isTextual() ? rule.asText()
                    : rule.toString();
            out.add(new OutputSpec(name, dtype, shape, alertType, threshold, thresholdRule,
                    quantiles(t.scoreQuantiles(), at, name)));
        }
        return List.copyOf(out);
    }

    private ScoreQuantiles quantiles(ModelSpecJson.Quantiles q, String at, String name) {
        if (q == null) {
            return null;
        }
        List<Double> rates = required(q.alertRate(), at + ".score_quantiles.alert_rate");
        List<Double> thresholds = required(q.threshold(), at + ".score_quantiles.threshold");
        if (rates.size() < 2 || rates.size() != thresholds.size()) {
            throw fail("output '" + name + "' has score_quantiles with " + rates.size() + " alert rates and "
                    + thresholds.size() + " thresholds; it needs two or more of each, as many of one as of the other");
        }
        List<Double> r = new ArrayList<>();
        List<Double> t = new ArrayList<>();
        for (int i = 0; i < rates.size(); i++) {
            double rate = finiteElement(rates.get(i), at + ".score_quantiles.alert_rate[" + i + "]");
            double thr = finiteElement(thresholds.get(i), at + ".score_quantiles.threshold[" + i + "]");
            if (!(rate > 0 && rate <= 1) || (i > 0 && rate <= r.get(i - 1))) {
                throw fail("output '" + name + "' score_quantiles.alert_rate must increase strictly within (0, 1],"
                        + " got " + ModelSpecJson.json(rates));
            }
            if (!(thr >= 0 && thr <= 1) || (i > 0 && thr > t.get(i - 1))) {
                throw fail("output '" + name + "' score_quantiles.threshold must not increase and lie in [0, 1],"
                        + " got " + ModelSpecJson.json(thresholds));
            }
            r.add(rate);
            t.add(thr);
        }
        return new ScoreQuantiles(List.copyOf(r), List.copyOf(t));
    }

    /**
     * {@code key.groups}; {@code lifetimeNames} is empty for the windowed model, whose groups cannot occlude a
     * history.
     */
    private List<ReasonGroup> reasonGroups(ModelSpecJson.Reasons reasons, String key, List<String> profileNames,
                                           List<String> lifetimeNames) {
        List<ModelSpecJson.Group> arr = required(reasons.groups(), key + ".groups");
        List<ReasonGroup> out = new ArrayList<>();
        Set<String> names = new HashSet<>();
        for (int i = 0; i < arr.size(); i++) {
            String at = key + ".groups[" + i + "]";
            ModelSpecJson.Group g = element(arr, i, at);
            String name = nonEmptyText(g.name(), at + ".name");
            if (!names.add(name)) {
                throw fail("reason group '" + name + "' appears twice");
            }
            List<String> feats = required(g.profileFeatures(), at + ".profile_features");
            int[] idx = new int[feats.size()];
            for (int f = 0; f < feats.size(); f++) {
                idx[f] = profileNames.indexOf(feats.get(f));
                if (idx[f] < 0) {
                    throw fail("reason group '" + name + "' names profile feature '" + feats.get(f)
                            + "', which is not in 'profile_features'");
                }
            }
            boolean sequence = required(g.sequence(), at + ".sequence");
            boolean history = g.history() != null && g.history();
            if (history && lifetimeNames.isEmpty()) {
                throw fail("reason group '" + name + "' occludes the history, which only the streaming model "
                        + "has: move it to 'streaming.reasons'");
            }
            checkLifetimeList(g.lifetimeFeatures(), name, history, lifetimeNames);
            String text = nonEmptyText(g.text(), at + ".text");
            Matcher m = TEXT_REF.matcher(text);
            while (m.find()) {
                String ref = m.group(1);
                if (!ref.equals("event_type") && !profileNames.contains(ref) && !lifetimeNames.contains(ref)) {
                    throw fail("reason group '" + name + "' text refers to {" + ref + "}, which is neither a "
                            + (lifetimeNames.isEmpty() ? "profile" : "profile or lifetime")
                            + " feature nor {event_type}");
                }
            }
            if (idx.length == 0 && !sequence && !history) {
                throw fail("reason group '" + name + "' occludes nothing: no profile features, not the sequence"
                        + (lifetimeNames.isEmpty() ? "" : ", not the history"));
            }
            out.add(new ReasonGroup(name, nonEmptyText(g.title(), at + ".title"), idx, sequence, history, text));
        }
        return List.copyOf(out);
    }

    /**
     * A group may list the lifetime features it occludes (the exporter does, for readers); the contract only
     * occludes all of them at once, with the state, so the list must be all of them and the group a history one.
     */
    private void checkLifetimeList(List<String> list, String name, boolean history, List<String> lifetimeNames) {
        if (list == null) {
            return;
        }
        Set<String> listed = new HashSet<>();
        for (String feature : list) {
            if (!lifetimeNames.contains(feature)) {
                throw fail("reason group '" + name + "' names lifetime feature '" + ModelSpecJson.json(feature)
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
                    + "its mean, but lists only " + ModelSpecJson.json(list));
        }
    }

    // ---------------------------------------------------------------- single values

    private IllegalArgumentException fail(String problem) {
        return new IllegalArgumentException("invalid model spec " + source + ": " + problem);
    }

    private <T> T required(T value, String path) {
        if (value == null) {
            throw fail("missing key '" + path + "'");
        }
        return value;
    }

    /** An element of an array of objects; JSON null is not one. */
    private <T> T element(List<T> arr, int i, String at) {
        T t = arr.get(i);
        if (t == null) {
            throw fail("'" + at + "' must be an object, got null");
        }
        return t;
    }

    private String nonEmptyText(String value, String path) {
        if (required(value, path).isEmpty()) {
            throw fail("'" + path + "' must be a non-empty string, got \"\"");
        }
        return value;
    }

    /** A file of the bundle: a plain name inside its directory. */
    private String fileName(String value, String path) {
        String name = nonEmptyText(value, path);
        if (name.contains("/") || name.contains("\\") || name.equals("..") || name.equals(".")) {
            throw fail(path + " must be a file name inside the bundle directory, got '" + name + "'");
        }
        return name;
    }

    private long positiveLong(Long value, String path) {
        long v = required(value, path);
        if (v <= 0) {
            throw fail("'" + path + "' must be positive, got " + v);
        }
        return v;
    }

    private int positiveInt(Long value, String path) {
        long v = positiveLong(value, path);
        if (v > Integer.MAX_VALUE) {
            throw fail("'" + path + "' is too large: " + v);
        }
        return (int) v;
    }

    private double finite(Double value, String path) {
        return finiteElement(required(value, path), path);
    }

    /** A number in an array, where null is not missing but not a number. */
    private double finiteElement(Double value, String path) {
        if (value == null || !Double.isFinite(value)) {
            throw fail("'" + path + "' must be a finite number, got " + ModelSpecJson.json(value));
        }
        return value;
    }
}
