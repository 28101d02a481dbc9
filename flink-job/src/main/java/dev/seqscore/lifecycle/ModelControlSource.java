package dev.seqscore.lifecycle;

import dev.seqscore.events.ErasureRequests;
import java.nio.charset.StandardCharsets;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * The model control topic's records, as text for the scorer to parse and answer (an unreadable record is answered
 * too, never dropped). Control records name the event time they take effect at, so their stream has no event time of
 * its own: {@link #watermarks()} keeps it idle, as the erasure requests' is.
 */
public final class ModelControlSource implements KafkaRecordDeserializationSchema<String> {
    private static final long serialVersionUID = 1L;

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<String> out) {
        byte[] value = record.value();
        out.collect(value == null ? "" : new String(value, StandardCharsets.UTF_8));
    }

    @Override
    public TypeInformation<String> getProducedType() {
        return Types.STRING;
    }

    /** Always idle, timestamps at the minimum: the clicks alone decide event time (as for erasure requests). */
    public static WatermarkStrategy<String> watermarks() {
        return ErasureRequests.outsideEventTime();
    }
}
