package dev.seqscore.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.offline.Backtest;
import dev.seqscore.avro.Alert;
import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.kafka.EmbeddedKafka;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.options.ConfigException;
import dev.seqscore.registry.Framing;
import dev.seqscore.registry.RegistryClient;
import dev.seqscore.registry.RegistryEndpoint;
import dev.seqscore.schemaregistry.ApicurioRegistry;
import dev.seqscore.scoring.ScoredEvent;
import dev.seqscore.testing.KafkaTopics;
import dev.seqscore.testing.RepoPaths;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.flink.api.common.JobID;
import org.apache.flink.client.program.ClusterClient;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.InjectClusterClient;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The job with {@code --schema-registry} against a real Apicurio Registry (a child process, Confluent-compatible API)
 * and the real broker: clicks framed with two writer-schema versions are scored exactly as the backtest scores the
 * same clicks; alerts, scores and dead letters come out framed and decode with nothing but the registry; bad
 * frames are dead-lettered with their own reasons; and once the registry is gone, clicks of ids already seen are
 * still scored while a new id is dead-lettered as REGISTRY_UNAVAILABLE, with no restart. Before that (the
 * registry process is killed in the last test), a registry that refuses an output schema or cannot be reached stops
 * the job before submission.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SchemaRegistryITCase {
    @TempDir
    Path checkpoints;

    @RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1)
            .setNumberSlotsPerTaskManager(2)
            .build());

    private static final int USERS = 40;
    private static final int EVENTS_PER_USER = 30;
    private static final int PARTITIONS = 2;
    private static final Duration AWAIT = Duration.ofMinutes(3);
    private static final Instant T0 = Instant.parse("2017-11-26T01:00:00Z");
    private static final byte[] KEY = "k".getBytes(StandardCharsets.UTF_8);
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * The second writer version: fields reordered, {@code price} removed (the reader's default fills it), an
     * optional {@code referrer} added (the reader skips it).
     */
    static final Schema CLICK_V2 = new Schema.Parser().parse("""
            {"type": "record", "name": "ClickEvent", "namespace": "dev.seqscore.avro", "fields": [
              {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
              {"name": "referrer", "type": ["null", "string"], "default": null},
              {"name": "user_id", "type": "string"},
              {"name": "session_id", "type": ["null", "string"], "default": null},
              {"name": "item_id", "type": "string"},
              {"name": "category_id", "type": "string", "default": ""},
              {"name": "event_type", "type": "string"}
            ]}""");
    /** A third version, registered but produced only once the registry is gone. */
    static final Schema CLICK_V3 = new Schema.Parser().parse("""
            {"type": "record", "name": "ClickEvent", "namespace": "dev.seqscore.avro", "fields": [
              {"name": "user_id", "type": "string"},
              {"name": "event_type", "type": "string"},
              {"name": "item_id", "type": "string"},
              {"name": "category_id", "type": "string", "default": ""},
              {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
              {"name": "channel", "type": "string", "default": "web"}
            ]}""");
    /** Not a ClickEvent the job can read: event_time is a string. */
    static final Schema INCOMPATIBLE = new Schema.Parser().parse("""
            {"type": "record", "name": "ClickEvent", "namespace": "dev.seqscore.avro", "fields": [
              {"name": "user_id", "type": "string"},
              {"name": "event_type", "type": "string"},
              {"name": "item_id", "type": "string"},
              {"name": "event_time", "type": "string"}
            ]}""");

    private static EmbeddedKafka kafka;
    private static ApicurioRegistry registry;
    private static ModelBundle bundle;

    @BeforeAll
    static void start() {
        registry = ApicurioRegistry.start();
        kafka = EmbeddedKafka.start();
        bundle = ModelBundle.load(RepoPaths.defaultModel());
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
    @Order(1)
    void aRegistryThatRefusesAnOutputSchemaOrCannotBeReachedStopsTheJobBeforeSubmission() throws Exception {
        String alerts = KafkaTopics.unique("alerts");
        String subject = alerts + "-value";
        RegistryClient client = new RegistryClient(RegistryEndpoint.of(registry.url()));
        client.register(subject, "{\"type\": \"record\", \"name\": \"Other\", \"fields\": "
                + "[{\"name\": \"x\", \"type\": \"int\"}]}");
        HttpResponse<String> config = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                        URI.create(registry.url() + "/config/" + subject))
                .header("Content-Type", "application/json")
                .PUT(HttpRequest.BodyPublishers.ofString("{\"compatibility\": \"BACKWARD\"}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(config.statusCode()).as(config.body()).isEqualTo(200);

        assertThatThrownBy(() -> SeqScoreJob.assemble(env(1), JobConfig.parse("--schema-registry", registry.url(),
                "--alerts-topic", alerts, "--checkpoint-dir", checkpoints.toUri().toString()), bundle))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("refuses Alert's schema")
                .hasMessageContaining(subject)
                .hasMessageContaining("HTTP 409");

        int closedPort;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            closedPort = s.getLocalPort();
        }
        assertThatThrownBy(() -> SeqScoreJob.assemble(env(1), JobConfig.parse(
                "--schema-registry", "http://127.0.0.1:" + closedPort,
                "--checkpoint-dir", checkpoints.toUri().toString()), bundle))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("cannot register")
                .hasMessageContaining("before submission");
    }

    @Test
    @Order(2)
    void framedClicksOfTwoWriterVersionsScoreAsBareAvroAndOutputDecodesWithTheRegistryAlone(
            @InjectClusterClient ClusterClient<?> flink) throws Exception {
        List<FileRecord> rows = syntheticClicks(USERS, EVENTS_PER_USER, T0, "u");
        Map<String, Double> thresholds = thresholdsWithAlerts(rows);
        Backtest.Result expected = Backtest.run(env(2), rows, "synthetic",
                PipelineSettings.builder(bundle).thresholds(thresholds).build());
        assertThat(expected.alerts()).as("the backtest raises alerts at these thresholds").isNotEmpty();

        String in = KafkaTopics.unique("clicks");
        String alerts = KafkaTopics.unique("alerts");
        String scores = KafkaTopics.unique("scores");
        String dlq = KafkaTopics.unique("dlq");
        kafka.createTopics(PARTITIONS, in, alerts, scores, dlq);

        RegistryClient client = new RegistryClient(RegistryEndpoint.of(registry.url()));
        int v1 = client.register(in + "-value", ClickEvent.getClassSchema().toString());
        int v2 = client.register(in + "-value", CLICK_V2.toString());
        int v3 = client.register(in + "-value", CLICK_V3.toString());
        int incompatible = client.register(KafkaTopics.unique("elsewhere") + "-value", INCOMPATIBLE.toString());
        assertThat(Set.of(v1, v2, v3, incompatible)).as("four distinct ids").hasSize(4);
        int unknown = 987_654;

        // Phase 1: the clicks in time order, each user's alternating between v1 and v2, then bad frames.
        List<FileRecord> sorted = inTimeOrder(rows);
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < sorted.size(); i++) {
            ClickEvent e = sorted.get(i).event();
            byte[] value = i % 2 == 0 ? Framing.frame(v1, ClickEventAvro.encode(e)) : Framing.frame(v2, encode(CLICK_V2, e));
            records.add(new ProducerRecord<>(in, e.getUserId().getBytes(StandardCharsets.UTF_8), value));
        }
        ClickEvent bad = sorted.get(0).event();
        byte[] unknownId = Framing.frame(unknown, ClickEventAvro.encode(bad));
        byte[] notFramed = ClickEventAvro.encode(bad);
        byte[] incompatibleFrame = Framing.frame(incompatible, encodeIncompatible(bad));
        records.add(new ProducerRecord<>(in, 0, KEY, unknownId));
        records.add(new ProducerRecord<>(in, 0, KEY, notFramed));
        records.add(new ProducerRecord<>(in, 1, KEY, incompatibleFrame));
        Instant later = sorted.get(sorted.size() - 1).event().getEventTime().plus(Duration.ofDays(2));
        for (int p = 0; p < PARTITIONS; p++) {
            records.add(flush(in, p, v1, later));
        }
        KafkaTopics.produce(kafka.bootstrapServers(), records);

        List<String> args = new ArrayList<>(List.of(
                "--bootstrap-servers", kafka.bootstrapServers(), "--schema-registry", registry.url(),
                "--input-topic", in, "--alerts-topic", alerts, "--scores-topic", scores, "--dead-letter-topic", dlq,
                "--group-id", KafkaTopics.unique("group"), "--transactional-id-prefix", KafkaTopics.unique("tx"),
                "--starting-offsets", "earliest", "--checkpoint-interval", "500ms",
                "--checkpoint-dir", checkpoints.toUri().toString()));
        thresholds.forEach((k, v) -> args.addAll(List.of("--threshold." + k, Double.toString(v))));
        StreamExecutionEnvironment env = env(2);
        SeqScoreJob.assemble(env, JobConfig.parse(args.toArray(new String[0])), bundle);
        JobClient job = env.executeAsync("schema-registry");
        try {
            // A consumer that knows nothing but the registry: the writer schema comes from the frame's id.
            RegistryOnlyConsumer consumer = new RegistryOnlyConsumer(registry.url());
            List<GenericRecord> scored = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores,
                    expected.scores().size(), AWAIT, consumer::decode);
            List<GenericRecord> alerted = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), alerts,
                    expected.alerts().size(), AWAIT, consumer::decode);
            List<GenericRecord> dead = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), dlq, 3, AWAIT,
                    consumer::decode);

            // (1) Every valid click scored exactly as the backtest scores the same clicks in bare Avro.
            assertThat(scored).hasSameSizeAs(expected.scores());
            Map<String, GenericRecord> scoreByEvent = scored.stream()
                    .collect(Collectors.toMap(SchemaRegistryITCase::eventKey, Function.identity()));
            assertThat(scoreByEvent).as("no score twice").hasSameSizeAs(scored);
            List<String> outputs = bundle.spec().outputs().stream().map(o -> o.name()).toList();
            for (ScoredEvent want : expected.scores()) {
                GenericRecord got = scoreByEvent.get(want.userId + "|" + want.eventTime + "|" + want.eventType + "|"
                        + want.itemId);
                assertThat(got).as("score of %s at %d", want.userId, want.eventTime).isNotNull();
                Map<String, Double> s = doubles(got.get("scores"));
                for (int o = 0; o < outputs.size(); o++) {
                    assertThat(s.get(outputs.get(o))).isCloseTo(want.scores[o], within(1e-5));
                }
                assertThat(((Number) got.get("window_length")).intValue()).isEqualTo(want.windowLength);
            }

            // (2) Alerts framed, decoded with the registry alone, the backtest's alerts.
            Map<String, GenericRecord> alertById = alerted.stream()
                    .collect(Collectors.toMap(a -> a.get("alert_id").toString(), Function.identity()));
            assertThat(alertById).as("no alert twice").hasSameSizeAs(alerted);
            assertThat(alertById.keySet()).containsExactlyInAnyOrderElementsOf(
                    expected.alerts().stream().map(Alert::getAlertId).toList());
            for (Alert want : expected.alerts()) {
                GenericRecord got = alertById.get(want.getAlertId());
                assertThat(got.get("user_id").toString()).isEqualTo(want.getUserId());
                assertThat(got.get("alert_type").toString()).isEqualTo(want.getAlertType());
                assertThat((Double) got.get("score")).isCloseTo(want.getScore(), within(1e-5));
            }
            assertThat(subjects()).contains(alerts + "-value", scores + "-value", dlq + "-value");

            // (3) Bad frames dead-lettered with their own reasons, raw bytes as read.
            Map<String, GenericRecord> deadByReason = dead.stream()
                    .collect(Collectors.toMap(d -> d.get("reason").toString(), Function.identity()));
            assertThat(deadByReason.keySet())
                    .containsExactlyInAnyOrder("UNKNOWN_SCHEMA_ID", "NOT_FRAMED", "INCOMPATIBLE_SCHEMA");
            assertThat(bytes(deadByReason.get("UNKNOWN_SCHEMA_ID").get("raw"))).isEqualTo(unknownId);
            assertThat(bytes(deadByReason.get("NOT_FRAMED").get("raw"))).isEqualTo(notFramed);
            assertThat(bytes(deadByReason.get("INCOMPATIBLE_SCHEMA").get("raw"))).isEqualTo(incompatibleFrame);
            assertThat(deadByReason.get("UNKNOWN_SCHEMA_ID").get("detail").toString()).contains("987654");
            assertThat(deadByReason.get("INCOMPATIBLE_SCHEMA").get("detail").toString()).contains("event_time");

            // Phase 2: the registry goes away. Ids already seen go on being scored; a new one is dead-lettered.
            registry.close();
            List<FileRecord> more = syntheticClicks(5, 6, later.plus(Duration.ofHours(1)), "after-outage-");
            List<ProducerRecord<byte[], byte[]>> phase2 = new ArrayList<>();
            List<FileRecord> moreSorted = inTimeOrder(more);
            for (int i = 0; i < moreSorted.size(); i++) {
                ClickEvent e = moreSorted.get(i).event();
                byte[] value = i % 2 == 0 ? Framing.frame(v2, encode(CLICK_V2, e)) : Framing.frame(v1, ClickEventAvro.encode(e));
                phase2.add(new ProducerRecord<>(in, e.getUserId().getBytes(StandardCharsets.UTF_8), value));
            }
            byte[] newId = Framing.frame(v3, encode(CLICK_V3, moreSorted.get(0).event()));
            phase2.add(new ProducerRecord<>(in, 0, KEY, newId));
            Instant evenLater = moreSorted.get(moreSorted.size() - 1).event().getEventTime().plus(Duration.ofDays(2));
            for (int p = 0; p < PARTITIONS; p++) {
                phase2.add(flush(in, p, v1, evenLater));
            }
            KafkaTopics.produce(kafka.bootstrapServers(), phase2);

            // The earlier flush events are scored now too (the watermark passes them), one per partition.
            List<GenericRecord> scoredAfter = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores,
                    expected.scores().size() + more.size() + PARTITIONS, AWAIT, SchemaRegistryITCase::decodeOwnSchema);
            assertThat(scoredAfter.stream().map(SchemaRegistryITCase::eventKey))
                    .as("every click of an id seen before the outage is scored")
                    .containsAll(more.stream().map(r -> r.event().getUserId() + "|"
                            + r.event().getEventTime().toEpochMilli() + "|" + r.event().getEventType() + "|"
                            + r.event().getItemId()).toList());
            List<GenericRecord> deadAfter = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), dlq, 4, AWAIT,
                    SchemaRegistryITCase::decodeOwnSchema);
            GenericRecord unavailable = deadAfter.stream()
                    .filter(d -> d.get("reason").toString().equals("REGISTRY_UNAVAILABLE")).findFirst().orElseThrow();
            assertThat(bytes(unavailable.get("raw"))).isEqualTo(newId);

            assertThat(numRestarts(flink, job.getJobID())).as("restarts").isZero();
        } finally {
            job.cancel().get();
        }
    }

    /**
     * Reads framed records the way a shop's registry-aware consumer does: the id in the frame names the writer
     * schema, fetched from the registry; nothing from this repository's schemas is used.
     */
    static final class RegistryOnlyConsumer {
        private final RegistryClient client;
        private final Map<Integer, Schema> schemas = new HashMap<>();

        RegistryOnlyConsumer(String url) {
            this.client = new RegistryClient(RegistryEndpoint.of(url));
        }

        GenericRecord decode(ConsumerRecord<byte[], byte[]> r) {
            byte[] v = r.value();
            assertThat(Framing.isFramed(v)).as("framed output").isTrue();
            Schema writer = schemas.computeIfAbsent(Framing.schemaId(v), id -> {
                try {
                    return new Schema.Parser().parse(client.schemaById(id).schema());
                } catch (Exception e) {
                    throw new AssertionError("schema id " + id + " is not in the registry: " + e, e);
                }
            });
            return read(writer, v);
        }
    }

    /** After the registry is gone: the output's own schemas, from the ids the job was built with. */
    private static GenericRecord decodeOwnSchema(ConsumerRecord<byte[], byte[]> r) {
        String topic = r.topic();
        Schema s = topic.startsWith("scores") ? dev.seqscore.avro.Score.getClassSchema()
                : topic.startsWith("dlq") ? dev.seqscore.avro.DeadLetter.getClassSchema() : Alert.getClassSchema();
        assertThat(Framing.isFramed(r.value())).as("framed output").isTrue();
        return read(s, r.value());
    }

    private static GenericRecord read(Schema writer, byte[] framed) {
        try {
            return new GenericDatumReader<GenericRecord>(writer).read(null, DecoderFactory.get()
                    .binaryDecoder(framed, Framing.HEADER_LENGTH, framed.length - Framing.HEADER_LENGTH, null));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String eventKey(GenericRecord s) {
        return s.get("user_id") + "|" + s.get("event_time") + "|" + s.get("event_type") + "|" + s.get("item_id");
    }

    private static Map<String, Double> doubles(Object avroMap) {
        Map<String, Double> out = new TreeMap<>();
        ((Map<?, ?>) avroMap).forEach((k, v) -> out.put(k.toString(), (Double) v));
        return out;
    }

    private static byte[] bytes(Object avroBytes) {
        return AvroRecords.bytes((java.nio.ByteBuffer) avroBytes);
    }

    private static byte[] encode(Schema writer, ClickEvent e) {
        GenericRecord g = new GenericData.Record(writer);
        for (Schema.Field f : writer.getFields()) {
            switch (f.name()) {
                case "event_time" -> g.put(f.name(), e.getEventTime().toEpochMilli());
                case "referrer" -> g.put(f.name(), "https://example.test/" + e.getItemId());
                case "channel" -> g.put(f.name(), "app");
                default -> g.put(f.name(), e.get(f.name()));
            }
        }
        return write(writer, g);
    }

    private static byte[] encodeIncompatible(ClickEvent e) {
        GenericRecord g = new GenericData.Record(INCOMPATIBLE);
        g.put("user_id", e.getUserId());
        g.put("event_type", e.getEventType());
        g.put("item_id", e.getItemId());
        g.put("event_time", e.getEventTime().toString());
        return write(INCOMPATIBLE, g);
    }

    private static byte[] write(Schema schema, GenericRecord g) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            BinaryEncoder enc = EncoderFactory.get().directBinaryEncoder(out, null);
            new GenericDatumWriter<GenericRecord>(schema).write(g, enc);
            enc.flush();
            return out.toByteArray();
        } catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    /** Deterministic clicks: each user a few sessions of views, carts, favs and buys over some hours. */
    static List<FileRecord> syntheticClicks(int users, int perUser, Instant start, String prefix) {
        Random rnd = new Random(users * 31L + perUser);
        String[] types = {"view", "view", "view", "view", "cart", "fav", "buy"};
        List<FileRecord> out = new ArrayList<>();
        long line = 0;
        for (int u = 0; u < users; u++) {
            long t = start.toEpochMilli() + rnd.nextInt(3_600_000);
            for (int i = 0; i < perUser; i++) {
                t += rnd.nextInt(10) == 0 ? 3_600_000L + rnd.nextInt(3_600_000) : 5_000L + rnd.nextInt(300_000);
                ClickEvent e = ClickEvent.newBuilder()
                        .setUserId(prefix + u)
                        .setEventType(types[rnd.nextInt(types.length)])
                        .setItemId("i" + rnd.nextInt(60))
                        .setCategoryId("c" + rnd.nextInt(8))
                        .setEventTime(Instant.ofEpochMilli(t))
                        .setSessionId(rnd.nextBoolean() ? "s" + u : null)
                        .build();
                out.add(new FileRecord(++line, "synthetic", Long.toString(t), e, null, null));
            }
        }
        return out;
    }

    private static List<FileRecord> inTimeOrder(List<FileRecord> rows) {
        List<FileRecord> sorted = new ArrayList<>(rows);
        sorted.sort(Comparator.comparing((FileRecord r) -> r.event().getEventTime())
                .thenComparingLong(FileRecord::lineNumber));
        return sorted;
    }

    /** Thresholds at the 97th percentile of the model's own scores of these clicks, so that alerts exist. */
    private Map<String, Double> thresholdsWithAlerts(List<FileRecord> rows) throws Exception {
        Backtest.Result probe = Backtest.run(env(2), rows, "synthetic", PipelineSettings.builder(bundle).build());
        Map<String, Double> thresholds = new TreeMap<>();
        for (int o = 0; o < bundle.spec().outputs().size(); o++) {
            int out = o;
            double[] v = probe.scores().stream().mapToDouble(s -> s.scores[out]).sorted().toArray();
            int k = (int) Math.min(v.length - 2, Math.floor(0.97 * v.length));
            int j = k + 1;
            while (j < v.length - 1 && v[j] - v[k] < 1e-4) {
                j++;
            }
            thresholds.put(bundle.spec().outputs().get(o).name(), (v[k] + v[j]) / 2);
        }
        return thresholds;
    }

    private static ProducerRecord<byte[], byte[]> flush(String topic, int partition, int schemaId, Instant at) {
        ClickEvent e = ClickEvent.newBuilder().setUserId("flush-" + partition).setEventType("view").setItemId("i1")
                .setCategoryId("c1").setEventTime(at).build();
        return new ProducerRecord<>(topic, partition, KEY, Framing.frame(schemaId, ClickEventAvro.encode(e)));
    }

    private static List<String> subjects() throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(
                HttpRequest.newBuilder(URI.create(registry.url() + "/subjects")).build(),
                HttpResponse.BodyHandlers.ofString());
        List<String> out = new ArrayList<>();
        JSON.readTree(r.body()).forEach(n -> out.add(n.asText()));
        return out;
    }

    /**
     * Restarts of the job: Flink's numRestarts metric (polled: the REST API's metric fetcher may not have it yet),
     * and the job's exception history, where every failure that restarted it is recorded.
     */
    private static long numRestarts(ClusterClient<?> flink, JobID job) throws Exception {
        String base = flink.getWebInterfaceURL() + "/jobs/" + job;
        JsonNode history = get(base + "/exceptions").path("exceptionHistory").path("entries");
        assertThat(history).as("failures in the job's exception history").isEmpty();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (System.nanoTime() < deadline) {
            JsonNode metrics = get(base + "/metrics?get=numRestarts");
            if (metrics.size() > 0) {
                return Long.parseLong(metrics.get(0).get("value").asText());
            }
            Thread.sleep(500);
        }
        throw new AssertionError("no numRestarts metric for " + job + " within 30 s");
    }

    private static JsonNode get(String url) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as("GET %s: %s", url, r.body()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    private static StreamExecutionEnvironment env(int parallelism) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(parallelism);
        return env;
    }
}
