package dev.seqscore.alerts;

import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * Deterministic alert ids: the same user, triggering event and alert type always give the same id, so a replay or
 * a recovery that re-emits an alert is idempotent for a consumer that deduplicates by id.
 */
public final class AlertIds {
    private AlertIds() {}

    public static String of(String userId, long eventTime, String eventType, String itemId, String alertType) {
        // NUL cannot appear inside the fields' text from any of our sources, so the join is unambiguous.
        String key = String.join("\u0000", userId, Long.toString(eventTime), eventType, itemId, alertType);
        return UUID.nameUUIDFromBytes(key.getBytes(StandardCharsets.UTF_8)).toString();
    }
}
