package dev.seqscore.tools.replay;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.kafka.EmbeddedKafkaExtension;

class ReplayTest {

    /** Grouped by user like the real sample, not by time; one bad type, one short row. */
    private static final String TAOBAO = """
            1,100,10,pv,1511544070
            1,101,10,cart,1511544010
            1,100,10,zzz,1511544080
            2,200,20,pv,1511544000
            2,201,20
            2,201,20,buy,1511544090
            3,300,30,fav,1511544050
            """;

    private record Run(int exit, String out, String err) {}

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = Replay.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static Path taobaoFile(Path dir) throws IOException {
        return Files.writeString(dir.resolve("sample.csv"), TAOBAO);
    }

    @Nested
    class AgainstABroker {
        @RegisterExtension
        static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();

        @Test
        void sendsValidRowsInTimeOrderKeyedByUserAndCountsRejections(@TempDir Path dir) throws Exception {
            kafka.createTopics(1, "replayed");

            Run r = run("--input", taobaoFile(dir).toString(), "--format", "taobao",
                    "--bootstrap-servers", kafka.bootstrapServers(), "--topic", "replayed");

            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(r.out()).contains("sent 5 events to replayed", "rejected 2 rows")
                    .contains("unknown_event_type", "line 3: unknown event type 'zzz'")
                    .contains("wrong_column_count", "line 5: wrong column count: 3, expected 5");
            List<ConsumerRecord<byte[], byte[]>> records = consume("replayed", 5);
            // One partition, so the topic order is the send order: event time across users.
            assertThat(records).extracting(c -> new String(c.key(), StandardCharsets.UTF_8))
                    .containsExactly("2", "1", "3", "1", "2");
            List<ClickEvent> events = new ArrayList<>();
            for (ConsumerRecord<byte[], byte[]> c : records) {
                events.add(ClickEventAvro.decode(c.value()));
            }
            assertThat(events).containsExactly(
                    event("2", "view", "200", "20", 1511544000),
                    event("1", "cart", "101", "10", 1511544010),
                    event("3", "fav", "300", "30", 1511544050),
                    event("1", "view", "100", "10", 1511544070),
                    event("2", "buy", "201", "20", 1511544090));
        }

        @Test
        void keepsFileOrderWhenNotSortingAndStopsAtTheLimit(@TempDir Path dir) throws Exception {
            kafka.createTopics(1, "limited");

            Run r = run("--input", taobaoFile(dir).toString(), "--format", "taobao", "--sort-by-time", "false",
                    "--limit", "3", "--key", "none", "--bootstrap-servers", kafka.bootstrapServers(),
                    "--topic", "limited");

            assertThat(r.exit()).as(r.err()).isZero();
            List<ConsumerRecord<byte[], byte[]>> records = consume("limited", 3);
            assertThat(records).allMatch(c -> c.key() == null);
            assertThat(records).extracting(c -> ClickEventAvro.decode(c.value()).getItemId())
                    .containsExactly("100", "101", "200");
        }

        @Test
        void pacesToTheRequestedRate(@TempDir Path dir) throws Exception {
            StringBuilder rows = new StringBuilder();
            for (int i = 0; i < 21; i++) {
                rows.append("7,").append(i).append(",1,pv,").append(1511544000 + i).append('\n');
            }
            Path file = Files.writeString(dir.resolve("paced.csv"), rows);
            kafka.createTopics(1, "paced");

            long t0 = System.nanoTime();
            Run r = run("--input", file.toString(), "--format", "taobao", "--rate", "100",
                    "--bootstrap-servers", kafka.bootstrapServers(), "--topic", "paced");
            long elapsedMs = (System.nanoTime() - t0) / 1_000_000;

            assertThat(r.exit()).as(r.err()).isZero();
            // Event i is due at i/rate: the 21st cannot leave before 200 ms. (Only a lower bound is deterministic.)
            assertThat(elapsedMs).isGreaterThanOrEqualTo(200);
            assertThat(consume("paced", 21)).hasSize(21);
        }

