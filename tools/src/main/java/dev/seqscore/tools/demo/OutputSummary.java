package dev.seqscore.tools.demo;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.job.AvroRecords;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads the job's output topics as a dashboard would ({@code read_committed}: only what a checkpoint committed) and
 * keeps running totals: scores and the distinct users they cover, alerts by type with recent examples, dead letters
 * by reason.
 */
final class OutputSummary implements AutoCloseable {

    /** The totals at one moment. */
    record Totals(long scored, int scoredUsers, Map<String, Long> alertsByType, Map<String, List<String>> examples,
            Map<String, Long> deadByReason) {
        long alerts() {
            return alertsByType.values().stream().mapToLong(Long::longValue).sum();
        }

        long deadLetters() {
            return deadByReason.values().stream().mapToLong(Long::longValue).sum();
        }
    }

    private final KafkaConsumer<byte[], byte[]> consumer;
    private final String scoresTopic;
    private final String alertsTopic;
    private long scored;
    private final DistinctCounter scoredUsers = new DistinctCounter();
    private final Map<String, Long> alertsByType = new TreeMap<>();
    private final Map<String, List<String>> examples = new TreeMap<>();
    private final Map<String, Long> deadByReason = new TreeMap<>();

    OutputSummary(String bootstrap, String scoresTopic, String alertsTopic, String deadLetterTopic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "seqscore-demo-dashboard");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        this.scoresTopic = scoresTopic;
        this.alertsTopic = alertsTopic;
        List<String> topics = new ArrayList<>(List.of(alertsTopic, deadLetterTopic));
        if (!scoresTopic.isEmpty()) {
            topics.add(scoresTopic);
        }
        consumer.subscribe(topics);
    }

    void poll(Duration timeout) {
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(timeout)) {
            if (r.topic().equals(scoresTopic)) {
                scored++;
                if (r.key() != null) {
                    scoredUsers.add(r.key()); // scores are keyed by user id
                }
            } else if (r.topic().equals(alertsTopic)) {
                Alert a = AvroRecords.decode(r.value(), Alert.class);
                alertsByType.merge(a.getAlertType(), 1L, Long::sum);
                List<String> ex = examples.computeIfAbsent(a.getAlertType(), k -> new ArrayList<>());
                ex.add(String.format("user %s (%s %.2f at %s)", a.getUserId(), a.getOutput(), a.getScore(),
                        a.getEventTime()));
                if (ex.size() > 3) {
                    ex.remove(0);
                }
            } else {
                deadByReason.merge(AvroRecords.decode(r.value(), DeadLetter.class).getReason(), 1L, Long::sum);
            }
        }
    }

    Totals totals() {
        Map<String, List<String>> ex = new TreeMap<>();
        examples.forEach((k, v) -> ex.put(k, List.copyOf(v)));
        return new Totals(scored, scoredUsers.size(), new TreeMap<>(alertsByType), ex, new TreeMap<>(deadByReason));
    }

    @Override
    public void close() {
        consumer.close(Duration.ofSeconds(5));
    }
}
