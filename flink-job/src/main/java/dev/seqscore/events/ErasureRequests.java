package dev.seqscore.events;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * Requests to erase a user's state, read from the erasure topic: a record's value names the user, either as the bare
 * id in UTF-8 or as a JSON object {@code {"user_id": "..."}}. Every record becomes one {@link InputRecord} with
 * {@code erasure} set and its origin; one that names no user carries a decode error, and validation dead-letters it.
 *
 * <p>Requests take effect in the order the scorer receives them, not in event time, so their source must never move
 * or hold back the clicks' watermark: {@link #watermarks()} gives them no timestamp and keeps their stream idle.
 */
public final class ErasureRequests implements KafkaRecordDeserializationSchema<InputRecord> {
    private static final long serialVersionUID = 1L;
    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<InputRecord> out) {
        byte[] value = record.value();
        String user = null;
        String error = null;
        if (value == null || value.length == 0) {
            error = "an erasure request must name a user: the value is empty";
        } else {
            try {
                String text = StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(java.nio.ByteBuffer.wrap(value)).toString().trim();
                user = text.startsWith("{") ? fromJson(text) : text;
                if (user == null || user.isEmpty()) {
                    error = "an erasure request must name a user: the value is a bare user id in UTF-8 or "
                            + "{\"user_id\": \"...\"}";
                    user = null;
                }
            } catch (CharacterCodingException e) {
                error = "an erasure request's value must be UTF-8 text";
            }
        }
        out.collect(InputRecord.erasureRequest(user, error, record.topic(), record.partition(), record.offset(),
                record.timestamp(), value));
    }

    private static String fromJson(String text) {
        try {
            JsonNode node = JSON.readTree(text).get("user_id");
            return node == null || node.isNull() ? null : node.asText().trim();
        } catch (java.io.IOException e) {
            return null;
        }
    }

    @Override
    public TypeInformation<InputRecord> getProducedType() {
        return TypeInformation.of(InputRecord.class);
    }

    /**
     * No event time for requests: their timestamps are the minimum and their stream is always idle, so that in a
     * union with the clicks the clicks alone decide event time. (A maximal watermark instead would do that only while
     * the clicks are active: once every click partition went idle, it would carry event time to its end, clear every
     * user's state through the cleanup timers and make every later click late.)
     */
    public static WatermarkStrategy<InputRecord> watermarks() {
        return outsideEventTime();
    }

    /** Minimal timestamps and an always idle stream: for any input whose records must not move event time. */
    public static <T> WatermarkStrategy<T> outsideEventTime() {
        return WatermarkStrategy.<T>forGenerator(ctx -> new WatermarkGenerator<>() {
                    @Override
                    public void onEvent(T event, long timestamp, WatermarkOutput output) {
                        output.markIdle();
                    }

                    @Override
                    public void onPeriodicEmit(WatermarkOutput output) {
                        output.markIdle();
                    }
                })
                .withTimestampAssigner((r, kafkaTimestamp) -> Long.MIN_VALUE);
    }
}
