package dev.seqscore.testing;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.events.InputRecord;
import java.time.Duration;
import java.time.Instant;

/**
 * Test data for the pipeline: named instants, so that a test reads as a timeline rather than as arithmetic on epoch
 * milliseconds, and a fluent builder for clicks ({@link InputRecord} as the source emits it, or {@link ClickEvent}).
 *
 * <p>The default click is valid against the model vocabulary ({@code view} is in every spec we ship), so a test
 * only spells out what it is about.
 */
public final class Clicks {
    private Clicks() {}

    /** The start of every test timeline; a night in the Taobao data set, so nothing looks like a wall-clock time. */
    public static final Instant T0 = Instant.parse("2017-11-26T01:00:00Z");
    public static final Instant T0_PLUS_1S = T0.plusSeconds(1);
    public static final Instant T0_PLUS_2S = T0.plusSeconds(2);
    public static final Instant T0_PLUS_3S = T0.plusSeconds(3);
    public static final Instant T0_PLUS_1M = T0.plus(Duration.ofMinutes(1));
    public static final Instant T0_PLUS_2M = T0.plus(Duration.ofMinutes(2));
    public static final Instant T0_PLUS_3M = T0.plus(Duration.ofMinutes(3));
    public static final Instant T0_PLUS_5M = T0.plus(Duration.ofMinutes(5));
    public static final Instant T0_PLUS_9M = T0.plus(Duration.ofMinutes(9));
    public static final Instant T0_PLUS_10M = T0.plus(Duration.ofMinutes(10));
    public static final Instant T0_PLUS_11M = T0.plus(Duration.ofMinutes(11));
    public static final Instant T0_PLUS_30M = T0.plus(Duration.ofMinutes(30));
    public static final Instant T0_PLUS_1H = T0.plus(Duration.ofHours(1));
    public static final Instant T0_PLUS_2H = T0.plus(Duration.ofHours(2));
    public static final Instant T0_PLUS_1D = T0.plus(Duration.ofDays(1));

    public static final String ALICE = "alice";
    public static final String BOB = "bob";
    public static final String TOPIC = "clicks";

    /** Epoch milliseconds of an instant; harness timestamps and watermarks are longs. */
    public static long ms(Instant t) {
        return t.toEpochMilli();
    }

    /** A scored event as the scorer emits it (harness timestamp = event time), for the operators after it. */
    public static org.apache.flink.streaming.runtime.streamrecord.StreamRecord<dev.seqscore.scoring.ScoredEvent> scored(
            String user, Instant t, float purchase, float churn) {
        dev.seqscore.scoring.ScoredEvent s = new dev.seqscore.scoring.ScoredEvent();
        s.userId = user;
        s.eventType = "cart";
        s.itemId = "i-" + t.getEpochSecond();
        s.eventTime = ms(t);
        s.windowLength = 3;
        s.scores = new float[] {purchase, churn};
        return new org.apache.flink.streaming.runtime.streamrecord.StreamRecord<>(s, ms(t));
    }

    /** A click by {@code user}; defaults: a {@code view} of item {@code i1} in category {@code c1} at {@link #T0}. */
    public static Builder click(String user) {
        return new Builder().user(user);
    }

    public static final class Builder {
        private String user = ALICE;
        private String type = "view";
        private String item = "i1";
        private String category = "c1";
        private Long time = T0.toEpochMilli();
        private Double price;
        private String session;
        private String topic = TOPIC;
        private int partition = 0;
        private long offset = 0;

        private Builder() {}

        public Builder user(String v) { user = v; return this; }
        public Builder type(String v) { type = v; return this; }
        public Builder item(String v) { item = v; return this; }
        public Builder category(String v) { category = v; return this; }
        public Builder at(Instant v) { time = v.toEpochMilli(); return this; }
        public Builder atMillis(Long v) { time = v; return this; }
        public Builder price(Double v) { price = v; return this; }
        public Builder session(String v) { session = v; return this; }
        public Builder from(String t, int p, long o) { topic = t; partition = p; offset = o; return this; }
        public Builder offset(long o) { offset = o; return this; }

        /** The record as the Kafka source emits it after decoding, raw bytes included. */
        public InputRecord record() {
            InputRecord r = new InputRecord();
            r.userId = user;
            r.eventType = type;
            r.itemId = item;
            r.categoryId = category;
            r.eventTime = time;
            r.price = price;
            r.sessionId = session;
            r.sourceTopic = topic;
            r.sourcePartition = partition;
            r.sourceOffset = offset;
            if (user != null && type != null && item != null && time != null) {
                r.raw = ClickEventAvro.encode(event());
            }
            return r;
        }

        /** The click as the Avro contract spells it. Every required field must be set. */
        public ClickEvent event() {
            return ClickEvent.newBuilder()
                    .setUserId(user)
                    .setEventType(type)
                    .setItemId(item)
                    .setCategoryId(category == null ? "" : category)
                    .setEventTime(Instant.ofEpochMilli(time))
                    .setPrice(price)
                    .setSessionId(session)
                    .build();
        }

        /** The click's plain Avro bytes, as a producer writes them to the input topic. */
        public byte[] avro() {
            return ClickEventAvro.encode(event());
        }

        /** Event time in epoch milliseconds; the harness timestamp of the record. */
        public long millis() {
            return time;
        }
    }
}
