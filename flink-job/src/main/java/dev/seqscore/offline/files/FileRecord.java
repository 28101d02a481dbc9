package dev.seqscore.offline.files;

import java.util.Objects;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.DropKind;

/**
 * One line of an input data file as read by {@link EventFileReader}: where it was, what it said, and either the
 * {@link ClickEvent} it maps to or why it maps to none. Every data line yields exactly one record, so that a replay or
 * backtest can account for every row of its input.
 *
 * @param lineNumber   1-based physical line number in the file (the header, if any, is line 1)
 * @param rawLine      the line as read, without its line terminator
 * @param rawTimestamp the time cell exactly as written in the file (seconds for Taobao, the date string for REES46,
 *                     epoch milliseconds for canonical), or null when the line has no such cell; backtests echo it
 * @param event        the mapped event, or null when rejected
 * @param rejection    why the line was rejected, e.g. {@code "unknown event type 'zzz'"}, or null when valid
 * @param rejectionKind the {@link DropKind#key()} of the rejection, for counting ({@code "unknown_event_type"}), or
 *                      null
 */
public record FileRecord(
        long lineNumber,
        String rawLine,
        String rawTimestamp,
        ClickEvent event,
        String rejection,
        String rejectionKind) {

    public FileRecord {
        Objects.requireNonNull(rawLine, "rawLine");
        if ((event == null) == (rejection == null)) {
            throw new IllegalArgumentException("exactly one of event and rejection must be set (line " + lineNumber + ")");
        }
        if ((rejection == null) != (rejectionKind == null)) {
            throw new IllegalArgumentException("a rejection needs a kind and only a rejection has one");
        }
    }

    static FileRecord valid(long lineNumber, String rawLine, String rawTimestamp, ClickEvent event) {
        return new FileRecord(lineNumber, rawLine, rawTimestamp, Objects.requireNonNull(event), null, null);
    }

    static FileRecord rejected(long lineNumber, String rawLine, String rawTimestamp, DropKind kind, String reason) {
        return new FileRecord(lineNumber, rawLine, rawTimestamp, null, reason, kind.key());
    }

    /** True when the line mapped to an event. */
    public boolean isValid() {
        return event != null;
    }
}
