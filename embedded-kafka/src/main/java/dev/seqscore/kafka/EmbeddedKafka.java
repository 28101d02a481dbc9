package dev.seqscore.kafka;

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.test.KafkaClusterTestKit;
import org.apache.kafka.common.test.TestKitNodes;
import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.metadata.bootstrap.BootstrapMetadata;
import org.apache.kafka.server.common.Feature;
import org.apache.kafka.server.common.MetadataVersion;

/**
 * A real, single-node Kafka broker (KRaft, combined broker + controller) running inside this JVM, for tests and the
 * local demo. It speaks the real wire protocol, so producers, consumers, transactions and Flink's exactly-once Kafka
 * sink behave exactly as against a cluster. Its log directories live in a temp folder that {@link #close()} deletes.
 *
 * <pre>{@code
 * try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
 *     kafka.createTopics(4, "clicks", "alerts");
 *     String bootstrap = kafka.bootstrapServers();
 * }
 * }</pre>
 *
 * In JUnit 5 tests, {@link EmbeddedKafkaExtension} starts and stops it.
 */
public final class EmbeddedKafka implements AutoCloseable {

    /** Name of the extra listener bound to a caller-chosen port by {@link #start(int)}. */
    private static final String FIXED_LISTENER = "FIXED";

    private static final Duration READY_TIMEOUT = Duration.ofSeconds(60);

    private final KafkaClusterTestKit cluster;
    private final String bootstrapServers;

    private EmbeddedKafka(KafkaClusterTestKit cluster, String bootstrapServers) {
        this.cluster = cluster;
        this.bootstrapServers = bootstrapServers;
    }

    /** Starts a broker on random free ports and returns once it accepts clients. */
    public static EmbeddedKafka start() {
        return start(Optional.empty(), Map.of());
    }

    /** Like {@link #start()}, with broker properties that win over this class's, e.g. a fast retention check. */
    public static EmbeddedKafka start(Map<String, String> brokerConfig) {
        return start(Optional.empty(), brokerConfig);
    }

    /**
     * Starts a broker that also listens on {@code localhost:fixedPort}, so that tools outside this JVM (a console
     * consumer, the demo's instructions) can reach it at a well-known address; {@link #bootstrapServers()} then
     * returns that address.
     *
     * @throws IllegalStateException if the port is taken or the broker does not come up
     */
    public static EmbeddedKafka start(int fixedPort) {
        if (fixedPort <= 0 || fixedPort > 65535) {
            throw new IllegalArgumentException("port must be in 1..65535, got " + fixedPort);
        }
        return start(Optional.of(fixedPort), Map.of());
    }

    /**
     * The broker's {@code transaction.version} feature level: 1 unless the system property
     * {@value #TRANSACTION_VERSION_PROPERTY} says otherwise.
     *
     * <p>Why not Kafka 4.x's default of 2: with it, Flink's exactly-once KafkaSink (flink-connector-kafka
     * 5.0.0-2.2) left transactions open in 2 of 3 runs of KafkaPipelineITCase here, so read_committed consumers
     * saw only a fraction of the output until the transaction timeout; with level 1 it passed 5 of 5 runs under the
     * same CPU load. See docs/design.md, "Exactly-once".
     */
    public static short transactionVersion() {
        return Short.parseShort(System.getProperty(TRANSACTION_VERSION_PROPERTY, "1"));
    }

    public static final String TRANSACTION_VERSION_PROPERTY = "seqscore.kafka.transaction.version";

