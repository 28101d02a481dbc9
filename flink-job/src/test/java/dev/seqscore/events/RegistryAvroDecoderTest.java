package dev.seqscore.events;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import dev.seqscore.avro.ClickEvent;
import dev.seqscore.registry.Framing;
import dev.seqscore.registry.RegistryEndpoint;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The decoder's verdicts and its cache, against a loopback HTTP stub that answers {@code GET /schemas/ids/{id}}
 * as the Confluent-compatible API does and can be made to fail or hang (the failure modes a real registry shows
 * only under an outage; {@code SchemaRegistryITCase} runs the same decoder against a real Apicurio Registry).
 */
class RegistryAvroDecoderTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Schema V2 = new Schema.Parser().parse("""
            {"type": "record", "name": "ClickEvent", "namespace": "dev.seqscore.avro", "fields": [
              {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
              {"name": "user_id", "type": "string"},
              {"name": "extra", "type": ["null", "string"], "default": null},
              {"name": "item_id", "type": "string"},
              {"name": "event_type", "type": "string"}
            ]}""");
    private static final Schema NOT_A_CLICK = new Schema.Parser().parse("""
            {"type": "record", "name": "Alert", "namespace": "dev.seqscore.avro", "fields": [
              {"name": "alert_id", "type": "string"}]}""");

    private HttpServer server;
    private final Map<Integer, String> schemas = new ConcurrentHashMap<>();
    private final AtomicInteger requests = new AtomicInteger();
    private volatile int status = 200;
    private volatile long delayMs;
    private final AtomicLong now = new AtomicLong(1_000_000);

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/schemas/ids/", ex -> {
            requests.incrementAndGet();
            try {
                Thread.sleep(delayMs);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            int id = Integer.parseInt(ex.getRequestURI().getPath().substring("/schemas/ids/".length()));
            String schema = schemas.get(id);
            int code = status != 200 ? status : schema == null ? 404 : 200;
            String body = code == 200 ? JSON.createObjectNode().put("schema", schema).toString()
                    : code == 404 ? "{\"error_code\":40403,\"message\":\"Schema " + id + " not found\"}"
                    : "{\"error_code\":50001,\"message\":\"boom\"}";
            byte[] b = body.getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(code, b.length);
            ex.getResponseBody().write(b);
            ex.close();
        });
        // A thread per request: a hanging answer must not hold up the next request.
        server.setExecutor(java.util.concurrent.Executors.newCachedThreadPool());
        server.start();
        schemas.put(1, ClickEvent.getClassSchema().toString());
        schemas.put(2, V2.toString());
        schemas.put(3, NOT_A_CLICK.toString());
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    private RegistryAvroDecoder decoder(String requestTimeoutMs) {
        RegistryEndpoint endpoint = RegistryEndpoint.from("http://127.0.0.1:" + server.getAddress().getPort(), null,
                Map.of("SEQSCORE_SCHEMA_REGISTRY_REQUEST_TIMEOUT_MS", requestTimeoutMs));
        return new RegistryAvroDecoder(endpoint, now::get);
    }

    private static ClickEvent click() {
        return ClickEvent.newBuilder().setUserId("alice").setEventType("view").setItemId("i1").setCategoryId("c1")
                .setEventTime(Instant.parse("2017-11-26T01:00:00Z")).setPrice(9.5).build();
    }

    private static byte[] v2(ClickEvent e) throws IOException {
        GenericRecord g = new GenericData.Record(V2);
        g.put("event_time", e.getEventTime().toEpochMilli());
        g.put("user_id", e.getUserId());
        g.put("extra", "x");
        g.put("item_id", e.getItemId());
        g.put("event_type", e.getEventType());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BinaryEncoder enc = EncoderFactory.get().directBinaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(V2).write(g, enc);
        enc.flush();
        return Framing.frame(2, out.toByteArray());
    }

    @Test
    void eachWriterVersionIsResolvedToTheReaderSchemaAndFetchedOnce() throws Exception {
        RegistryAvroDecoder d = decoder("2000");
        byte[] v1 = Framing.frame(1, ClickEventAvro.encode(click()));

        InputRecord a = d.decode(v1, "clicks", 0, 7);
        InputRecord b = d.decode(v2(click()), "clicks", 0, 8);
        d.decode(v1, "clicks", 0, 9);
        d.decode(v2(click()), "clicks", 0, 10);

        assertThat(a.isDecoded()).as(String.valueOf(a.decodeError)).isTrue();
        assertThat(a.price).isEqualTo(9.5);
        assertThat(a.raw).isEqualTo(v1);
        assertThat(b.isDecoded()).as(String.valueOf(b.decodeError)).isTrue();
        assertThat(b.userId).isEqualTo("alice");
        assertThat(b.eventTime).isEqualTo(a.eventTime);
        assertThat(b.categoryId).as("missing in v2: the reader's default").isEmpty();
        assertThat(b.price).as("missing in v2: the reader's default").isNull();
        assertThat(requests).as("one request per id").hasValue(2);
    }

    @Test
    void anOutageDoesNotStopIdsAlreadySeenAndIsNotAskedAgainAtOnce() throws Exception {
        RegistryAvroDecoder d = decoder("2000");
        byte[] v1 = Framing.frame(1, ClickEventAvro.encode(click()));
        assertThat(d.decode(v1, "clicks", 0, 1).isDecoded()).isTrue();

        server.stop(0);
        assertThat(d.decode(v1, "clicks", 0, 2).isDecoded()).as("cached id during the outage").isTrue();
        InputRecord unseen = d.decode(v2(click()), "clicks", 0, 3);
        assertThat(unseen.decodeFailure()).isEqualTo(DeadLetterReason.REGISTRY_UNAVAILABLE);
        assertThat(unseen.decodeError).contains("schema id 2");
        assertThat(unseen.raw).isEqualTo(v2(click()));
        InputRecord again = d.decode(v2(click()), "clicks", 0, 4);
        assertThat(again.decodeFailure()).isEqualTo(DeadLetterReason.REGISTRY_UNAVAILABLE);
        assertThat(again.decodeError).contains("failed less than");
    }

    @Test
    void aHangingRegistryCostsAtMostTheTimeoutThenIsLeftAloneForAWhile() throws Exception {
        RegistryAvroDecoder d = decoder("300");
        delayMs = 5_000;
        long t0 = System.nanoTime();
        InputRecord r = d.decode(v2(click()), "clicks", 0, 1);
        long first = (System.nanoTime() - t0) / 1_000_000;
        assertThat(r.decodeFailure()).isEqualTo(DeadLetterReason.REGISTRY_UNAVAILABLE);
        assertThat(first).as("bounded by request.timeout.ms").isLessThan(3_000);

        t0 = System.nanoTime();
        for (int i = 0; i < 100; i++) {
            assertThat(d.decode(Framing.frame(100 + i, new byte[] {2, 'x'}), "clicks", 0, 2 + i).decodeFailure())
                    .isEqualTo(DeadLetterReason.REGISTRY_UNAVAILABLE);
        }
        assertThat((System.nanoTime() - t0) / 1_000_000).as("no request while backing off").isLessThan(1_000);
        assertThat(requests).hasValue(1);

        delayMs = 0;
        now.addAndGet(RegistryAvroDecoder.RETRY_AFTER_FAILURE_MS + 1);
        assertThat(d.decode(v2(click()), "clicks", 0, 200).isDecoded()).as("asked again after the back-off").isTrue();
    }

    @Test
    void serverErrorsAreUnavailabilityNotUnknownIds() throws Exception {
        RegistryAvroDecoder d = decoder("2000");
        status = 500;
        assertThat(d.decode(v2(click()), "clicks", 0, 1).decodeFailure())
                .isEqualTo(DeadLetterReason.REGISTRY_UNAVAILABLE);
        status = 401;
        now.addAndGet(RegistryAvroDecoder.RETRY_AFTER_FAILURE_MS + 1);
        InputRecord r = d.decode(v2(click()), "clicks", 0, 2);
        assertThat(r.decodeFailure()).isEqualTo(DeadLetterReason.REGISTRY_UNAVAILABLE);
        assertThat(r.decodeError).contains("credentials");
    }

    @Test
    void unknownIdsAreRememberedForAMinute() {
        RegistryAvroDecoder d = decoder("2000");
        byte[] unknown = Framing.frame(42, ClickEventAvro.encode(click()));
        InputRecord r = d.decode(unknown, "clicks", 3, 9);
        assertThat(r.decodeFailure()).isEqualTo(DeadLetterReason.UNKNOWN_SCHEMA_ID);
        assertThat(r.decodeError).contains("42");
        assertThat(r.sourcePartition).isEqualTo(3);
        d.decode(unknown, "clicks", 3, 10);
        assertThat(requests).hasValue(1);

        schemas.put(42, ClickEvent.getClassSchema().toString());
        now.addAndGet(RegistryAvroDecoder.UNKNOWN_ID_TTL_MS + 1);
        assertThat(d.decode(unknown, "clicks", 3, 11).isDecoded()).as("registered since").isTrue();
    }

    @Test
    void otherRecordsBareAvroAndGarbageGetTheirOwnReasons() {
        RegistryAvroDecoder d = decoder("2000");
        assertThat(d.decode(Framing.frame(3, new byte[] {2, 'x'}), "t", 0, 1).decodeFailure())
                .isEqualTo(DeadLetterReason.INCOMPATIBLE_SCHEMA);
        assertThat(RegistryAvroDecoder.where("/fields/4/type")).isEqualTo("field event_time (/fields/4/type)");
        assertThat(RegistryAvroDecoder.where("/name")).isEqualTo("/name");
        InputRecord bare = d.decode(ClickEventAvro.encode(click()), "t", 0, 2);
        assertThat(bare.decodeFailure()).isEqualTo(DeadLetterReason.NOT_FRAMED);
        assertThat(bare.decodeError).contains("magic byte");
        assertThat(d.decode(new byte[] {0, 0}, "t", 0, 3).decodeFailure()).isEqualTo(DeadLetterReason.NOT_FRAMED);
        byte[] garbage = Framing.frame(1, new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x0f});
        assertThat(d.decode(garbage, "t", 0, 4).decodeFailure()).isEqualTo(DeadLetterReason.UNDECODABLE);
        byte[] trailing = Framing.frame(1, concat(ClickEventAvro.encode(click()), new byte[] {1}));
        assertThat(d.decode(trailing, "t", 0, 5).decodeError).contains("trailing");
        assertThat(d.decode(null, "t", 0, 6).decodeFailure()).isEqualTo(DeadLetterReason.UNDECODABLE);
    }

    @Test
    void itTravelsInTheJobGraphAndStartsWithAnEmptyCache() throws Exception {
        RegistryAvroDecoder d = decoder("2000");
        byte[] v1 = Framing.frame(1, ClickEventAvro.encode(click()));
        d.decode(v1, "t", 0, 1);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(new KafkaInputDeserializer(RegistryEndpoint.of("http://127.0.0.1:"
                    + server.getAddress().getPort())));
        }
        try (ObjectInputStream in = new ObjectInputStream(new java.io.ByteArrayInputStream(bytes.toByteArray()))) {
            assertThat(in.readObject()).isInstanceOf(KafkaInputDeserializer.class);
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
