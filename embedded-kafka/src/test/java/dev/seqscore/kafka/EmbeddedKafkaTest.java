package dev.seqscore.kafka;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class EmbeddedKafkaTest {

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();

    @Test
    void brokerRunsTransactionVersionOneForFlinksExactlyOnceSink() throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
            FinalizedVersionRange tv = admin.describeFeatures().featureMetadata().get()
                    .finalizedFeatures().get("transaction.version");
            assertThat(tv).isNotNull();
            assertThat(tv.maxVersionLevel()).isEqualTo(EmbeddedKafka.transactionVersion()).isEqualTo((short) 1);
        }
    }

    @Test
    void listenersAnswerOnLoopbackAndNowhereElse() throws Exception {
        List<InetAddress> others = new ArrayList<>();
        for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
            if (nic.isUp() && !nic.isLoopback()) {
                Collections.list(nic.getInetAddresses()).stream()
                        .filter(a -> !a.isLinkLocalAddress() && !a.isLoopbackAddress()).forEach(others::add);
            }
        }
        assumeTrue(!others.isEmpty(), "this machine has no non-loopback address to try the broker's ports from");
        List<Integer> ports = new ArrayList<>(kafka.broker().internalPorts());
        ports.add(Integer.parseInt(kafka.bootstrapServers().substring(kafka.bootstrapServers().lastIndexOf(':') + 1)));

        for (int port : ports) {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 5_000);
            }
            for (InetAddress other : others) {
                assertThatThrownBy(() -> {
                    try (Socket s = new Socket()) {
                        s.connect(new InetSocketAddress(other, port), 5_000);
                    }
                }).as("port %d on %s", port, other).isInstanceOf(IOException.class);
            }
        }
    }

    @Test
    void committedTransactionIsVisibleToReadCommitted() {
        kafka.createTopics(2, "committed");
        try (KafkaProducer<String, String> producer = transactionalProducer()) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("committed", "u1", "a"));
            producer.send(new ProducerRecord<>("committed", "u2", "b"));
            producer.send(new ProducerRecord<>("committed", "u1", "c"));
            producer.commitTransaction();
        }

        List<ConsumerRecord<String, String>> records = readCommitted("committed", 3);

        assertThat(records).extracting(r -> r.key() + "=" + r.value())
                .containsExactlyInAnyOrder("u1=a", "u2=b", "u1=c");
        // Same key, same partition, in send order: the property the job's keyed input relies on.
        assertThat(records).filteredOn(r -> r.key().equals("u1")).extracting(ConsumerRecord::value)
                .containsExactly("a", "c");
    }

    @Test
    void abortedTransactionIsInvisibleToReadCommitted() {
        kafka.createTopics(1, "aborted");
        try (KafkaProducer<String, String> producer = transactionalProducer()) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("aborted", "u1", "lost"));
            producer.flush();
            producer.abortTransaction();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("aborted", "u1", "kept"));
            producer.commitTransaction();
        }

        // Reading up to the end of the log proves the aborted record was skipped, not merely not yet fetched.
        List<ConsumerRecord<String, String>> records = readCommitted("aborted", 1);

        assertThat(records).extracting(ConsumerRecord::value).containsExactly("kept");
    }

    @Test
    void fixedPortBrokerIsReachableAtThatPortAndCleansUpOnClose() throws Exception {
        int port;
        try (var socket = new java.net.ServerSocket(0)) {
            port = socket.getLocalPort();
        }
        java.nio.file.Path dataDirectory;
        try (EmbeddedKafka fixed = EmbeddedKafka.start(port)) {
            dataDirectory = fixed.dataDirectory();
            assertThat(dataDirectory).isDirectory();
            assertThat(fixed.bootstrapServers()).isEqualTo("localhost:" + port);
            fixed.createTopics(1, "fixed");
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(Map.of(
                    ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, fixed.bootstrapServers()),
                    new StringSerializer(), new StringSerializer())) {
                producer.send(new ProducerRecord<>("fixed", "k", "v")).get();
            }
        }
        assertThat(dataDirectory).as("log directories are deleted on close").doesNotExist();
    }

    /** Each test sees a broker of its own: a topic the other test created is not there. */
    @Nested
    class PerTest {
        @RegisterExtension
        static final EmbeddedKafkaExtension own = new EmbeddedKafkaExtension().perTest();

        @Test
        void first() throws Exception {
            createsTopicNoEarlierTestLeft();
        }

        @Test
        void second() throws Exception {
            createsTopicNoEarlierTestLeft();
        }

        private void createsTopicNoEarlierTestLeft() throws Exception {
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, own.bootstrapServers()))) {
                assertThat(admin.listTopics().names().get()).doesNotContain("per-test");
                own.createTopics(1, "per-test");
                assertThat(admin.listTopics().names().get()).contains("per-test");
            }
        }
    }

    private static KafkaProducer<String, String> transactionalProducer() {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "test-" + UUID.randomUUID());
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        return new KafkaProducer<>(props, new StringSerializer(), new StringSerializer());
    }

    /** Reads the whole topic (to its read_committed end offsets) and fails if fewer than expected records arrive. */
    private static List<ConsumerRecord<String, String>> readCommitted(String topic, int expected) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer =
                     new KafkaConsumer<>(props, new StringDeserializer(), new StringDeserializer())) {
            List<TopicPartition> partitions = consumer.partitionsFor(topic).stream()
                    .map(p -> new TopicPartition(topic, p.partition())).toList();
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (System.nanoTime() < deadline
                    && partitions.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            assertThat(partitions).allMatch(tp -> consumer.position(tp) >= end.get(tp),
                    "consumer reached the end of every partition within 30 s");
        }
        assertThat(out).hasSize(expected);
        return out;
    }
}
