package dev.seqscore.job;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.Score;
import dev.seqscore.events.InputRecord;
import dev.seqscore.events.KafkaInputDeserializer;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.KafkaSourceBuilder;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.formats.avro.AvroSerializationSchema;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

/**
 * The job's edges: the Kafka source of clicks and the Kafka sinks of alerts, scores and dead letters, all built
 * from {@link JobConfig}. Values are plain Avro binary of the schemas in {@code schemas/}; keys are user ids, so a
 * consumer sees each user's alerts in order.
 */
public final class KafkaIO {
    /** Kafka's broker default caps transactions at 15 minutes; stay under it but above checkpoint + recovery time. */
    static final String DEFAULT_TRANSACTION_TIMEOUT_MS = "600000";

    private KafkaIO() {}

    public static KafkaSource<InputRecord> source(JobConfig c) {
        KafkaSourceBuilder<InputRecord> b = KafkaSource.<InputRecord>builder()
                .setBootstrapServers(c.get(JobConfig.BOOTSTRAP_SERVERS))
                .setTopics(c.get(JobConfig.INPUT_TOPIC))
                .setGroupId(c.get(JobConfig.GROUP_ID))
                .setStartingOffsets(startingOffsets(c))
                .setDeserializer(new KafkaInputDeserializer(c.get(JobConfig.INPUT_FORMAT)))
                .setProperties(c.kafkaProperties())
                // Offsets are committed on checkpoints, so a restart without state resumes where it left off.
                .setProperty("commit.offsets.on.checkpoint", "true");
        if (c.get(JobConfig.STOP_AT_LATEST)) {
            b.setBounded(OffsetsInitializer.latest());
        }
        return b.build();
    }

    static OffsetsInitializer startingOffsets(JobConfig c) {
        JobConfig.StartingOffsets s = c.get(JobConfig.STARTING_OFFSETS);
        return switch (s.kind()) {
            case EARLIEST -> OffsetsInitializer.earliest();
            case LATEST -> OffsetsInitializer.latest();
            // The first offset whose record timestamp is at or after T, per partition (the end where none is): the
            // seam after a warm-start bootstrap that read the records before T.
            case TIMESTAMP -> OffsetsInitializer.timestamp(s.timestampMs());
            case COMMITTED -> OffsetsInitializer.committedOffsets(c.get(JobConfig.OFFSET_RESET)
                    == JobConfig.OffsetReset.LATEST ? OffsetResetStrategy.LATEST : OffsetResetStrategy.EARLIEST);
        };
    }

    public static KafkaSink<Alert> alertSink(JobConfig c) {
        return sink(c, c.get(JobConfig.ALERTS_TOPIC), "alerts", AvroSerializationSchema.forSpecific(Alert.class),
                a -> a.getUserId().getBytes(StandardCharsets.UTF_8));
    }

    public static KafkaSink<Score> scoreSink(JobConfig c) {
        return sink(c, c.scoresTopic(), "scores", AvroSerializationSchema.forSpecific(Score.class),
                s -> s.getUserId().getBytes(StandardCharsets.UTF_8));
    }

    public static KafkaSink<DeadLetter> deadLetterSink(JobConfig c) {
        // Keyed by origin so that one partition's dead letters stay in order.
        return sink(c, c.get(JobConfig.DEAD_LETTER_TOPIC), "dlq", AvroSerializationSchema.forSpecific(DeadLetter.class),
                d -> (d.getSourceTopic() + "-" + d.getSourcePartition()).getBytes(StandardCharsets.UTF_8));
    }

    private static <T> KafkaSink<T> sink(JobConfig c, String topic, String idSuffix, SerializationSchema<T> value,
            SerializationSchema<T> key) {
        Properties props = c.kafkaProperties();
        props.putIfAbsent("transaction.timeout.ms", DEFAULT_TRANSACTION_TIMEOUT_MS);
        return KafkaSink.<T>builder()
                .setBootstrapServers(c.get(JobConfig.BOOTSTRAP_SERVERS))
                .setKafkaProducerConfig(props)
                .setRecordSerializer(new EmitTimeRecords<>(topic, key, value))
                .setDeliveryGuarantee(c.get(JobConfig.DELIVERY) == JobConfig.Delivery.EXACTLY_ONCE
                        ? DeliveryGuarantee.EXACTLY_ONCE : DeliveryGuarantee.AT_LEAST_ONCE)
                // Each sink needs its own transactional ids, or their transactions would fence each other.
                .setTransactionalIdPrefix(c.get(JobConfig.TRANSACTIONAL_ID_PREFIX) + "-" + idSuffix)
                .build();
    }
}
