package dev.seqscore.e2e.kafka;

import dev.seqscore.e2e.os.ChildProcess;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.Uuid;

/**
 * A real single-node Kafka broker (KRaft, combined broker and controller) in an OS process of its own, started with
 * Kafka's own {@code kafka.Kafka} main from the Maven jars, so that it can be killed and restarted on the same log
 * directory and port, as a broker on a real machine would be. Formatted once, with {@code transaction.version=1}
 * (Flink's exactly-once Kafka sink leaves version-2 transactions open, see docs/design.md), every listener on
 * 127.0.0.1.
 *
 * <pre>{@code
 * try (BrokerProcess broker = BrokerProcess.format(dir, classpath)) {
 *     broker.start();
 *     broker.createTopics(2, "clicks");
 *     broker.kill();   // kill -9
 *     broker.start();  // same data, same port
 * }
 * }</pre>
 */
public final class BrokerProcess implements AutoCloseable {
    private static final String MAIN = "kafka.Kafka";
    private static final String STORAGE_TOOL = "kafka.tools.StorageTool";
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(120);

    private final Path dir;
    private final String classpath;
    private final int port;
    private final Path properties;
    private ChildProcess process;
    private int starts;

    private BrokerProcess(Path dir, String classpath, int port) {
        this.dir = dir;
        this.classpath = classpath;
        this.port = port;
        this.properties = dir.resolve("server.properties");
    }

    /**
     * Writes the broker's configuration (free ports, log directory under {@code dir}) and formats its storage once.
     *
     * @param classpath Kafka's jars and a log4j2 backend (the e2e module's {@code target/broker-classpath.txt})
     */
    public static BrokerProcess format(Path dir, List<Path> classpath) throws IOException, InterruptedException {
        Files.createDirectories(dir);
        BrokerProcess b = new BrokerProcess(dir.toAbsolutePath(),
                classpath.stream().map(Path::toString).collect(Collectors.joining(java.io.File.pathSeparator)),
                ChildProcess.freePort());
        b.writeConfig(ChildProcess.freePort());
        List<String> cmd = b.javaCommand("-Xmx256m");
        cmd.addAll(List.of(STORAGE_TOOL, "format", "--config", b.properties.toString(),
                "--cluster-id", Uuid.randomUuid().toString(), "--feature", "transaction.version=1"));
        ChildProcess f = ChildProcess.start("kafka-storage-format", cmd, b.dir, b.dir.resolve("format.out"), Map.of());
        if (!f.awaitExit(Duration.ofSeconds(120)) || f.exitValue() != 0) {
            f.kill();
            throw new IllegalStateException("formatting the broker's storage failed:\n" + f.tail(40));
        }
        return b;
    }

