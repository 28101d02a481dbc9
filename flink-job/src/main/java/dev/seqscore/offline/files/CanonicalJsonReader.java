package dev.seqscore.offline.files;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.DropKind;
import dev.seqscore.events.Rejection;

/**
 * Canonical JSONL: one object per line with the keys of {@link ClickEventJson}. Ids are strings or integers; ids and
 * the event type are trimmed like CSV cells; an empty session id is null. As for canonical CSV, the event type is
 * passed through for the job to check against the model's vocabulary.
 */
final class CanonicalJsonReader extends RowReader {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    ClickEvent parse(String line) throws Rejection {
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new Rejection(DropKind.BAD_JSON, "invalid JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw new Rejection(DropKind.BAD_JSON, "expected a JSON object, got "
                    + (node == null || node.isMissingNode() ? "nothing" : node.getNodeType()));
        }
        JsonNode t = node.get("event_time");
        rawTimestamp = t == null || t.isNull() ? null : t.asText();
        // Checked in the contract's order (user, type, item, category, time, price, session) so that a row with
        // several problems is counted under the same kind as in model-export.
        String userId = id(node, "user_id", DropKind.EMPTY_USER);
        String eventType = id(node, "event_type", DropKind.UNKNOWN_EVENT_TYPE);
        String itemId = id(node, "item_id", DropKind.EMPTY_ITEM);
        String categoryId = id(node, "category_id", null);
        if (t == null || t.isNull()) {
            throw new Rejection(DropKind.BAD_TIMESTAMP, "event_time is missing");
        }
        if (!t.isIntegralNumber() || !t.canConvertToLong()) {
            throw new Rejection(DropKind.BAD_TIMESTAMP, "event_time must be an integer of epoch milliseconds, got " + t);
        }
        JsonNode p = node.get("price");
        if (p != null && !p.isNull() && !p.isNumber()) {
            throw new Rejection(DropKind.BAD_PRICE, "price must be a number, got " + p);
        }
        String sessionId = id(node, "session_id", null);
        requireIds(userId, itemId);
        if (eventType.isEmpty()) {
            throw new Rejection(DropKind.UNKNOWN_EVENT_TYPE, "empty event_type");
        }
        return event(userId, eventType, itemId, categoryId == null ? "" : categoryId, t.longValue(),
                p == null || p.isNull() ? null : p.doubleValue(),
                sessionId == null ? null : CsvCells.emptyToNull(sessionId));
    }

    /** A trimmed id: text, or an integral number as its text; null when absent and {@code missing} is null. */
    private static String id(JsonNode n, String field, DropKind missing) throws Rejection {
        JsonNode v = n.get(field);
        if (v == null || v.isNull()) {
            if (missing != null) {
                throw new Rejection(missing, field + " is missing");
            }
            return null;
        }
        if (v.isTextual()) {
            return v.textValue().trim();
        }
        if (v.isIntegralNumber()) {
            return v.asText();
        }
        throw new Rejection(DropKind.BAD_FIELD, field + " must be a string, got " + v.getNodeType() + " " + v);
    }
}
