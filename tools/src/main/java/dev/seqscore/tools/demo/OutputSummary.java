package dev.seqscore.tools.demo;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.AlertReason;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.Score;
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
    record Totals(long scored, int scoredUsers, Map<String, Long> atThreshold, Map<String, Long> alertsByType,
            Map<String, List<String>> examples, Map<String, Long> deadByReason, ShadowComparison.Totals shadow) {
        /** Without a shadow candidate. */
        Totals(long scored, int scoredUsers, Map<String, Long> atThreshold, Map<String, Long> alertsByType,
                Map<String, List<String>> examples, Map<String, Long> deadByReason) {
            this(scored, scoredUsers, atThreshold, alertsByType, examples, deadByReason, null);
        }

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
    private final String shadowScoresTopic;
    private final ShadowComparison shadow;
    private long scored;
    private final DistinctCounter scoredUsers = new DistinctCounter();
    private final Map<String, Double> thresholds;
    private final Map<String, Long> atThreshold = new TreeMap<>();
    private final Map<String, Long> alertsByType = new TreeMap<>();
    private final Map<String, List<String>> examples = new TreeMap<>();
    private final Map<String, Long> deadByReason = new TreeMap<>();

    /** @param thresholds per model output, the alert threshold, to count the scores at or above it */
    OutputSummary(String bootstrap, String scoresTopic, String alertsTopic, String deadLetterTopic,
            Map<String, Double> thresholds) {
        this(bootstrap, scoresTopic, alertsTopic, deadLetterTopic, thresholds, "", null);
    }

    /**
     * @param shadowScoresTopic the shadow candidate's scores, compared with the scores topic's by {@code shadow}
     *     (empty and null without a candidate)
     */
    OutputSummary(String bootstrap, String scoresTopic, String alertsTopic, String deadLetterTopic,
            Map<String, Double> thresholds, String shadowScoresTopic, ShadowComparison shadow) {
        this.shadowScoresTopic = shadowScoresTopic;
        this.shadow = shadow;
        this.thresholds = Map.copyOf(thresholds);
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
        if (shadow != null) {
            topics.add(shadowScoresTopic);
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
                Score score = AvroRecords.decodeValue(r.value(), Score.class);
                thresholds.forEach((output, threshold) -> {
                    Double v = score.getScores().get(output);
                    if (v != null && v >= threshold) {
                        atThreshold.merge(output, 1L, Long::sum);
                    }
                });
                if (shadow != null) {
                    shadow.serving(score);
                }
            } else if (shadow != null && r.topic().equals(shadowScoresTopic)) {
                shadow.candidate(AvroRecords.decodeValue(r.value(), Score.class));
            } else if (r.topic().equals(alertsTopic)) {
                Alert a = AvroRecords.decodeValue(r.value(), Alert.class);
                alertsByType.merge(a.getAlertType(), 1L, Long::sum);
                List<String> ex = examples.computeIfAbsent(a.getAlertType(), k -> new ArrayList<>());
                ex.add(example(a));
                if (ex.size() > 3) {
                    ex.remove(0);
                }
            } else {
                deadByReason.merge(AvroRecords.decodeValue(r.value(), DeadLetter.class).getReason(), 1L, Long::sum);
            }
        }
    }

    /** One alert as the demo shows it: who, which score, when, and its reasons. */
    static String example(Alert a) {
        StringBuilder s = new StringBuilder(String.format(java.util.Locale.ROOT, "user %s (%s %.2f at %s)",
                a.getUserId(), a.getOutput(), a.getScore(), a.getEventTime()));
        String sep = ": ";
        for (AlertReason r : a.getReasons()) {
            s.append(sep).append(r.getText()).append(String.format(java.util.Locale.ROOT, " (%+.3f)",
                    r.getScoreDrop()));
            sep = "; ";
        }
        return s.toString();
    }

    Totals totals() {
        Map<String, List<String>> ex = new TreeMap<>();
        examples.forEach((k, v) -> ex.put(k, List.copyOf(v)));
        return new Totals(scored, scoredUsers.size(), new TreeMap<>(atThreshold), new TreeMap<>(alertsByType), ex,
                new TreeMap<>(deadByReason), shadow == null ? null : shadow.totals());
    }

    @Override
    public void close() {
        consumer.close(Duration.ofSeconds(5));
    }
}
