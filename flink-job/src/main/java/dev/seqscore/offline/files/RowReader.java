package dev.seqscore.offline.files;

import java.time.Instant;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickRules;
import dev.seqscore.events.DropKind;
import dev.seqscore.events.Rejection;

/**
 * Turns one non-blank data line of a file into its {@link FileRecord}: one subclass per format. A subclass parses
 * and throws {@link Rejection} for a row the cleaning contract drops; this base turns either outcome into the record.
 * Not thread-safe (it remembers the row's raw time cell); one per file.
 */
abstract class RowReader {
    /** The current row's time cell as written, once the subclass has found it; null before. */
    protected String rawTimestamp;

    final FileRecord read(long lineNumber, String line) {
        rawTimestamp = null;
        try {
            ClickEvent event = parse(line);
            return FileRecord.valid(lineNumber, line, rawTimestamp, event);
        } catch (Rejection r) {
            return FileRecord.rejected(lineNumber, line, rawTimestamp, r.kind(), r.getMessage());
        }
    }

    /** The line's event, or the rule it breaks. Sets {@link #rawTimestamp} as soon as the time cell is known. */
    abstract ClickEvent parse(String line) throws Rejection;

    static ClickEvent event(String userId, String type, String itemId, String categoryId, long millis, Double price,
                            String sessionId) throws Rejection {
        ClickRules.check(userId, itemId, millis, price);
        return ClickEvent.newBuilder()
                .setUserId(userId)
                .setEventType(type)
                .setItemId(itemId)
                .setCategoryId(categoryId)
                .setEventTime(Instant.ofEpochMilli(millis))
                .setPrice(price)
                .setSessionId(sessionId)
                .build();
    }

    static void requireIds(String userId, String itemId) throws Rejection {
        if (ClickRules.isBlank(userId)) {
            throw new Rejection(DropKind.EMPTY_USER, "empty user_id");
        }
        if (ClickRules.isBlank(itemId)) {
            throw new Rejection(DropKind.EMPTY_ITEM, "empty item_id");
        }
    }

    static Rejection unknownType(String rawType) {
        return new Rejection(DropKind.UNKNOWN_EVENT_TYPE, "unknown event type '" + rawType + "'");
    }
}
