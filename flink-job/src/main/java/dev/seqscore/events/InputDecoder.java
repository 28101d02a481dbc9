package dev.seqscore.events;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.avro.ClickEvent;
import java.io.Serializable;

/**
 * Turns the value bytes of one input record into an {@link InputRecord}, never throwing: bytes that cannot be
 * decoded become an undecodable record that the pipeline dead-letters with its origin.
 */
public final class InputDecoder implements Serializable {
    private static final long serialVersionUID = 1L;
    // Content after the object (a second click in the same value) must not be dropped silently, as for Avro.
    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private final InputFormat format;

    public InputDecoder(InputFormat format) {
        this.format = format;
    }

    public InputRecord decode(byte[] value, String topic, int partition, long offset) {
        if (value == null) {
            return InputRecord.undecodable("null value (tombstone)", topic, partition, offset, null);
        }
        try {
            return format == InputFormat.AVRO
                    ? decodeAvro(value, topic, partition, offset)
                    : decodeJson(value, topic, partition, offset);
        } catch (Exception | StackOverflowError e) {
            // Arbitrary bytes make Avro throw anything from IOException to ArrayIndexOutOfBounds.
            return InputRecord.undecodable(
                    format.name().toLowerCase() + ": " + e.getClass().getSimpleName() + ": " + e.getMessage(),
                    topic, partition, offset, value);
        }
    }

    private static InputRecord decodeAvro(byte[] value, String topic, int partition, long offset) throws Exception {
        ClickEvent e = ClickEventAvro.decode(value);
        return InputRecord.decoded(e, topic, partition, offset, value);
    }

    private static InputRecord decodeJson(byte[] value, String topic, int partition, long offset) throws Exception {
        JsonNode n = JSON.readTree(value);
        if (n == null || !n.isObject()) {
            return InputRecord.undecodable("json: not a JSON object", topic, partition, offset, value);
        }
        InputRecord r = new InputRecord();
        r.sourceTopic = topic;
        r.sourcePartition = partition;
        r.sourceOffset = offset;
        r.raw = value;
        r.userId = text(n, "user_id", r);
        r.eventType = text(n, "event_type", r);
        r.itemId = text(n, "item_id", r);
        r.categoryId = text(n, "category_id", r);
        r.sessionId = text(n, "session_id", r);
        JsonNode t = n.get("event_time");
        if (t != null && !t.isNull()) {
            if (t.isIntegralNumber() && t.canConvertToLong()) {
                r.eventTime = t.longValue();
            } else {
                r.fieldError = "event_time must be an integer of epoch milliseconds, got " + t;
            }
        }
        JsonNode p = n.get("price");
        if (p != null && !p.isNull()) {
            if (p.isNumber()) {
                r.price = p.doubleValue();
            } else {
                r.fieldError = "price must be a number, got " + p;
            }
        }
        return r;
    }

    /** The same id rule as {@link ClickEventJson}, but a bad field is recorded for validation, not thrown. */
    private static String text(JsonNode n, String field, InputRecord r) {
        try {
            return ClickEventJson.optionalId(n, field);
        } catch (ClickEventJson.InvalidClickEventException e) {
            r.fieldError = e.getMessage();
            return null;
        }
    }
}
