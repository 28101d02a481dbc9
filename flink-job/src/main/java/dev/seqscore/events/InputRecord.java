package dev.seqscore.events;

import dev.seqscore.avro.ClickEvent;

/**
 * One record read from the input, decoded or not, with its origin. The source turns every Kafka record (or file
 * row) into exactly one of these, so that nothing is dropped before the pipeline has had a chance to dead-letter it.
 *
 * <p>A Flink POJO: flat public fields, so state and network serialization need no Kryo. Fields of the click are
 * nullable because a JSON producer may omit them; validation decides what is acceptable.
 */
public class InputRecord {
    public String userId;
    public String eventType;
    public String itemId;
    public String categoryId;
    /** Epoch milliseconds; null when the record could not be decoded or had no time. */
    public Long eventTime;
    public Double price;
    public String sessionId;

    /** Where the record came from: topic (or file), partition (0 for files), offset (line number for files). */
    public String sourceTopic;
    public int sourcePartition;
    public long sourceOffset;

    /** Why decoding failed; null when the bytes decoded into a click. */
    public String decodeError;
    /**
     * The {@link DeadLetterReason} name for a record that failed to decode, when it is not {@code UNDECODABLE}
     * (the schema-registry reasons); null otherwise.
     */
    public String decodeReason;
    /** A field that was present but of the wrong type (JSON input); null when every field parsed. */
    public String fieldError;
    /** The bytes as read, kept only while the record may still be dead-lettered with its evidence. */
    public byte[] raw;
    /**
     * True for a request to erase everything the job keeps for {@link #userId} (from the erasure topic) rather than a
     * click; {@link #eventTime} is then the request's Kafka timestamp.
     */
    public boolean erasure;

    public InputRecord() {}

    public static InputRecord decoded(ClickEvent e, String topic, int partition, long offset, byte[] raw) {
        InputRecord r = new InputRecord();
        r.userId = e.getUserId();
        r.eventType = e.getEventType();
        r.itemId = e.getItemId();
        r.categoryId = e.getCategoryId();
        r.eventTime = e.getEventTime() == null ? null : e.getEventTime().toEpochMilli();
        r.price = e.getPrice();
        r.sessionId = e.getSessionId();
        r.sourceTopic = topic;
        r.sourcePartition = partition;
        r.sourceOffset = offset;
        r.raw = raw;
        return r;
    }

    /** A request to erase the user's state; {@code userId} null when the value held none. */
    public static InputRecord erasureRequest(String userId, String error, String topic, int partition, long offset,
            long requestedAt, byte[] raw) {
        InputRecord r = new InputRecord();
        r.erasure = true;
        r.userId = userId;
        r.decodeError = error;
        r.eventTime = requestedAt;
        r.sourceTopic = topic;
        r.sourcePartition = partition;
        r.sourceOffset = offset;
        r.raw = raw;
        return r;
    }

    public static InputRecord undecodable(String error, String topic, int partition, long offset, byte[] raw) {
        InputRecord r = new InputRecord();
        r.decodeError = error;
        r.sourceTopic = topic;
        r.sourcePartition = partition;
        r.sourceOffset = offset;
        r.raw = raw;
        return r;
    }

    /** An undecodable record with a reason of its own, e.g. {@link DeadLetterReason#UNKNOWN_SCHEMA_ID}. */
    public static InputRecord undecodable(DeadLetterReason reason, String error, String topic, int partition,
            long offset, byte[] raw) {
        InputRecord r = undecodable(error, topic, partition, offset, raw);
        r.decodeReason = reason == DeadLetterReason.UNDECODABLE ? null : reason.name();
        return r;
    }

    /** Why this record cannot be decoded: UNDECODABLE unless decoding named another reason. */
    public DeadLetterReason decodeFailure() {
        return decodeReason == null ? DeadLetterReason.UNDECODABLE : DeadLetterReason.valueOf(decodeReason);
    }

    public boolean isDecoded() {
        return decodeError == null;
    }

    /** The click as the Avro contract spells it; only meaningful once validation has passed. */
    public ClickEvent toClickEvent() {
        return ClickEvent.newBuilder()
                .setUserId(userId)
                .setEventType(eventType)
                .setItemId(itemId)
                .setCategoryId(categoryId == null ? "" : categoryId)
                .setEventTime(java.time.Instant.ofEpochMilli(eventTime))
                .setPrice(price)
                .setSessionId(sessionId)
                .build();
    }

    @Override
    public String toString() {
        return "InputRecord{" + userId + ", " + eventType + ", item=" + itemId + ", cat=" + categoryId + ", t="
                + eventTime + ", from=" + sourceTopic + "/" + sourcePartition + "@" + sourceOffset
                + (decodeError == null ? "" : ", decodeError=" + decodeError) + "}";
    }
}