        private static List<ConsumerRecord<byte[], byte[]>> consume(String topic, int expected) {
            Properties p = new Properties();
            p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers());
            p.put(ConsumerConfig.GROUP_ID_CONFIG, "replay-test-" + UUID.randomUUID());
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
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
                // Nothing beyond what was expected: poll once more after reaching the count.
                consumer.poll(Duration.ofMillis(200)).forEach(out::add);
            }
            assertThat(out).hasSize(expected);
            return out;
        }
    }

    @Nested
    class CommandLine {
        @Test
        void helpListsEveryFlagWithItsDefault() {
            Run r = run("--help");

            assertThat(r.exit()).isZero();
            assertThat(r.out()).contains("--input FILE", "--format", "taobao|rees46|canonical",
                    "--bootstrap-servers H:P", "(default: localhost:9092)", "--topic T", "(default: clicks)",
                    "--rate N", "0 = as fast as possible (default: 0)", "--limit N", "--sort-by-time true|false",
                    "(default: true)", "--key user_id|none", "(default: user_id)");
        }

        @Test
        void unknownFlagExitsTwoNamingIt(@TempDir Path dir) throws IOException {
            Run r = run("--input", taobaoFile(dir).toString(), "--format", "taobao", "--bogus", "1");

            assertThat(r.exit()).isEqualTo(2);
            assertThat(r.err()).startsWith("replay: unknown option --bogus").contains("Usage: bin/seqscore replay");
        }

        @Test
        void badValuesExitTwoNamingTheFlag(@TempDir Path dir) throws IOException {
            String file = taobaoFile(dir).toString();
            assertThat(run("--format", "taobao").err()).startsWith("replay: --input is required");
            assertThat(run("--input", dir.resolve("missing.csv").toString(), "--format", "taobao").err())
                    .startsWith("replay: --input: cannot read");
            assertThat(run("--input", file).err()).startsWith("replay: --format is required");
            assertThat(run("--input", file, "--format", "xml").err())
                    .startsWith("replay: --format: unknown format 'xml'; valid formats are taobao, rees46, canonical");
            assertThat(run("--input", file, "--format", "taobao", "--rate", "fast").err())
                    .startsWith("replay: --rate: 'fast' is not a number");
            assertThat(run("--input", file, "--format", "taobao", "--rate", "-1").err()).startsWith("replay: --rate");
            assertThat(run("--input", file, "--format", "taobao", "--limit", "-5").err())
                    .startsWith("replay: --limit: must be >= 0");
            assertThat(run("--input", file, "--format", "taobao", "--sort-by-time", "yes").err())
                    .startsWith("replay: --sort-by-time: 'yes' is not true or false");
            assertThat(run("--input", file, "--format", "taobao", "--key", "item_id").err())
                    .startsWith("replay: --key: 'item_id' is not one of user_id, none");
            assertThat(run("--input", file, "--format", "taobao", "--topic").err())
                    .startsWith("replay: --topic needs a value");
            assertThat(run("--input", file, "--format", "taobao", "--format", "rees46").exit()).isEqualTo(2);
        }

        @Test
        void acceptsFlagEqualsValueAndDefaults(@TempDir Path dir) throws Exception {
            Replay.Options o = Replay.parse(new String[] {"--input=" + taobaoFile(dir), "--format=TAOBAO"});

            assertThat(o.bootstrapServers()).isEqualTo("localhost:9092");
            assertThat(o.topic()).isEqualTo("clicks");
            assertThat(o.rate()).isZero();
            assertThat(o.limit()).isZero();
            assertThat(o.sortByTime()).isTrue();
            assertThat(o.key()).isEqualTo(Replay.KeyBy.USER_ID);
        }
    }

    private static ClickEvent event(String user, String type, String item, String category, long seconds) {
        return new ClickEvent(user, type, item, category, Instant.ofEpochSecond(seconds), null, null);
    }
}
