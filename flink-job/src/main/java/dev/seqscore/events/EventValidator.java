package dev.seqscore.events;

import java.io.Serializable;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Decides whether an input record can be scored, and if not, why. Pure and serializable: the watermark assigner
 * uses it too, so that a record the pipeline will reject can never move event time forward. The field rules are
 * {@link ClickRules}, shared with the file readers; the vocabulary and the clock are the job's own checks.
 */
public final class EventValidator implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Wall clock, injectable so that the future-timestamp rule is testable without waiting. */
    public interface Clock extends Serializable {
        long nowMillis();
    }

    private final Set<String> vocabulary;
    private final long maxFutureSkewMs;
    private final Clock clock;

    public EventValidator(List<String> vocabulary, long maxFutureSkewMs, Clock clock) {
        this.vocabulary = new HashSet<>(vocabulary);
        this.maxFutureSkewMs = maxFutureSkewMs;
        this.clock = clock;
    }

    public EventValidator(List<String> vocabulary, long maxFutureSkewMs) {
        this(vocabulary, maxFutureSkewMs, System::currentTimeMillis);
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
        if (r.fieldError != null) {
            return new Verdict(DeadLetterReason.INVALID_FIELD, r.fieldError);
        }
        try {
            ClickRules.check(r.userId, r.itemId, r.eventTime, r.price);
        } catch (Rejection e) {
            return new Verdict(DeadLetterReason.INVALID_FIELD, e.getMessage());
        }
        if (r.eventType == null || !vocabulary.contains(r.eventType)) {
            return new Verdict(
                    DeadLetterReason.UNKNOWN_EVENT_TYPE,
                    "event_type '" + r.eventType + "' is not in the model vocabulary " + vocabulary);
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
}