    /** Reads a classpath file written by maven-dependency-plugin's build-classpath. */
    public static List<Path> classpath(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IllegalStateException(file + " is missing: `mvn package` of the e2e module writes it");
        }
        List<Path> out = new ArrayList<>();
        for (String entry : Files.readString(file).trim().split(java.io.File.pathSeparator)) {
            out.add(Path.of(entry));
        }
        return out;
    }

    private void writeConfig(int controllerPort) throws IOException {
        String props = String.join("\n",
                "# Written by BrokerProcess: one KRaft node, broker and controller, on 127.0.0.1 only.",
                "process.roles=broker,controller",
                "node.id=1",
                "controller.quorum.voters=1@127.0.0.1:" + controllerPort,
                "listeners=PLAINTEXT://127.0.0.1:" + port + ",CONTROLLER://127.0.0.1:" + controllerPort,
                "advertised.listeners=PLAINTEXT://127.0.0.1:" + port,
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "log.dirs=" + dir.resolve("data"),
                // One node cannot meet the default replication factor of 3 of the internal topics.
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=5",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=5",
                "min.insync.replicas=1",
                "default.replication.factor=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                // Flink's exactly-once sink keeps a transaction open from one checkpoint to the next.
                "transaction.max.timeout.ms=900000",
                "");
        Files.writeString(properties, props);
        Files.writeString(dir.resolve("log4j2.properties"), String.join("\n",
                "rootLogger.level = INFO",
                "rootLogger.appenderRef.file.ref = file",
                "appender.file.type = File",
                "appender.file.name = file",
                "appender.file.fileName = " + dir.resolve("broker.log"),
                "appender.file.append = true",
                "appender.file.layout.type = PatternLayout",
                "appender.file.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c{1} - %m%n",
                // Every client connection logs its config at INFO.
                "logger.clients.name = org.apache.kafka.clients",
                "logger.clients.level = WARN",
                ""));
    }

    private List<String> javaCommand(String heap) {
        List<String> cmd = new ArrayList<>(List.of(ChildProcess.javaBin(), heap, "-XX:+UseG1GC",
                "-Djava.io.tmpdir=" + dir,
                "-Dkafka.logs.dir=" + dir,
                "-Dlog4j2.configurationFile=" + dir.resolve("log4j2.properties").toUri(),
                "-cp", classpath));
        return cmd;
    }

    /** Starts the broker process and returns once it answers clients; fails with its log tail if it does not. */
    public synchronized void start() throws IOException, InterruptedException {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("broker already running: " + process);
        }
        List<String> cmd = javaCommand("-Xmx768m");
        cmd.add(MAIN);
        cmd.add(properties.toString());
        starts++;
        process = ChildProcess.start("kafka-broker-" + starts, cmd, dir, dir.resolve("broker.out"), Map.of());
        awaitReady();
    }

    /** {@code kill -9} of the broker; its data stays for the next {@link #start()}. */
    public synchronized void kill() {
        if (process != null) {
            process.kill();
        }
    }

    /** An orderly shutdown (SIGTERM: controlled shutdown, logs flushed), then {@code kill -9} after a minute. */
    public synchronized void stop() {
        if (process != null) {
            process.stop(Duration.ofSeconds(60));
        }
    }

    public String bootstrapServers() {
        return "127.0.0.1:" + port;
    }

    public long pid() {
        return process == null ? -1 : process.pid();
    }

    public boolean isAlive() {
        return process != null && process.isAlive();
    }

    public Path dir() {
        return dir;
    }

    private void awaitReady() throws InterruptedException {
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        String last = "no answer";
        try (Admin admin = admin()) {
            while (System.nanoTime() < deadline) {
                if (!process.isAlive()) {
                    throw new IllegalStateException("the broker exited with " + process.exitValue() + ":\n"
                            + process.tail(40) + "\n" + ChildProcess.tail(dir.resolve("broker.log"), 40));
                }
                try {
                    int nodes = admin.describeCluster().nodes().get(5, TimeUnit.SECONDS).size();
                    if (nodes == 1) {
                        return;
                    }
                } catch (ExecutionException | TimeoutException e) {
                    last = e.toString();
                }
                Thread.sleep(200); // poll interval of a deadline loop
            }
        }
        throw new IllegalStateException("the broker did not answer within " + READY_TIMEOUT + " (" + last + "):\n"
                + ChildProcess.tail(dir.resolve("broker.log"), 40));
    }

    public Admin admin() {
        return Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers(),
                AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000,
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000));
    }

    /** Creates the topics (replication 1) and waits until every partition has a leader. */
    public void createTopics(int partitions, String... names) throws InterruptedException {
        try (Admin admin = admin()) {
            List<NewTopic> topics = new ArrayList<>();
            for (String n : names) {
                topics.add(new NewTopic(n, partitions, (short) 1));
            }
            admin.createTopics(topics).all().get(60, TimeUnit.SECONDS);
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (System.nanoTime() < deadline) {
                Map<String, TopicDescription> d;
                try {
                    d = admin.describeTopics(Set.of(names)).allTopicNames().get(30, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    // A topic just created may not be in the metadata the broker answers from yet.
                    if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
                        throw e;
                    }
                    Thread.sleep(100); // poll interval of a deadline loop
                    continue;
                }
                if (d.values().stream().flatMap(t -> t.partitions().stream())
                        .allMatch(p -> p.leader() != null && !p.leader().isEmpty())) {
                    return;
                }
                Thread.sleep(100); // poll interval of a deadline loop
            }
            throw new IllegalStateException("topics " + List.of(names) + " have no leaders after 60 s");
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException("could not create topics " + List.of(names) + ": " + e, e);
        }
    }

    /** Kills the broker; its directory, with logs, stays for diagnosis. */
    @Override
    public synchronized void close() {
        kill();
    }
}
