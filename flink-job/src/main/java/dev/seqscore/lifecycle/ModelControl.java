package dev.seqscore.lifecycle;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.Serializable;
import java.util.Locale;

/**
 * One record of the model control topic: publish a bundle as the serving model or as a shadow candidate, promote the
 * candidate, or withdraw it, for every event whose event time is at or after {@code effectiveAt}. The swap point is
 * an event time, part of the data, so that a recovery, a backtest and a fault-free run assign every event the same
 * model.
 *
 * <p>JSON: {@code {"request_id":"r1","action":"publish","role":"serve","uri":"s3://models/v2",
 * "effective_at":1511700000000}}; {@code promote} and {@code withdraw} take no role and no uri.
 */
public record ModelControl(String requestId, Action action, Role role, String uri, long effectiveAt)
        implements Serializable {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Longest request id kept: ids go into state and into every answer. */
    public static final int MAX_ID_CHARS = 128;

    public enum Action { PUBLISH, PROMOTE, WITHDRAW }

    public enum Role { SERVE, SHADOW }

    public ModelControl {
        if (requestId == null || requestId.isBlank() || requestId.length() > MAX_ID_CHARS) {
            throw new IllegalArgumentException("request_id must be a non-empty string of at most " + MAX_ID_CHARS
                    + " characters");
        }
        if (action == null) {
            throw new IllegalArgumentException("action must be one of publish, promote, withdraw");
        }
        if (action == Action.PUBLISH && (role == null || uri == null || uri.isBlank())) {
            throw new IllegalArgumentException("publish needs a role (serve or shadow) and the bundle's uri");
        }
        if (action != Action.PUBLISH && (role != null || uri != null)) {
            throw new IllegalArgumentException(name(action) + " takes no role and no uri: it applies to the shadow "
                    + "candidate");
        }
    }

    public static ModelControl publish(String requestId, Role role, String uri, long effectiveAt) {
        return new ModelControl(requestId, Action.PUBLISH, role, uri, effectiveAt);
    }

    public static ModelControl of(String requestId, Action action, long effectiveAt) {
        return new ModelControl(requestId, action, null, null, effectiveAt);
    }

    /**
     * Parses one control record.
     *
     * @throws IllegalArgumentException saying what is wrong, for a record the job must refuse
     */
    public static ModelControl parse(String text) {
        JsonNode n;
        try {
            n = JSON.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException("not JSON: " + e.getOriginalMessage());
        }
        if (n == null || !n.isObject()) {
            throw new IllegalArgumentException("not a JSON object");
        }
        JsonNode at = n.get("effective_at");
        if (at == null || !at.canConvertToExactIntegral() || !at.canConvertToLong()) {
            throw new IllegalArgumentException("effective_at must be an event time in epoch milliseconds");
        }
        Action action = enumOf(Action.class, text(n, "action"), "action", "publish, promote, withdraw");
        Role role = n.has("role") && !n.get("role").isNull()
                ? enumOf(Role.class, text(n, "role"), "role", "serve, shadow") : null;
        return new ModelControl(text(n, "request_id"), action, role, text(n, "uri"), at.asLong());
    }

    private static String text(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isTextual()) {
            throw new IllegalArgumentException(field + " must be a string");
        }
        return v.asText();
    }

    private static <E extends Enum<E>> E enumOf(Class<E> type, String value, String field, String allowed) {
        if (value == null) {
            throw new IllegalArgumentException(field + " is missing: one of " + allowed);
        }
        try {
            return Enum.valueOf(type, value.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(field + " '" + value + "' is not one of " + allowed);
        }
    }

    public String toJson() {
        ObjectNode n = JSON.createObjectNode();
        n.put("request_id", requestId);
        n.put("action", name(action));
        if (role != null) {
            n.put("role", name(role));
        }
        if (uri != null) {
            n.put("uri", uri);
        }
        n.put("effective_at", effectiveAt);
        return n.toString();
    }

    /** The lower-case name the JSON and the answers use. */
    public static String name(Enum<?> e) {
        return e == null ? null : e.name().toLowerCase(Locale.ROOT);
    }
}
