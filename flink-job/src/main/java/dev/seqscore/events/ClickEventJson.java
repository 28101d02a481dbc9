package dev.seqscore.events;

import java.io.IOException;
import java.time.Instant;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.seqscore.avro.ClickEvent;

/**
 * A {@link ClickEvent} as one flat JSON object with the canonical keys of {@code docs/feature-contract.md}
 * ({@code user_id, event_type, item_id, category_id, event_time, price, session_id}; {@code event_time} in epoch
 * milliseconds). It is the JSON input format of the job, the canonical JSONL file format, and the readable form of
 * events in dead letters and debug output.
 *
 * <p>Decoding checks types and presence only; whether a value is acceptable (non-empty ids, a known event type) is
 * the job's validation, so that a bad but well-formed event can still be decoded and dead-lettered with its content.
 */
public final class ClickEventJson {

    /** A JSON text that is not a ClickEvent; {@link #field()} names the offending key (null if the JSON is broken). */
    public static final class InvalidClickEventException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;
        private final String field;

        InvalidClickEventException(String field, String message, Throwable cause) {
            super(message, cause);
            this.field = field;
        }

        /** The key that was missing or of the wrong type; null when the text was not a JSON object at all. */
        public String field() {
            return field;
        }
    }

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private ClickEventJson() {}

    /** The event as a JSON object; absent optional values are written as JSON null so every key is always present. */
    public static ObjectNode toJson(ClickEvent e) {
        ObjectNode n = MAPPER.createObjectNode();
        n.put("user_id", e.getUserId());
        n.put("event_type", e.getEventType());
        n.put("item_id", e.getItemId());
        n.put("category_id", e.getCategoryId());
        if (e.getEventTime() == null) {
            n.putNull("event_time");
        } else {
            n.put("event_time", e.getEventTime().toEpochMilli());
        }
        if (e.getPrice() == null) {
            n.putNull("price");
        } else {
            n.put("price", e.getPrice());
        }
        n.put("session_id", e.getSessionId());
        return n;
    }

    /** One line of JSON, without a trailing newline. */
    public static String encode(ClickEvent e) {
        try {
            return MAPPER.writeValueAsString(toJson(e));
        } catch (JsonProcessingException ex) {
            throw new IllegalStateException("cannot serialise " + e, ex);
        }
    }

    /** @throws InvalidClickEventException naming the field when the text is not a ClickEvent */
    public static ClickEvent decode(String json) {
        try {
            return fromJson(MAPPER.readTree(json));
        } catch (JsonProcessingException e) {
            throw new InvalidClickEventException(null, "not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** @throws InvalidClickEventException naming the field when the bytes are not a UTF-8 JSON ClickEvent */
    public static ClickEvent decode(byte[] utf8Json) {
        try {
            return fromJson(MAPPER.readTree(utf8Json));
        } catch (JsonProcessingException e) {
            throw new InvalidClickEventException(null, "not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new InvalidClickEventException(null, "not valid JSON: " + e.getMessage(), e);
        }
    }

    /**
     * Maps a parsed JSON object. Required: {@code user_id, event_type, item_id} (strings; integral numbers are taken
     * as their decimal text, since source ids are often numeric) and {@code event_time} (integral epoch ms).
     * Optional: {@code category_id} (default ""), {@code price} (number), {@code session_id}. Unknown keys are
     * ignored so that producers may add fields ahead of the job.
     */
    public static ClickEvent fromJson(JsonNode n) {
        if (n == null || !n.isObject()) {
            throw new InvalidClickEventException(null,
                    "expected a JSON object, got " + (n == null || n.isMissingNode() ? "nothing" : n.getNodeType()),
                    null);
        }
        String categoryId = optionalId(n, "category_id");
        return ClickEvent.newBuilder()
                .setUserId(requiredId(n, "user_id"))
                .setEventType(requiredId(n, "event_type"))
                .setItemId(requiredId(n, "item_id"))
                .setCategoryId(categoryId == null ? "" : categoryId)
                .setEventTime(Instant.ofEpochMilli(eventTime(n)))
                .setPrice(price(n))
                .setSessionId(optionalId(n, "session_id"))
                .build();
    }

    private static String requiredId(JsonNode n, String field) {
        String v = optionalId(n, field);
        if (v == null) {
            throw new InvalidClickEventException(field, field + " is missing", null);
        }
        return v;
    }

    /** An id field: text, or an integral number as text (producers often send numeric ids); null when absent. */
    static String optionalId(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (v.isTextual()) {
            return v.textValue();
        }
        if (v.isIntegralNumber()) {
            return v.asText();
        }
        throw new InvalidClickEventException(field, field + " must be a string, got " + v.getNodeType() + " " + v,
                null);
    }

    private static long eventTime(JsonNode n) {
        JsonNode v = n.get("event_time");
        if (v == null || v.isNull()) {
            throw new InvalidClickEventException("event_time", "event_time is missing", null);
        }
        if (!v.isIntegralNumber() || !v.canConvertToLong()) {
            throw new InvalidClickEventException("event_time",
                    "event_time must be an integer of epoch milliseconds, got " + v, null);
        }
        return v.longValue();
    }

    private static Double price(JsonNode n) {
        JsonNode v = n.get("price");
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isNumber()) {
            throw new InvalidClickEventException("price", "price must be a number, got " + v, null);
        }
        return v.doubleValue();
    }
}