    private static EmbeddedKafka start(Optional<Integer> fixedPort, Map<String, String> brokerConfig) {
        Path baseDirectory;
        try {
            // Our own temp folder, which close() deletes: the test kit's default one comes with a JVM shutdown hook
            // that deletes it while the broker may still be writing, and the broker then halts the JVM with status 1
            // (all log directories failed), e.g. when the demo is stopped with Ctrl-C or System.exit.
            baseDirectory = Files.createTempDirectory("seqscore-kafka-");
        } catch (IOException e) {
            throw new IllegalStateException("Embedded Kafka: cannot create a temp directory: " + e, e);
        }
        TestKitNodes nodes = new TestKitNodes.Builder(BootstrapMetadata.fromVersions(
                        MetadataVersion.latestProduction(),
                        Map.of(Feature.TRANSACTION_VERSION.featureName(), transactionVersion()),
                        "seqscore-embedded-kafka"))
                .setBaseDirectory(baseDirectory)
                .setCombined(true)
                .setNumBrokerNodes(1)
                .setNumControllerNodes(1)
                .build();
        String brokerListener = nodes.brokerListenerName().value();
        String controllerListener = nodes.controllerListenerName().value();

        KafkaClusterTestKit.Builder builder = new KafkaClusterTestKit.Builder(nodes)
                .setDeleteOnClose(true)
                // A single node cannot meet the default replication factor of 3 for internal topics; without these
                // the first transactional or group client would hang waiting for __transaction_state/__consumer_offsets.
                .setConfigProp("offsets.topic.replication.factor", "1")
                .setConfigProp("offsets.topic.num.partitions", "5")
                .setConfigProp("transaction.state.log.replication.factor", "1")
                .setConfigProp("transaction.state.log.min.isr", "1")
                .setConfigProp("transaction.state.log.num.partitions", "5")
                .setConfigProp("min.insync.replicas", "1")
                .setConfigProp("default.replication.factor", "1")
                // Tests and the demo start consumers right away; the default 3 s delay would only slow them down.
                .setConfigProp("group.initial.rebalance.delay.ms", "0")
                // A typo in a topic name should fail loudly rather than silently create an empty topic.
                .setConfigProp("auto.create.topics.enable", "false")
                // Flink's exactly-once sink keeps transactions open across checkpoints; allow generous timeouts.
                .setConfigProp("transaction.max.timeout.ms", "900000");
        brokerConfig.forEach(builder::setConfigProp);
        fixedPort.ifPresent(port -> builder
                .setConfigProp("listeners", String.format("%s://localhost:0,%s://localhost:0,%s://localhost:%d",
                        brokerListener, controllerListener, FIXED_LISTENER, port))
                .setConfigProp("listener.security.protocol.map", String.format(
                        "%s:PLAINTEXT,%s:PLAINTEXT,%s:PLAINTEXT", brokerListener, controllerListener, FIXED_LISTENER)));

        KafkaClusterTestKit cluster = null;
        try {
            cluster = builder.build();
            reopenOnLoopbackAtStartup(cluster);
            cluster.format();
            cluster.startup();
            cluster.waitForReadyBrokers();
            String bootstrap = fixedPort.map(p -> "localhost:" + p).orElse(cluster.bootstrapServers());
            return new EmbeddedKafka(cluster, bootstrap);
        } catch (Exception e) {
            if (e instanceof InterruptedException) {
                Thread.currentThread().interrupt();
            }
            try {
                if (cluster != null) {
                    cluster.close();
                } else {
                    Utils.delete(baseDirectory.toFile());
                }
            } catch (Exception closeFailure) {
                e.addSuppressed(closeFailure);
            }
            throw new IllegalStateException("Embedded Kafka failed to start"
                    + fixedPort.map(p -> " on port " + p).orElse("") + ": " + e.getMessage(), e);
        }
    }

