package dev.seqscore.events;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.T0_PLUS_1M;
import static dev.seqscore.testing.Clicks.click;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Decoding input values into {@link InputRecord}s for both input formats. The contract under test: the decoder
 * never throws, whatever the bytes; what it cannot decode becomes an undecodable record that keeps its origin and
 * bytes for the dead-letter topic; JSON that is well-formed but wrong is decoded as far as possible, so validation
 * can name the field.
 */
class InputDecoderTest {
    private static final InputDecoder AVRO = new InputDecoder(InputFormat.AVRO);
    private static final InputDecoder JSON = new InputDecoder(InputFormat.JSON);

    @Test
    void validAvroDecodesEveryFieldAndKeepsOrigin() {
        byte[] bytes = click(ALICE).type("cart").item("i9").category("c7").at(T0_PLUS_1M).price(12.5)
                .session("s1").avro();

        InputRecord r = AVRO.decode(bytes, "clicks", 3, 42L);

        assertThat(r.isDecoded()).isTrue();
        assertThat(r.fieldError).isNull();
        assertThat(r.userId).isEqualTo(ALICE);
        assertThat(r.eventType).isEqualTo("cart");
        assertThat(r.itemId).isEqualTo("i9");
        assertThat(r.categoryId).isEqualTo("c7");
        assertThat(r.eventTime).isEqualTo(T0_PLUS_1M.toEpochMilli());
        assertThat(r.price).isEqualTo(12.5);
        assertThat(r.sessionId).isEqualTo("s1");
        assertOrigin(r, "clicks", 3, 42L);
        assertThat(r.raw).isEqualTo(bytes);
    }

    @Test
    void avroWithoutOptionalFieldsDecodesToNulls() {
        InputRecord r = AVRO.decode(click(ALICE).avro(), "clicks", 0, 0L);

        assertThat(r.isDecoded()).isTrue();
        assertThat(r.price).isNull();
        assertThat(r.sessionId).isNull();
    }

    @Test
    void nullValueIsAnUndecodableTombstone() {
        for (InputDecoder d : new InputDecoder[] {AVRO, JSON}) {
            InputRecord r = d.decode(null, "clicks", 1, 7L);

            assertThat(r.isDecoded()).isFalse();
            assertThat(r.decodeError).contains("tombstone");
            assertThat(r.raw).isNull();
            assertOrigin(r, "clicks", 1, 7L);
        }
    }

    @Test
    void everyTruncationOfValidAvroIsUndecodable() {
        byte[] full = click(ALICE).item("item-with-a-longer-id").price(3.0).session("s").avro();

        for (int len = 0; len < full.length; len++) {
            byte[] cut = Arrays.copyOf(full, len);
            InputRecord r = AVRO.decode(cut, "clicks", 0, len);

            assertThat(r.isDecoded()).as("prefix of %d of %d bytes", len, full.length).isFalse();
            assertThat(r.raw).isEqualTo(cut);
            assertThat(r.decodeError).startsWith("avro: ");
        }
    }

    @Test
    void trailingBytesAfterAvroRecordAreUndecodable() {
        // Two records in one value, or a value written with a longer schema: reading only the first half is wrong.
        byte[] one = click(ALICE).avro();
        byte[] two = concat(one, click("bob").avro());

        InputRecord r = AVRO.decode(two, "clicks", 0, 5L);

        assertThat(r.isDecoded()).isFalse();
        assertThat(r.decodeError).contains("trailing bytes");
        assertThat(r.raw).isEqualTo(two);
        assertThat(AVRO.decode(concat(one, new byte[] {0}), "clicks", 0, 5L).isDecoded()).isFalse();
    }

    @Test
    void malformedAvroLengthsAreUndecodable() {
        // A negative string length (zig-zag 1 = -1), and a varint that never ends.
        byte[] negativeLength = {0x01, 'a'};
        byte[] endlessVarint = new byte[12];
        Arrays.fill(endlessVarint, (byte) 0xFF);

        assertThat(AVRO.decode(negativeLength, "clicks", 0, 0L).isDecoded()).isFalse();
        assertThat(AVRO.decode(endlessVarint, "clicks", 0, 0L).isDecoded()).isFalse();
        assertThat(AVRO.decode(new byte[0], "clicks", 0, 0L).isDecoded()).isFalse();
    }

