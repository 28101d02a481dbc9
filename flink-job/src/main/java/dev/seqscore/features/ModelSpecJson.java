package dev.seqscore.features;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.exc.InputCoercionException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.type.LogicalType;
import java.util.Collection;
import java.util.List;

/**
 * {@code model-spec.json} as it is written (docs/feature-contract.md), bound to records and nothing more: types are
 * checked here, what the values mean by {@link ModelSpecValidator}. Every field is nullable, so that the validator can
 * name a missing key (JSON null is the same as absent); integers are longs, so that it can name one that is too
 * large.
 *
 * <p>Binding is strict where Jackson is lenient by default: {@code "5"} or {@code 5.5} is not an integer, {@code 7}
 * is not a string, {@code "yes"} is not a boolean. A value of the wrong type fails in the validator's words: the key
 * path, what it must be, and the value as written.
 */
final class ModelSpecJson {
    private ModelSpecJson() {}

    record Spec(Long formatVersion, String modelVersion, String onnxFile, Long opset, Window window, Time time,
                EventTypes eventTypes, Hash hash, List<Feature> sequenceFeatures, List<Feature> profileFeatures,
                List<Tensor> inputs, List<Output> outputs, Reasons reasons, Streaming streaming) {}

    record Window(Long maxEvents, Long horizonMs, Long sessionGapMs, Long recentMs) {}

    record Time(String zone, Long utcOffsetMs) {}

    record EventTypes(Long paddingId, List<String> vocabulary) {}

    record Hash(String name, Long itemBuckets, Long categoryBuckets) {}

    record Feature(String name, Double mean, Double std) {}

    /** {@code shape} entries are sizes or dimension names, so they stay JSON. */
    record Tensor(String name, String dtype, List<JsonNode> shape) {}

    /** {@code threshold_rule} is text or an object, kept as JSON. */
    record Output(String name, String dtype, List<JsonNode> shape, String alertType, Double threshold,
                  JsonNode thresholdRule, Quantiles scoreQuantiles) {}

    record Quantiles(List<Double> alertRate, List<Double> threshold) {}

    record Reasons(Long top, List<Group> groups) {}

    record Group(String name, String title, List<String> profileFeatures, Boolean sequence, Boolean history,
                 List<String> lifetimeFeatures, String text) {}

    record Streaming(String onnxFile, String modelVersion, Long stateSize, Long resetGapMs,
                     List<Feature> lifetimeFeatures, List<Tensor> inputs, List<Output> outputs,
                     List<Tensor> graphOutputs, Reasons reasons, String goldenFile) {}

    private static final ObjectMapper MAPPER = strictMapper();

    private static ObjectMapper strictMapper() {
        ObjectMapper m = JsonMapper.builder()
                .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
                .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
                .build();
        for (LogicalType t : List.of(LogicalType.Integer, LogicalType.Float, LogicalType.Boolean,
                LogicalType.Textual, LogicalType.POJO, LogicalType.Collection)) {
            for (CoercionInputShape shape : List.of(CoercionInputShape.String, CoercionInputShape.EmptyString,
                    CoercionInputShape.Integer, CoercionInputShape.Float, CoercionInputShape.Boolean)) {
                // Not coercions: a string is text, and an integer is a number (1 is a fine mean).
                boolean sameKind = (t == LogicalType.Textual && (shape == CoercionInputShape.String
                        || shape == CoercionInputShape.EmptyString))
                        || (t == LogicalType.Float && shape == CoercionInputShape.Integer);
                if (!sameKind) {
                    m.coercionConfigFor(t).setCoercion(shape, CoercionAction.Fail);
                }
            }
        }
        return m;
    }

    /** Parses {@code json} and binds it; {@code source} names where it came from in error messages. */
    static Spec read(String json, String source) {
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(source + " is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException(source + " must hold a JSON object");
        }
        try {
            return MAPPER.treeToValue(root, Spec.class);
        } catch (JsonMappingException e) {
            throw wrongType(e, root, source);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("invalid model spec " + source + ": " + e.getOriginalMessage(), e);
        }
    }

    /** The binding failure as the validator words its own: {@code 'window.max_events' must be an integer, got 5.5}. */
    private static IllegalArgumentException wrongType(JsonMappingException e, JsonNode root, String source) {
        StringBuilder path = new StringBuilder();
        JsonNode node = root;
        for (JsonMappingException.Reference ref : e.getPath()) {
            if (ref.getFieldName() != null) {
                path.append(path.isEmpty() ? "" : ".").append(ref.getFieldName());
                node = node == null ? null : node.get(ref.getFieldName());
            } else {
                path.append('[').append(ref.getIndex()).append(']');
                node = node == null ? null : node.get(ref.getIndex());
            }
        }
        String must = mustBe(targetType(e));
        String problem = must == null ? "'" + path + "': " + e.getOriginalMessage()
                : "'" + path + "' must be " + must + ", got " + node;
        return new IllegalArgumentException("invalid model spec " + source + ": " + problem, e);
    }

    private static Class<?> targetType(JsonMappingException e) {
        if (e instanceof MismatchedInputException m) {
            return m.getTargetType();
        }
        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            if (t instanceof InputCoercionException c) {
                return c.getTargetType();
            }
            if (t instanceof MismatchedInputException m) {
                return m.getTargetType();
            }
            if (!(t instanceof JacksonException)) {
                break;
            }
        }
        return null;
    }

    private static String mustBe(Class<?> type) {
        if (type == null) {
            return null;
        }
        if (type == String.class) {
            return "a non-empty string";
        }
        if (type == Long.class || type == long.class || type == Integer.class || type == int.class) {
            return "an integer";
        }
        if (type == Double.class || type == double.class) {
            return "a finite number";
        }
        if (type == Boolean.class || type == boolean.class) {
            return "true or false";
        }
        if (Collection.class.isAssignableFrom(type)) {
            return "an array";
        }
        return type.isRecord() ? "an object" : null;
    }

    /** A value as JSON, as the spec would have it, for messages. */
    static String json(Object value) {
        try {
            return MAPPER.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            return String.valueOf(value);
        }
    }
}
