package dev.seqscore.testing;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Function;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** Produces to and reads back from a real broker in tests: unique topic names, bounded reads, read_committed. */
public final class KafkaTopics {
    private KafkaTopics() {}

    /** A topic name no other test uses, so tests never see each other's records. */
    public static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    public static void produce(String bootstrap, String topic, List<byte[]> keys, List<byte[]> values) {
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < values.size(); i++) {
            records.add(new ProducerRecord<>(topic, keys.get(i), values.get(i)));
        }
        produce(bootstrap, records);
    }

    /**
     * Writes the records in order and fails unless every one was acknowledged. Not idempotent, one request in
     * flight: a broker that moves a new partition's leadership right after creation answers NotLeaderOrFollower,
     * and an idempotent producer then lost records to OutOfOrderSequence retries, silently shortening a test's input.
     */
    public static void produce(String bootstrap, List<ProducerRecord<byte[], byte[]>> records) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
        p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "1");
        List<java.util.concurrent.Future<?>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            records.forEach(r -> sent.add(producer.send(r)));
            producer.flush();
            for (java.util.concurrent.Future<?> f : sent) {
                f.get();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while producing the test input", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new AssertionError("the test input was not written: " + e.getCause(), e.getCause());
        }
    }

    /**
     * Waits until at least {@code count} committed records are readable, then returns all that are. Polls with a
     * deadline: a running job commits at its own pace, and its output has no end marker.
     */
    public static <T> List<T> awaitCommitted(String bootstrap, String topic, int count, Duration timeout,
            Function<ConsumerRecord<byte[], byte[]>, T> f) {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<T> seen = readCommitted(bootstrap, topic, f);
        while (seen.size() < count) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("only " + seen.size() + " of " + count + " committed records in " + topic
                        + " after " + timeout);
            }
            LockSupport.parkNanos(Duration.ofMillis(250).toNanos());
            seen = readCommitted(bootstrap, topic, f);
        }
        return seen;
    }

    /**
     * Every committed record of the topic, up to its end offsets at call time. read_committed: records of open or
     * aborted transactions are invisible, as they are to any downstream consumer of the alerts.
     */
    public static <T> List<T> readCommitted(String bootstrap, String topic, Function<ConsumerRecord<byte[], byte[]>, T> f) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        List<T> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            consumer.partitionsFor(topic, Duration.ofSeconds(30))
                    .forEach(pi -> parts.add(new TopicPartition(topic, pi.partition())));
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Map<TopicPartition, Long> end = new HashMap<>(consumer.endOffsets(parts, Duration.ofSeconds(30)));
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!reached(consumer, end)) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("could not read " + topic + " up to " + end + " within 60 s");
                }
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    out.add(f.apply(r));
                }
            }
        }
        return out;
    }

    /** The first offset still stored in each partition: above 0 once retention has deleted records. */
    public static Map<Integer, Long> beginningOffsets(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            consumer.partitionsFor(topic, Duration.ofSeconds(30))
                    .forEach(pi -> parts.add(new TopicPartition(topic, pi.partition())));
            Map<Integer, Long> out = new java.util.TreeMap<>();
            consumer.beginningOffsets(parts, Duration.ofSeconds(30)).forEach((tp, o) -> out.put(tp.partition(), o));
            return out;
        }
    }

    private static boolean reached(KafkaConsumer<?, ?> consumer, Map<TopicPartition, Long> end) {
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            if (consumer.position(e.getKey()) < e.getValue()) {
                return false;
            }
        }
        return true;
    }
}
