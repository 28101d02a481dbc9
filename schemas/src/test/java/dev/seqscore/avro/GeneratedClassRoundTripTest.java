package dev.seqscore.avro;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.Map;

import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecordBase;
import org.junit.jupiter.api.Test;

/** Every generated contract class survives Avro binary encoding unchanged, including nulls and logical types. */
class GeneratedClassRoundTripTest {

    private static final Instant T = Instant.ofEpochMilli(1_511_544_070_123L);

    @SuppressWarnings("unchecked")
    private static <T extends SpecificRecordBase> T roundTrip(T record) throws Exception {
        Class<T> type = (Class<T>) record.getClass();
        byte[] bytes = AvroBinary.write(new SpecificDatumWriter<>(type), record);
        return AvroBinary.read(new SpecificDatumReader<>(type), bytes);
    }

    @Test
    void clickEventWithEveryField() throws Exception {
        ClickEvent e = new ClickEvent("u1", "buy", "i1", "c1", T, 12.5, "s1");
        assertThat(roundTrip(e)).isEqualTo(e);
    }

    @Test
    void clickEventWithDefaultsForOptionalFields() throws Exception {
        ClickEvent e = ClickEvent.newBuilder().setUserId("u1").setEventType("view").setItemId("i1")
                .setEventTime(T).build();

        ClickEvent read = roundTrip(e);

        assertThat(read.getCategoryId()).isEmpty();
        assertThat(read.getPrice()).isNull();
        assertThat(read.getSessionId()).isNull();
        assertThat(read.getEventTime()).isEqualTo(T);
    }

    @Test
    void alert() throws Exception {
        Alert a = Alert.newBuilder()
                .setAlertId("a-1").setUserId("u1").setAlertType("HIGH_PURCHASE_INTENT").setOutput("purchase_30m")
                .setScore(0.91).setThreshold(0.5).setScores(Map.of("purchase_30m", 0.91, "churn_24h", 0.02))
                .setModelVersion("0123456789abcdef").setEventTime(T).setEventType("cart").setItemId("i1")
                .setWindowLength(17).setEmittedAt(T.plusMillis(40)).build();
        assertThat(roundTrip(a)).isEqualTo(a);
    }

    @Test
    void score() throws Exception {
        Score s = Score.newBuilder()
                .setUserId("u1").setEventTime(T).setEventType("view").setItemId("i1")
                .setScores(Map.of("purchase_30m", 0.1, "churn_24h", 0.7)).setModelVersion("0123456789abcdef")
                .setWindowLength(1).setScoredAt(T.plusMillis(5)).build();
        assertThat(roundTrip(s)).isEqualTo(s);
    }

    @Test
    void deadLetterWithOriginAndRawBytes() throws Exception {
        DeadLetter d = DeadLetter.newBuilder()
                .setReason("UNDECODABLE").setDetail("avro: EOFException").setSourceTopic("clicks")
                .setSourcePartition(3).setSourceOffset(12345L).setRaw(ByteBuffer.wrap(new byte[] {0, 1, (byte) 0xff}))
                .setRecordedAt(T).build();
        assertThat(roundTrip(d)).isEqualTo(d);
    }

    @Test
    void deadLetterWithoutOrigin() throws Exception {
        DeadLetter d = DeadLetter.newBuilder().setReason("INVALID_FIELD").setDetail("empty user_id")
                .setRecordedAt(T).build();

        DeadLetter read = roundTrip(d);

        assertThat(read).isEqualTo(d);
        assertThat(read.getSourceTopic()).isNull();
        assertThat(read.getRaw()).isNull();
    }
}