    @Test
    void lengthPrefixClaimingGigabytesIsUndecodableWithoutAllocatingThem() {
        // Six bytes that declare a 2 GB user_id: reading them must fail on the missing bytes, not try to allocate
        // 2 GB (an OutOfMemoryError is not caught, and the record would fail the task on every restart).
        byte[] poison = concat(zigZagVarint(2_000_000_000L), new byte[] {'a'});
        var threads = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long tid = Thread.currentThread().getId();
        long allocatedBefore = threads.getThreadAllocatedBytes(tid);

        InputRecord r = AVRO.decode(poison, "clicks", 0, 1L);

        long allocated = threads.getThreadAllocatedBytes(tid) - allocatedBefore;
        assertThat(r.isDecoded()).isFalse();
        assertThat(r.raw).isEqualTo(poison);
        // Measured rather than provoked: a test JVM with a large heap would survive the 2 GB and hide the bug.
        assertThat(allocated).isLessThan(16L << 20);
    }

    @Test
    void randomBytesNeverThrowAndKeepTheirEvidence() {
        Random random = new Random(20171126L);
        int undecodable = 0;
        for (int i = 0; i < 2_000; i++) {
            byte[] value = new byte[random.nextInt(80)];
            random.nextBytes(value);
            for (InputDecoder d : new InputDecoder[] {AVRO, JSON}) {
                InputRecord r = d.decode(value, "clicks", 2, i);

                assertOrigin(r, "clicks", 2, i);
                assertThat(r.raw).isSameAs(value);
                if (!r.isDecoded()) {
                    undecodable++;
                    assertThat(r.decodeError).isNotBlank();
                }
            }
        }
        // Random bytes can occasionally be a valid Avro record; the bulk must not be.
        assertThat(undecodable).isGreaterThan(3_600);
    }

    @Test
    void validJsonDecodesEveryField() {
        String json = "{\"user_id\":\"alice\",\"event_type\":\"buy\",\"item_id\":\"i2\",\"category_id\":\"c3\","
                + "\"event_time\":1511658000000,\"price\":9.99,\"session_id\":\"s9\",\"extra\":true}";

        InputRecord r = JSON.decode(utf8(json), "clicks-json", 4, 99L);

        assertThat(r.isDecoded()).isTrue();
        assertThat(r.fieldError).isNull();
        assertThat(r.userId).isEqualTo("alice");
        assertThat(r.eventType).isEqualTo("buy");
        assertThat(r.itemId).isEqualTo("i2");
        assertThat(r.categoryId).isEqualTo("c3");
        assertThat(r.eventTime).isEqualTo(1511658000000L);
        assertThat(r.price).isEqualTo(9.99);
        assertThat(r.sessionId).isEqualTo("s9");
        assertOrigin(r, "clicks-json", 4, 99L);
        assertThat(r.raw).isEqualTo(utf8(json));
    }

    @Test
    void jsonWrittenByClickEventJsonDecodesToTheSameClick() {
        var event = click(ALICE).type("fav").item("i5").category("c5").at(T0_PLUS_1M).price(1.0).event();

        InputRecord r = JSON.decode(utf8(ClickEventJson.encode(event)), "clicks", 0, 0L);

        assertThat(r.isDecoded()).isTrue();
        assertThat(r.toClickEvent()).isEqualTo(event);
    }

    @Test
    void numericIdsAreTakenAsTheirDecimalText() {
        InputRecord r = JSON.decode(utf8("{\"user_id\":1001,\"event_type\":\"view\",\"item_id\":42,"
                + "\"event_time\":1}"), "clicks", 0, 0L);

        assertThat(r.fieldError).isNull();
        assertThat(r.userId).isEqualTo("1001");
        assertThat(r.itemId).isEqualTo("42");
    }

    @Test
    void jsonWithoutUserIdDecodesSoThatValidationCanNameTheField() {
        InputRecord r = JSON.decode(utf8("{\"event_type\":\"view\",\"item_id\":\"i1\",\"event_time\":1}"),
                "clicks", 0, 3L);

        assertThat(r.isDecoded()).isTrue();
        assertThat(r.userId).isNull();
        EventValidator.Verdict v = new EventValidator(java.util.List.of("view"), 0, 256, () -> Long.MAX_VALUE).check(r);
        assertThat(v.reason).isEqualTo(DeadLetterReason.INVALID_FIELD);
        assertThat(v.detail).contains("user_id");
    }

