package dev.seqscore.events;

import dev.seqscore.registry.RegistryEndpoint;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

/**
 * The Kafka source's deserializer: every consumer record becomes one {@link InputRecord} carrying its origin. Values
 * are bare Avro or JSON ({@link InputDecoder}), or with a schema registry, registry-framed Avro
 * ({@link RegistryAvroDecoder}).
 */
public final class KafkaInputDeserializer implements KafkaRecordDeserializationSchema<InputRecord> {
    private static final long serialVersionUID = 1L;

    private final InputDecoder decoder;
    private final RegistryAvroDecoder registryDecoder;

    public KafkaInputDeserializer(InputFormat format) {
        this.decoder = new InputDecoder(format);
        this.registryDecoder = null;
    }

    /** Registry-framed Avro, each value read with its own writer schema. */
    public KafkaInputDeserializer(RegistryEndpoint registry) {
        this.decoder = null;
        this.registryDecoder = new RegistryAvroDecoder(registry);
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<InputRecord> out) {
        out.collect(registryDecoder != null
                ? registryDecoder.decode(record.value(), record.topic(), record.partition(), record.offset())
                : decoder.decode(record.value(), record.topic(), record.partition(), record.offset()));
    }

    @Override
    public TypeInformation<InputRecord> getProducedType() {
        return TypeInformation.of(InputRecord.class);
    }
}
