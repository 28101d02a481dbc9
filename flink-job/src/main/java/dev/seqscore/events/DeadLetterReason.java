package dev.seqscore.events;

/** Why a record went to the dead-letter topic. The names are the values of {@code DeadLetter.reason}. */
public enum DeadLetterReason {
    /** The value bytes are not a ClickEvent in the configured input format. */
    UNDECODABLE,
    /**
     * A required field is missing or invalid (empty user_id, empty item_id, no or negative time, bad price), or an id
     * is longer than the job's bound (--max-id-bytes).
     */
    INVALID_FIELD,
    /** event_type is not in the model's vocabulary. */
    UNKNOWN_EVENT_TYPE,
    /** event_time is further in the future than the allowed clock skew. */
    FUTURE_TIMESTAMP,
    /** event_time is behind the user's watermark: its place in the sequence has already been scored. */
    LATE_EVENT
}
