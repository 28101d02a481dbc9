package dev.seqscore.events;

import java.io.Serializable;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Decides whether an input record can be scored, and if not, why. Pure and serializable: the watermark assigner
 * uses it too, so that a record the pipeline will reject can never move event time forward. The field rules are
 * {@link ClickRules}, shared with the file readers; the length of ids, the vocabulary and the clock are the job's own
 * checks.
 *
 * <p>Ids are bounded because they become state keys and Kafka record keys downstream: a click whose user id is
 * 100,000 characters long would otherwise be a 100 KB key in every checkpoint and every output record. The bound is
 * a job rule, not a cleaning rule: the file readers (and training) keep such rows, and the backtest dead-letters
 * them here, as the job does.
 */
public final class EventValidator implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Wall clock, injectable so that the future-timestamp rule is testable without waiting. */
    public interface Clock extends Serializable {
        long nowMillis();
    }

    /** How much of an over-long id a dead letter's detail quotes; the raw bytes carry the rest. */
    static final int QUOTED_ID_CHARS = 64;

    private final Set<String> vocabulary;
    private final long maxFutureSkewMs;
    private final int maxIdBytes;
    private final Clock clock;

    /**
     * @param maxIdBytes the longest user_id, item_id, category_id and session_id accepted, in UTF-8 bytes
     */
    public EventValidator(List<String> vocabulary, long maxFutureSkewMs, int maxIdBytes, Clock clock) {
        if (maxIdBytes < 1) {
            throw new IllegalArgumentException("maxIdBytes must be positive, got " + maxIdBytes);
        }
        this.vocabulary = new HashSet<>(vocabulary);
        this.maxFutureSkewMs = maxFutureSkewMs;
        this.maxIdBytes = maxIdBytes;
        this.clock = clock;
    }

    public EventValidator(List<String> vocabulary, long maxFutureSkewMs, int maxIdBytes) {
        this(vocabulary, maxFutureSkewMs, maxIdBytes, System::currentTimeMillis);
    }

    /** The verdict on one record; {@code reason == null} means it may be scored. */
    public static final class Verdict {
        public final DeadLetterReason reason;
        public final String detail;

        private Verdict(DeadLetterReason reason, String detail) {
            this.reason = reason;
            this.detail = detail;
        }

        public boolean ok() {
            return reason == null;
        }
    }

    private static final Verdict OK = new Verdict(null, null);

    public Verdict check(InputRecord r) {
        if (!r.isDecoded()) {
            return new Verdict(r.decodeFailure(), r.decodeError);
        }
        if (r.erasure) {
            // A request names a user and nothing else; the user id obeys the same bound as a click's.
            String tooLong = tooLong("user_id", r.userId);
            return tooLong == null ? OK : new Verdict(DeadLetterReason.INVALID_FIELD, tooLong);
        }
        if (r.fieldError != null) {
            return new Verdict(DeadLetterReason.INVALID_FIELD, r.fieldError);
        }
        try {
            ClickRules.check(r.userId, r.itemId, r.eventTime, r.price);
        } catch (Rejection e) {
            return new Verdict(DeadLetterReason.INVALID_FIELD, e.getMessage());
        }
        String tooLong = tooLong("user_id", r.userId);
        if (tooLong == null) {
            tooLong = tooLong("item_id", r.itemId);
        }
        if (tooLong == null) {
            tooLong = tooLong("category_id", r.categoryId);
        }
        if (tooLong == null) {
            tooLong = tooLong("session_id", r.sessionId);
        }
        if (tooLong != null) {
            return new Verdict(DeadLetterReason.INVALID_FIELD, tooLong);
        }
        if (r.eventType == null || !vocabulary.contains(r.eventType)) {
            return new Verdict(
                    DeadLetterReason.UNKNOWN_EVENT_TYPE,
                    "event_type '" + (r.eventType == null ? null : quote(r.eventType))
                            + "' is not in the model vocabulary " + vocabulary);
        }
        long now = clock.nowMillis();
        if (r.eventTime > now + maxFutureSkewMs) {
            return new Verdict(
                    DeadLetterReason.FUTURE_TIMESTAMP,
                    "event_time " + r.eventTime + " is " + (r.eventTime - now) + " ms ahead of the clock (allowed: "
                            + maxFutureSkewMs + " ms)");
        }
        return OK;
    }

    /**
     * Null if the id is absent or within the bound, else a detail naming the field, its length and the bound, and
     * quoting no more than the id's first {@value #QUOTED_ID_CHARS} characters. Runs twice per record (timestamp
     * assigner and validation), so the common case is decided on the string's length alone, without counting: a
     * UTF-16 char takes at most 3 bytes in UTF-8, so no id of at most {@code maxIdBytes / 3} chars can exceed the
     * bound.
     */
    private String tooLong(String field, String id) {
        if (id == null || id.length() <= maxIdBytes / 3) {
            return null;
        }
        long bytes = Utf8Length.of(id);
        if (bytes <= maxIdBytes) {
            return null;
        }
        return field + " is " + bytes + " bytes long in UTF-8, more than the " + maxIdBytes
                + " allowed (--max-id-bytes): '" + quote(id) + "'";
    }

    private static String quote(String id) {
        if (id.length() <= QUOTED_ID_CHARS) {
            return id;
        }
        int end = QUOTED_ID_CHARS;
        if (Character.isHighSurrogate(id.charAt(end - 1))) {
            end--; // never half a character
        }
        return id.substring(0, end) + "...";
    }
}
