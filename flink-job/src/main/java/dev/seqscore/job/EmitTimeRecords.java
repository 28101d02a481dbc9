package dev.seqscore.job;

import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Kafka records stamped with the time the job emits them, not the event's time. Kafka's retention deletes by record
 * timestamp, so output of a replay or backfill of old clicks stamped with event time would be deleted at the next
 * retention check; the event time stays in the payload.
 */
final class EmitTimeRecords<T> implements KafkaRecordSerializationSchema<T> {
    private static final long serialVersionUID = 1L;

    /** The wall clock, replaceable in tests. */
    interface Clock extends java.io.Serializable {
        long millis();
    }

    private final String topic;
    private final SerializationSchema<T> key;
    private final SerializationSchema<T> value;
    private final Clock clock;

    EmitTimeRecords(String topic, SerializationSchema<T> key, SerializationSchema<T> value, Clock clock) {
        this.topic = topic;
        this.key = key;
        this.value = value;
        this.clock = clock;
    }

    EmitTimeRecords(String topic, SerializationSchema<T> key, SerializationSchema<T> value) {
        this(topic, key, value, System::currentTimeMillis);
    }

    @Override
    public void open(SerializationSchema.InitializationContext context, KafkaSinkContext sinkContext) throws Exception {
        key.open(context);
        value.open(context);
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(T element, KafkaSinkContext context, Long eventTimestamp) {
        // No partition: the producer's partitioner hashes the key, so one user's records share a partition.
        return new ProducerRecord<>(topic, null, clock.millis(), key.serialize(element), value.serialize(element));
    }
}
