package dev.seqscore.job;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.ErasureAudit;
import dev.seqscore.avro.ModelEvent;
import dev.seqscore.avro.Score;
import dev.seqscore.events.ErasureRequests;
import dev.seqscore.lifecycle.ModelControlSource;
import dev.seqscore.events.InputRecord;
import dev.seqscore.events.KafkaInputDeserializer;
import dev.seqscore.registry.FramedAvroSerializationSchema;
import dev.seqscore.registry.RegistryEndpoint;
import dev.seqscore.registry.SubjectRegistration;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.KafkaSourceBuilder;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.formats.avro.AvroSerializationSchema;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

/**
 * The job's edges: the Kafka source of clicks and the Kafka sinks of alerts, scores and dead letters, all built
 * from {@link JobConfig}. Values are plain Avro binary of the schemas in {@code schemas/}, or with
 * {@code --schema-registry} registry-framed Avro (input: any compatible writer schema; output: the schemas
 * registered under {@code <topic>-value} when the sinks are built, on the client); keys are user ids as UTF-8
 * strings, so a consumer sees each user's alerts in order.
 */
public final class KafkaIO {
    /** Kafka's broker default caps transactions at 15 minutes; stay under it but above checkpoint + recovery time. */
    static final String DEFAULT_TRANSACTION_TIMEOUT_MS = "600000";

    private KafkaIO() {}

    public static KafkaSource<InputRecord> source(JobConfig c) {
        RegistryEndpoint registry = registry(c);
        KafkaSourceBuilder<InputRecord> b = KafkaSource.<InputRecord>builder()
                .setBootstrapServers(c.get(JobConfig.BOOTSTRAP_SERVERS))
                .setTopics(c.get(JobConfig.INPUT_TOPIC))
                .setGroupId(c.get(JobConfig.GROUP_ID))
                .setStartingOffsets(startingOffsets(c))
                .setDeserializer(registry == null
                        ? new KafkaInputDeserializer(c.get(JobConfig.INPUT_FORMAT))
                        : new KafkaInputDeserializer(registry))
                .setProperties(c.kafkaProperties())
                // Offsets are committed on checkpoints, so a restart without state resumes where it left off.
                .setProperty("commit.offsets.on.checkpoint", "true");
        if (c.get(JobConfig.STOP_AT_LATEST)) {
            b.setBounded(OffsetsInitializer.latest());
        }
        return b.build();
    }

    /**
     * The erasure topic's requests, read with the clicks' group and starting offsets; offsets are committed on
     * checkpoints, like the clicks'.
     */
    public static KafkaSource<InputRecord> erasureSource(JobConfig c) {
        return KafkaSource.<InputRecord>builder()
                .setBootstrapServers(c.get(JobConfig.BOOTSTRAP_SERVERS))
                .setTopics(c.erasureTopic())
                .setGroupId(c.get(JobConfig.GROUP_ID))
                .setStartingOffsets(startingOffsets(c))
                .setDeserializer(new ErasureRequests())
                .setProperties(c.kafkaProperties())
                .setProperty("commit.offsets.on.checkpoint", "true")
                .build();
    }

    /**
     * The model control topic, from the records published since {@code since} (the job's submission): a job started
     * without state follows the announcements made while it runs, not the history of earlier jobs' swaps; a restored
     * job resumes from its checkpointed offsets.
     */
    public static KafkaSource<String> modelControlSource(JobConfig c, long since) {
        return KafkaSource.<String>builder()
                .setBootstrapServers(c.get(JobConfig.BOOTSTRAP_SERVERS))
                .setTopics(c.modelControlTopic())
                .setGroupId(c.get(JobConfig.GROUP_ID))
                .setStartingOffsets(OffsetsInitializer.timestamp(since))
                .setDeserializer(new ModelControlSource())
                .setProperties(c.kafkaProperties())
                .setProperty("commit.offsets.on.checkpoint", "true")
                .build();
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

    /** The registry of {@code --schema-registry} with its credentials, or null for bare Avro. */
    public static RegistryEndpoint registry(JobConfig c) {
        return RegistryEndpoint.from(c.get(JobConfig.SCHEMA_REGISTRY), c.get(JobConfig.SCHEMA_REGISTRY_PROPERTIES),
                System.getenv());
    }

    /**
     * Bare Avro, or with a registry framed Avro whose schema is registered under the topic's value subject now,
     * before submission: a registry that is unreachable or refuses the schema fails the build of the job.
     */
    static <T extends SpecificRecord> SerializationSchema<T> values(JobConfig c, String topic, Class<T> type,
            org.apache.avro.Schema schema) {
        RegistryEndpoint registry = registry(c);
        if (registry == null) {
            return AvroSerializationSchema.forSpecific(type);
        }
        return new FramedAvroSerializationSchema<>(type, SubjectRegistration.register(registry, topic, schema));
    }

    public static KafkaSink<Alert> alertSink(JobConfig c) {
        return sink(c, c.get(JobConfig.ALERTS_TOPIC), "alerts", values(c, c.get(JobConfig.ALERTS_TOPIC), Alert.class, Alert.getClassSchema()),
                a -> a.getUserId().getBytes(StandardCharsets.UTF_8));
    }

    public static KafkaSink<Score> scoreSink(JobConfig c) {
        return sink(c, c.scoresTopic(), "scores", values(c, c.scoresTopic(), Score.class, Score.getClassSchema()),
                s -> s.getUserId().getBytes(StandardCharsets.UTF_8));
    }

    public static KafkaSink<DeadLetter> deadLetterSink(JobConfig c) {
        // Keyed by origin so that one partition's dead letters stay in order.
        return sink(c, c.get(JobConfig.DEAD_LETTER_TOPIC), "dlq",
                values(c, c.get(JobConfig.DEAD_LETTER_TOPIC), DeadLetter.class, DeadLetter.getClassSchema()),
                d -> (d.getSourceTopic() + "-" + d.getSourcePartition()).getBytes(StandardCharsets.UTF_8));
    }

    public static KafkaSink<ErasureAudit> erasureAuditSink(JobConfig c) {
        return sink(c, c.erasureAuditTopic(), "erasures",
                values(c, c.erasureAuditTopic(), ErasureAudit.class, ErasureAudit.getClassSchema()),
                e -> e.getUserId().getBytes(StandardCharsets.UTF_8));
    }

    public static KafkaSink<ModelEvent> modelStatusSink(JobConfig c) {
        return sink(c, c.modelStatusTopic(), "model-status",
                values(c, c.modelStatusTopic(), ModelEvent.class, ModelEvent.getClassSchema()),
                e -> (e.getRequestId() == null ? "" : e.getRequestId()).getBytes(StandardCharsets.UTF_8));
    }

    public static KafkaSink<Score> shadowScoreSink(JobConfig c) {
        return sink(c, c.shadowScoresTopic(), "shadow-scores",
                values(c, c.shadowScoresTopic(), Score.class, Score.getClassSchema()),
                s -> s.getUserId().getBytes(StandardCharsets.UTF_8));
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