    /**
     * Makes the broker and controller listeners bind to localhost, as their {@code listeners} config says, instead of
     * all interfaces. The test kit reserves their ports by binding sockets to the wildcard address early and hands
     * those very sockets to the servers, ignoring the configured host; a reserved socket that is closed by then is
     * reopened on the configured host and the same port. So close them between build and startup. Reflection,
     * because the test kit has no switch for this; if a Kafka upgrade renames the fields, this fails loudly rather
     * than leave a broker open to the network.
     */
    private static void reopenOnLoopbackAtStartup(KafkaClusterTestKit cluster) {
        try {
            Field managerField = KafkaClusterTestKit.class.getDeclaredField("socketFactoryManager");
            managerField.setAccessible(true);
            Object manager = managerField.get(cluster);
            Field socketsField = manager.getClass().getDeclaredField("sockets");
            socketsField.setAccessible(true);
            synchronized (manager) {
                for (Object perNode : ((Map<?, ?>) socketsField.get(manager)).values()) {
                    for (Object socket : ((Map<?, ?>) perNode).values()) {
                        ((ServerSocketChannel) socket).close();
                    }
                }
            }
        } catch (ReflectiveOperationException | ClassCastException | IOException e) {
            throw new IllegalStateException("cannot keep the embedded broker on localhost with this Kafka test kit "
                    + "(PreboundSocketFactoryManager changed?): " + e, e);
        }
    }

    /** The {@code host:port} list for a client's {@code bootstrap.servers}. */
    public String bootstrapServers() {
        return bootstrapServers;
    }

    /**
     * Creates the topics (replication factor 1) and returns once every partition of each has a leader, so that a
     * producer or consumer started right after finds them. Topics that already exist are left as they are.
     */
    public void createTopics(int partitions, String... names) {
        createTopics(partitions, Map.of(), names);
    }

    /** Like {@link #createTopics(int, String...)}, with topic configs such as {@code retention.ms}. */
    public void createTopics(int partitions, Map<String, String> topicConfig, String... names) {
        if (partitions < 1) {
            throw new IllegalArgumentException("partitions must be >= 1, got " + partitions);
        }
        List<NewTopic> topics = new ArrayList<>();
        for (String name : names) {
            topics.add(new NewTopic(name, partitions, (short) 1).configs(topicConfig));
        }
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers))) {
            for (var entry : admin.createTopics(topics).values().entrySet()) {
                try {
                    entry.getValue().get();
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw new IllegalStateException("could not create topic " + entry.getKey() + ": "
                                + e.getCause().getMessage(), e.getCause());
                    }
                }
            }
            awaitLeaders(admin, Set.of(names));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating topics", e);
        }
    }

    /** The controller acknowledges creation before the broker has learnt the partitions' leaders; wait for those. */
    private static void awaitLeaders(Admin admin, Set<String> names) throws InterruptedException {
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        Exception last = null;
        while (System.nanoTime() < deadline) {
            try {
                Map<String, TopicDescription> described = admin.describeTopics(names).allTopicNames().get();
                boolean allLed = described.keySet().containsAll(names) && described.values().stream()
                        .flatMap(d -> d.partitions().stream())
                        .allMatch(p -> p.leader() != null && !p.leader().isEmpty());
                if (allLed) {
                    return;
                }
            } catch (ExecutionException e) {
                last = e;
            }
            Thread.sleep(50); // poll interval of a deadline loop that re-checks the condition
        }
        throw new IllegalStateException("topics " + names + " had no leaders within " + READY_TIMEOUT, last);
    }

    /** The ports of the broker's and the controller's own listeners (not the fixed one), for tests. */
    List<Integer> internalPorts() {
        List<Integer> ports = new ArrayList<>();
        for (String hostPort : (cluster.bootstrapServers() + "," + cluster.bootstrapControllers()).split(",")) {
            ports.add(Integer.parseInt(hostPort.substring(hostPort.lastIndexOf(':') + 1)));
        }
        return ports;
    }

    /** The temp folder holding the broker's metadata and log directories; gone after {@link #close()}. */
    Path dataDirectory() {
        return Path.of(cluster.nodes().baseDirectory());
    }

    /** Stops the broker and deletes its log directories. */
    @Override
    public void close() {
        try {
            cluster.close();
        } catch (Exception e) {
            throw new IllegalStateException("Embedded Kafka did not shut down cleanly: " + e.getMessage(), e);
        }
    }
}
