package dev.seqscore.job;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.Alert;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import org.apache.flink.formats.avro.AvroSerializationSchema;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;

/** Output records carry the emit time as their Kafka timestamp, so retention measures from when they were written. */
class EmitTimeRecordsTest {
    private static final Instant EVENT = Instant.parse("2017-11-26T01:00:00Z");
    private static final long EMITTED = Instant.parse("2026-11-30T03:00:00Z").toEpochMilli();

    @Test
    void recordsAreStampedWithTheEmitTimeAndKeyedByUser() throws Exception {
        EmitTimeRecords<Alert> records = new EmitTimeRecords<>("alerts",
                a -> a.getUserId().getBytes(StandardCharsets.UTF_8),
                AvroSerializationSchema.forSpecific(Alert.class), () -> EMITTED);
        records.open(null, null);
        Alert alert = Alert.newBuilder().setAlertId("a1").setUserId("u7").setAlertType("CHURN_RISK")
                .setOutput("churn_24h").setScore(0.9).setThreshold(0.5)
                .setScores(java.util.Map.of("churn_24h", 0.9)).setEventTime(EVENT).setEventType("pv")
                .setItemId("i1").setModelVersion("v").setWindowLength(3).setEmittedAt(Instant.ofEpochMilli(EMITTED))
                .build();

        ProducerRecord<byte[], byte[]> r = records.serialize(alert, null, EVENT.toEpochMilli());

        assertThat(r.topic()).isEqualTo("alerts");
        assertThat(r.timestamp()).isEqualTo(EMITTED).isNotEqualTo(EVENT.toEpochMilli());
        assertThat(r.partition()).as("the producer's key hash picks it").isNull();
        assertThat(new String(r.key(), StandardCharsets.UTF_8)).isEqualTo("u7");
        assertThat(AvroRecords.decode(r.value(), Alert.class)).isEqualTo(alert);
    }
}
