package dev.seqscore.e2e.drill;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.Score;
import dev.seqscore.e2e.drill.Expected.ScoreKey;
import dev.seqscore.job.AvroRecords;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A downstream consumer of the job's output, as a user would run one: {@code isolation.level=read_committed} on the
 * alerts, scores and dead-letter topics, from the beginning, for the whole drill (across broker restarts, which the
 * client rides out by itself). It counts every record it sees, so that duplicates show, and keeps a timeline of
 * when committed output grew, from which stalls and recoveries are measured.
 */
final class OutputWatcher implements AutoCloseable {
    /** A moment when committed output grew: wall clock (nanoTime), records and distinct outputs seen so far. */
    record Progress(long nanos, long records, long distinct) {}

    private final String bootstrap;
    private final String alertsTopic;
    private final String scoresTopic;
    private final String deadLetterTopic;
    private final AtomicBoolean stop = new AtomicBoolean();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final Thread thread;

    // Guarded by this.
    private final Map<ScoreKey, Integer> scoreCounts = new HashMap<>();
    /** Each score's values by output name, as the Score record carries them (the first one seen). */
    private final Map<ScoreKey, Map<String, Double>> scoreValues = new HashMap<>();
    private final Map<String, Integer> alertCounts = new HashMap<>();
    /** The model version of each score and alert as first seen, and how many later copies named another one. */
    private final Map<ScoreKey, String> scoreVersions = new HashMap<>();
    private final Map<String, String> alertVersions = new HashMap<>();
    private long versionChanges;
    private final List<DeadLetter> deadLetters = new ArrayList<>();
    private final List<Progress> progress = new ArrayList<>();
    private long records;

    OutputWatcher(String bootstrap, String alertsTopic, String scoresTopic, String deadLetterTopic) {
        this.bootstrap = bootstrap;
        this.alertsTopic = alertsTopic;
        this.scoresTopic = scoresTopic;
        this.deadLetterTopic = deadLetterTopic;
        this.thread = new Thread(this::run, "drill-output-watcher");
        this.thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    private void run() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 2000);
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            for (String topic : List.of(alertsTopic, scoresTopic, deadLetterTopic)) {
                for (PartitionInfo info : consumer.partitionsFor(topic, Duration.ofSeconds(60))) {
                    parts.add(new TopicPartition(topic, info.partition()));
                }
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            while (!stop.get()) {
                ConsumerRecords<byte[], byte[]> polled = consumer.poll(Duration.ofMillis(200));
                if (!polled.isEmpty()) {
                    take(polled);
                }
            }
        } catch (Throwable t) {
            failure.set(t);
        }
    }

    private synchronized void take(ConsumerRecords<byte[], byte[]> polled) {
        long before = records;
        for (ConsumerRecord<byte[], byte[]> r : polled) {
            if (r.topic().equals(scoresTopic)) {
                Score s = AvroRecords.decode(r.value(), Score.class);
                ScoreKey key = new ScoreKey(s.getUserId(), s.getEventTime().toEpochMilli(), s.getEventType(),
                        s.getItemId());
                scoreCounts.merge(key, 1, Integer::sum);
                scoreValues.putIfAbsent(key, Map.copyOf(s.getScores()));
                noteVersion(scoreVersions, key, s.getModelVersion());
                records++;
            } else if (r.topic().equals(alertsTopic)) {
                Alert a = AvroRecords.decode(r.value(), Alert.class);
                alertCounts.merge(a.getAlertId(), 1, Integer::sum);
                noteVersion(alertVersions, a.getAlertId(), a.getModelVersion());
                records++;
            } else {
                deadLetters.add(AvroRecords.decode(r.value(), DeadLetter.class));
            }
        }
        if (records > before) {
            progress.add(new Progress(System.nanoTime(), records, scoreCounts.size() + alertCounts.size()));
        }
    }

    private <K> void noteVersion(Map<K, String> versions, K key, String version) {
        String first = versions.putIfAbsent(key, version);
        if (first != null && !first.equals(version)) {
            versionChanges++;
        }
    }

    /** Fails the caller if the consumer thread died. */
    void check() {
        Throwable t = failure.get();
        if (t != null) {
            throw new IllegalStateException("the output consumer failed: " + t, t);
        }
    }

    /** Alert and score records seen so far, duplicates included. */
    synchronized long records() {
        return records;
    }

    /** Distinct scores and alerts seen so far. */
    synchronized long distinct() {
        return scoreCounts.size() + alertCounts.size();
    }

    /** When committed output last grew (nanoTime), or 0 if it never did. */
    synchronized long lastProgressNanos() {
        return progress.isEmpty() ? 0 : progress.get(progress.size() - 1).nanos();
    }

    /**
     * Waits until committed output grows at a moment after {@code afterNanos}.
     *
     * @return that moment (nanoTime), or -1 if the timeout passed first
     */
    long awaitProgressAfter(long afterNanos, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            check();
            long last = lastProgressNanos();
            if (last > afterNanos) {
                return last;
            }
            Thread.sleep(100); // poll interval of a deadline loop
        }
        return -1;
    }

    synchronized List<Progress> progress() {
        return List.copyOf(progress);
    }

    synchronized Map<ScoreKey, Integer> scoreCounts() {
        return Map.copyOf(scoreCounts);
    }

    synchronized Map<ScoreKey, Map<String, Double>> scoreValues() {
        return Map.copyOf(scoreValues);
    }

    synchronized Map<ScoreKey, String> scoreVersions() {
        return Map.copyOf(scoreVersions);
    }

    synchronized Map<String, String> alertVersions() {
        return Map.copyOf(alertVersions);
    }

    /** Copies of a score or alert (a duplicate) that named another model version than the first copy. */
    synchronized long versionChanges() {
        return versionChanges;
    }

    synchronized Map<String, Integer> alertCounts() {
        return Map.copyOf(alertCounts);
    }

    synchronized List<DeadLetter> deadLetters() {
        return List.copyOf(deadLetters);
    }

    @Override
    public void close() throws InterruptedException {
        stop.set(true);
        thread.join(10_000);
    }
}
