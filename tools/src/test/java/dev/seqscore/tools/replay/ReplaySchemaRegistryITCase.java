package dev.seqscore.tools.replay;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.kafka.EmbeddedKafka;
import dev.seqscore.registry.Framing;
import dev.seqscore.registry.RegistryClient;
import dev.seqscore.registry.RegistryEndpoint;
import dev.seqscore.schemaregistry.ApicurioRegistry;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import org.apache.avro.Schema;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code replay --schema-registry} against a real Apicurio Registry: ClickEvent registered, every value framed. */
class ReplaySchemaRegistryITCase {
    private static final String TAOBAO = "1,100,10,pv,1511544070\n2,200,20,pv,1511544000\n1,101,10,cart,1511544010\n";

    private static EmbeddedKafka kafka;
    private static ApicurioRegistry registry;

    @BeforeAll
    static void start() {
        registry = ApicurioRegistry.start();
        kafka = EmbeddedKafka.start();
    }

    @AfterAll
    static void stop() {
        if (kafka != null) {
            kafka.close();
        }
        if (registry != null) {
            registry.close();
        }
    }

    @Test
    void registersClickEventUnderTheTopicsSubjectAndFramesEveryValueWithItsId(@TempDir Path dir) throws Exception {
        kafka.createTopics(1, "framed-clicks");
        Path file = Files.writeString(dir.resolve("sample.csv"), TAOBAO);

        Run r = run("--input", file.toString(), "--format", "taobao", "--bootstrap-servers", kafka.bootstrapServers(),
                "--topic", "framed-clicks", "--schema-registry", registry.url());

        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("under framed-clicks-value", "sent 3 events");
        List<ConsumerRecord<byte[], byte[]>> records = consume("framed-clicks", 3);
        assertThat(records).hasSize(3);
        int id = Framing.schemaId(records.get(0).value());
        Schema registered = new Schema.Parser().parse(
                new RegistryClient(RegistryEndpoint.of(registry.url())).schemaById(id).schema());
        assertThat(registered).isEqualTo(ClickEvent.getClassSchema());
        for (ConsumerRecord<byte[], byte[]> c : records) {
            assertThat(Framing.isFramed(c.value())).isTrue();
            assertThat(Framing.schemaId(c.value())).isEqualTo(id);
            ClickEvent e = ClickEventAvro.decode(Arrays.copyOfRange(c.value(), Framing.HEADER_LENGTH,
                    c.value().length));
            assertThat(new String(c.key(), StandardCharsets.UTF_8)).isEqualTo(e.getUserId());
        }
    }

    @Test
    void anUnreachableRegistryFailsBeforeSendingAnything(@TempDir Path dir) throws Exception {
        Path file = Files.writeString(dir.resolve("sample.csv"), TAOBAO);
        int closed;
        try (ServerSocket s = new ServerSocket(0)) {
            closed = s.getLocalPort();
        }
        Run r = run("--input", file.toString(), "--format", "taobao", "--bootstrap-servers", kafka.bootstrapServers(),
                "--topic", "never-written", "--schema-registry", "http://127.0.0.1:" + closed);

        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("cannot register ClickEvent's schema for subject never-written-value");
    }

    @Test
    void credentialsInTheUrlAreRefused(@TempDir Path dir) throws Exception {
        Path file = Files.writeString(dir.resolve("sample.csv"), TAOBAO);
        Run r = run("--input", file.toString(), "--format", "taobao", "--schema-registry", "http://u:secret@h:8081");

        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("--schema-registry-properties").doesNotContain("secret@");
    }

    private record Run(int exit, String out, String err) {}

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = Replay.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static List<ConsumerRecord<byte[], byte[]>> consume(String topic, int expected) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
        p.put(ConsumerConfig.GROUP_ID_CONFIG, "replay-registry-test-" + UUID.randomUUID());
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (out.size() < expected && System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            }
        }
        return out;
    }
}
