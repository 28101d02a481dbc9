package dev.seqscore.e2e.drill;

import dev.seqscore.avro.ModelEvent;
import dev.seqscore.job.AvroRecords;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads the job's model status topic as {@code bin/seqscore model} does ({@code read_committed}: an answer shows once
 * the checkpoint that holds the schedule it answers has completed), from the beginning, for the whole drill.
 */
final class ModelStatusWatcher implements AutoCloseable {
    private final String bootstrap;
    private final String topic;
    private final AtomicBoolean stop = new AtomicBoolean();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final Thread thread;
    // Guarded by this.
    private final List<ModelEvent> events = new ArrayList<>();

    ModelStatusWatcher(String bootstrap, String topic) {
        this.bootstrap = bootstrap;
        this.topic = topic;
        this.thread = new Thread(this::run, "drill-model-status-watcher");
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
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo info : consumer.partitionsFor(topic, Duration.ofSeconds(60))) {
                parts.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            while (!stop.get()) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    ModelEvent e = AvroRecords.decode(r.value(), ModelEvent.class);
                    synchronized (this) {
                        events.add(e);
                    }
                }
            }
        } catch (Throwable t) {
            failure.set(t);
        }
    }

    void check() {
        Throwable t = failure.get();
        if (t != null) {
            throw new IllegalStateException("the model status consumer failed: " + t, t);
        }
    }

    /** The answers to request {@code requestId} with {@code status}, one per subtask (the first of each). */
    synchronized List<ModelEvent> answers(String requestId, String status) {
        List<ModelEvent> out = new ArrayList<>();
        for (ModelEvent e : events) {
            if (requestId.equals(e.getRequestId()) && status.equals(e.getStatus())
                    && out.stream().noneMatch(o -> o.getSubtask() == e.getSubtask())) {
                out.add(e);
            }
        }
        return out;
    }

    @Override
    public void close() throws InterruptedException {
        stop.set(true);
        thread.join(10_000);
    }
}
