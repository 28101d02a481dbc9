package dev.seqscore.events;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/** The Kafka source's deserializer: every consumer record becomes one {@link InputRecord} carrying its origin. */
public final class KafkaInputDeserializer implements KafkaRecordDeserializationSchema<InputRecord> {
    private static final long serialVersionUID = 1L;

    private final InputDecoder decoder;

    public KafkaInputDeserializer(InputFormat format) {
        this.decoder = new InputDecoder(format);
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<InputRecord> out) {
        out.collect(decoder.decode(record.value(), record.topic(), record.partition(), record.offset()));
    }

    @Override
    public TypeInformation<InputRecord> getProducedType() {
        return TypeInformation.of(InputRecord.class);
    }
}
