package dev.seqscore.e2e.kafka;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * The broker process survives what the drill does to it: a {@code kill -9} and a restart on the same data and port
 * keep every acknowledged record, committed transactions stay visible to read_committed consumers, and the
 * transaction protocol stays at version 1, which Flink's exactly-once sink needs.
 */
class BrokerProcessITCase {

    @Test
    void killedBrokerRestartsOnTheSamePortWithItsDataAndTransactions() throws Exception {
        Path root = Path.of(System.getProperty("seqscore.repo.root", ".."));
        List<Path> classpath = BrokerProcess.classpath(root.resolve("e2e/target/broker-classpath.txt"));
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        try (BrokerProcess broker = BrokerProcess.format(root.resolve("e2e/target/broker-it-" + suffix), classpath)) {
            broker.start();
            String topic = "it-" + suffix;
            broker.createTopics(2, topic);
            try (Admin admin = broker.admin()) {
                FeatureMetadata features = admin.describeFeatures().featureMetadata().get();
                assertThat(features.finalizedFeatures().get("transaction.version").maxVersionLevel())
                        .isEqualTo((short) 1);
            }
            try (KafkaProducer<byte[], byte[]> p = producer(broker, "tx-" + suffix)) {
                p.initTransactions();
                p.beginTransaction();
                for (int i = 0; i < 100; i++) {
                    p.send(new ProducerRecord<>(topic, i % 2, null, bytes("committed-" + i)));
                }
                p.commitTransaction();
                p.beginTransaction();
                p.send(new ProducerRecord<>(topic, 0, null, bytes("open")));
                p.flush();
                // Left open: the kill must not make it visible.
            }
            String before = broker.bootstrapServers();
            long oldPid = broker.pid();

            broker.kill();
            assertThat(broker.isAlive()).isFalse();
            broker.start();

            assertThat(broker.bootstrapServers()).isEqualTo(before);
            assertThat(broker.pid()).isNotEqualTo(oldPid);
            List<String> seen = readCommitted(broker, topic, 100);
            assertThat(seen).hasSize(100).allMatch(s -> s.startsWith("committed-")).doesNotHaveDuplicates();
        }
    }

    private static KafkaProducer<byte[], byte[]> producer(BrokerProcess broker, String txId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txId);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 20_000);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    /**
     * Reads read_committed until {@code expected} records arrived, then a little longer; the open transaction is
     * aborted by its timeout and must never show.
     */
    private static List<String> readCommitted(BrokerProcess broker, String topic, int expected) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(),
                new ByteArrayDeserializer())) {
            List<TopicPartition> parts = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1));
            c.assign(parts);
            c.seekToBeginning(parts);
            long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
            long settleUntil = Long.MAX_VALUE;
            while (System.nanoTime() < Math.min(deadline, settleUntil)) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    out.add(new String(r.value(), StandardCharsets.UTF_8));
                }
                if (out.size() >= expected && settleUntil == Long.MAX_VALUE) {
                    settleUntil = System.nanoTime() + Duration.ofSeconds(2).toNanos();
                }
            }
            Map<TopicPartition, Long> end = c.endOffsets(parts);
            assertThat(end.values().stream().mapToLong(Long::longValue).sum())
                    .as("the open transaction's record and markers are in the log, yet invisible")
                    .isGreaterThan(expected);
        }
        return out;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