    @Test
    void aHundredThousandCharacterUserIdDecodesInBothFormatsAndIsRejectedByValidation() {
        // A hostile producer's id: decoding keeps it (and its bytes, for the dead letter); the job's bound rejects it.
        String huge = "u".repeat(100_000);
        byte[] avro = click(huge).avro();
        byte[] json = utf8("{\"user_id\":\"" + huge + "\",\"event_type\":\"view\",\"item_id\":\"i1\","
                + "\"event_time\":1}");
        EventValidator validator = new EventValidator(java.util.List.of("view"), 0, 256, () -> Long.MAX_VALUE);

        for (InputRecord r : new InputRecord[] {AVRO.decode(avro, "clicks", 0, 5L), JSON.decode(json, "clicks", 0, 5L)}) {
            assertThat(r.isDecoded()).isTrue();
            assertThat(r.fieldError).isNull();
            assertThat(r.userId).hasSize(100_000);
            EventValidator.Verdict v = validator.check(r);
            assertThat(v.reason).isEqualTo(DeadLetterReason.INVALID_FIELD);
            assertThat(v.detail).startsWith("user_id is 100000 bytes long in UTF-8, more than the 256 allowed")
                    .hasSizeLessThan(200);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "{\"user_id\":\"a\",\"event_type\":\"view\",\"item_id\":\"i\",\"event_time\":\"abc\"}",
        "{\"user_id\":\"a\",\"event_type\":\"view\",\"item_id\":\"i\",\"event_time\":1.5}",
        "{\"user_id\":\"a\",\"event_type\":\"view\",\"item_id\":\"i\",\"event_time\":99999999999999999999999}",
    })
    void jsonEventTimeOfWrongTypeIsAFieldError(String json) {
        InputRecord r = JSON.decode(utf8(json), "clicks", 0, 0L);

        assertThat(r.isDecoded()).isTrue();
        assertThat(r.eventTime).isNull();
        assertThat(r.fieldError).contains("event_time");
    }

    @ParameterizedTest
    @ValueSource(strings = {"user_id", "event_type", "item_id", "category_id", "session_id"})
    void jsonIdOfWrongTypeIsAFieldErrorNamingIt(String field) {
        String json = "{\"user_id\":\"a\",\"event_type\":\"view\",\"item_id\":\"i\",\"event_time\":1,"
                .replace("\"" + field + "\":\"a\",", "").replace("\"" + field + "\":\"view\",", "")
                .replace("\"" + field + "\":\"i\",", "")
                + "\"" + field + "\":{\"nested\":1}}";

        InputRecord r = JSON.decode(utf8(json), "clicks", 0, 0L);

        assertThat(r.isDecoded()).isTrue();
        assertThat(r.fieldError).startsWith(field);
    }

    @Test
    void jsonPriceOfWrongTypeIsAFieldError() {
        InputRecord r = JSON.decode(utf8("{\"user_id\":\"a\",\"event_type\":\"view\",\"item_id\":\"i\","
                + "\"event_time\":1,\"price\":\"cheap\"}"), "clicks", 0, 0L);

        assertThat(r.fieldError).contains("price");
    }

    @ParameterizedTest
    @ValueSource(strings = {"[1,2]", "\"a string\"", "42", "null", "true", "", "   ", "{not json", "{\"user_id\":"})
    void jsonThatIsNotAnObjectIsUndecodable(String text) {
        InputRecord r = JSON.decode(utf8(text), "clicks", 6, 8L);

        assertThat(r.isDecoded()).isFalse();
        assertThat(r.decodeError).startsWith("json");
        assertThat(r.raw).isEqualTo(utf8(text));
        assertOrigin(r, "clicks", 6, 8L);
    }

    @Test
    void avroBytesOnAJsonTopicAreUndecodable() {
        assertThat(JSON.decode(click(ALICE).avro(), "clicks", 0, 0L).isDecoded()).isFalse();
    }

    @Test
    void jsonWithTrailingContentIsUndecodable() {
        // As with Avro's trailing bytes: two objects in one value would otherwise lose the second click silently.
        String one = "{\"user_id\":\"a\",\"event_type\":\"view\",\"item_id\":\"i\",\"event_time\":1}";

        assertThat(JSON.decode(utf8(one + one), "clicks", 0, 0L).isDecoded()).isFalse();
        assertThat(JSON.decode(utf8(one + " garbage"), "clicks", 0, 0L).isDecoded()).isFalse();
        // Producers writing JSON lines end with a newline; that is not content.
        assertThat(JSON.decode(utf8(one + "\n"), "clicks", 0, 0L).isDecoded()).isTrue();
    }

    private static void assertOrigin(InputRecord r, String topic, int partition, long offset) {
        assertThat(r.sourceTopic).isEqualTo(topic);
        assertThat(r.sourcePartition).isEqualTo(partition);
        assertThat(r.sourceOffset).isEqualTo(offset);
    }

    private static byte[] zigZagVarint(long n) {
        long z = (n << 1) ^ (n >> 63);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        while ((z & ~0x7FL) != 0) {
            out.write((int) ((z & 0x7F) | 0x80));
            z >>>= 7;
        }
        out.write((int) z);
        return out.toByteArray();
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
