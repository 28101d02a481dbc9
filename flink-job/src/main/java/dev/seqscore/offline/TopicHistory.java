package dev.seqscore.offline;

import dev.seqscore.events.InputRecord;
import dev.seqscore.events.KafkaInputDeserializer;
import dev.seqscore.job.JobConfig;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * History from a Kafka topic: per partition, the records from the first at or after {@code from} (Kafka record
 * timestamp; the beginning without one) up to, not including, the first at or after T. The job started with
 * {@code --starting-offsets timestamp:T} begins at exactly that offset ({@code OffsetsInitializer.timestamp(T)} on
 * both sides), so no record is read twice or missed at the seam, whatever the event times inside the records.
 */
final class TopicHistory {
    private TopicHistory() {}

    static KafkaSource<InputRecord> source(JobConfig c, String topic, Long fromMs, long untilMs) {
        return KafkaSource.<InputRecord>builder()
                .setBootstrapServers(c.get(JobConfig.BOOTSTRAP_SERVERS))
                .setTopics(topic)
                .setStartingOffsets(fromMs == null ? OffsetsInitializer.earliest() : OffsetsInitializer.timestamp(fromMs))
                .setBounded(OffsetsInitializer.timestamp(untilMs))
                .setDeserializer(new KafkaInputDeserializer(c.get(JobConfig.INPUT_FORMAT)))
                .setProperties(c.kafkaProperties())
                .setProperty("commit.offsets.on.checkpoint", "false")
                .setProperty(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")
                .build();
    }

    /** Records per partition in [from, T), by the same offset look-ups the source and the job make. */
    static Map<Integer, Long> count(JobConfig c, String topic, Long fromMs, long untilMs) {
        Properties p = c.kafkaProperties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, c.get(JobConfig.BOOTSTRAP_SERVERS));
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic, Duration.ofSeconds(30)).stream()
                    .map(i -> new TopicPartition(topic, i.partition())).toList();
            if (partitions.isEmpty()) {
                throw new IllegalArgumentException("topic " + topic + " does not exist");
            }
            Map<TopicPartition, Long> begin = consumer.beginningOffsets(partitions, Duration.ofSeconds(30));
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions, Duration.ofSeconds(30));
            Map<TopicPartition, Long> at = new HashMap<>();
            partitions.forEach(tp -> at.put(tp, untilMs));
            Map<TopicPartition, OffsetAndTimestamp> until = consumer.offsetsForTimes(at, Duration.ofSeconds(30));
            Map<TopicPartition, OffsetAndTimestamp> from = null;
            if (fromMs != null) {
                Map<TopicPartition, Long> f = new HashMap<>();
                partitions.forEach(tp -> f.put(tp, fromMs));
                from = consumer.offsetsForTimes(f, Duration.ofSeconds(30));
            }
            Map<Integer, Long> counts = new HashMap<>();
            for (TopicPartition tp : partitions) {
                long stop = until.get(tp) == null ? end.get(tp) : until.get(tp).offset();
                long start = fromMs == null ? begin.get(tp)
                        : from.get(tp) == null ? end.get(tp) : from.get(tp).offset();
                counts.put(tp.partition(), Math.max(0, stop - start));
            }
            return counts;
        }
    }
}
