package dev.seqscore.events;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.T0_PLUS_1H;
import static dev.seqscore.testing.Clicks.click;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import org.apache.flink.util.InstantiationUtil;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Validation of input records: every dead-letter reason the validator can give (UNDECODABLE, INVALID_FIELD for
 * each field rule and for ids longer than the bound, UNKNOWN_EVENT_TYPE, FUTURE_TIMESTAMP against an injected
 * clock), the accepted case, and that the validator survives Java serialization, since the watermark assigner ships
 * it to the TaskManagers.
 */
class EventValidatorTest {
    private static final List<String> VOCABULARY = List.of("view", "cart", "fav", "buy");
    private static final long SKEW_MS = Duration.ofMinutes(5).toMillis();
    /** The wall clock of these tests: an hour after the clicks' timeline starts. */
    private static final long NOW = T0_PLUS_1H.toEpochMilli();
    /** The job's default --max-id-bytes. */
    private static final int MAX_ID_BYTES = 256;

    private final EventValidator validator = new EventValidator(VOCABULARY, SKEW_MS, MAX_ID_BYTES, () -> NOW);

    @Test
    void validClickIsAccepted() {
        EventValidator.Verdict v = validator.check(click(ALICE).type("buy").price(0.0).record());

        assertThat(v.ok()).isTrue();
        assertThat(v.reason).isNull();
        assertThat(v.detail).isNull();
    }

    @Test
    void undecodableRecordKeepsTheDecodeError() {
        InputRecord r = InputRecord.undecodable("avro: EOFException: null", "clicks", 0, 1L, new byte[] {1});

        EventValidator.Verdict v = validator.check(r);

        assertThat(v.reason).isEqualTo(DeadLetterReason.UNDECODABLE);
        assertThat(v.detail).isEqualTo("avro: EOFException: null");
    }

    @Test
    void fieldErrorFromDecodingIsAnInvalidField() {
        InputRecord r = click(ALICE).record();
        r.fieldError = "event_time must be an integer of epoch milliseconds, got \"abc\"";

        EventValidator.Verdict v = validator.check(r);

        assertThat(v.reason).isEqualTo(DeadLetterReason.INVALID_FIELD);
        assertThat(v.detail).isEqualTo(r.fieldError);
    }

    @ParameterizedTest
    @ValueSource(strings = {"", " ", "\t"})
    void blankUserIsAnInvalidField(String user) {
        assertInvalid(click(user).record(), "user_id");
        assertInvalid(click(null).record(), "user_id");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "  "})
    void blankItemIsAnInvalidField(String item) {
        assertInvalid(click(ALICE).item(item).record(), "item_id");
        assertInvalid(click(ALICE).item(null).record(), "item_id");
    }

    @Test
    void missingTimeIsAnInvalidField() {
        assertInvalid(click(ALICE).atMillis(null).record(), "event_time is missing");
    }

    @ParameterizedTest
    @ValueSource(longs = {0L, -1L, Long.MIN_VALUE})
    void timeAtOrBeforeTheEpochIsAnInvalidField(long t) {
        // Long.MIN_VALUE would also be "no timestamp" to Flink; such a record must never reach the watermark.
        assertInvalid(click(ALICE).atMillis(t).record(), "event_time " + t);
    }

    @ParameterizedTest
    @ValueSource(doubles = {-0.01, Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY})
    void badPriceIsAnInvalidField(double price) {
        assertInvalid(click(ALICE).price(price).record(), "price");
    }

    @ParameterizedTest
    @ValueSource(strings = {"user_id", "item_id", "category_id", "session_id"})
    void idExactlyAtTheBoundIsAccepted(String field) {
        assertThat(validator.check(withId(field, "x".repeat(MAX_ID_BYTES))).ok()).isTrue();
    }

    @ParameterizedTest
    @ValueSource(strings = {"user_id", "item_id", "category_id", "session_id"})
    void idOneByteOverTheBoundIsAnInvalidFieldNamingFieldLengthAndBound(String field) {
        EventValidator.Verdict v = validator.check(withId(field, "x".repeat(MAX_ID_BYTES + 1)));

        assertThat(v.reason).isEqualTo(DeadLetterReason.INVALID_FIELD);
        assertThat(v.detail).startsWith(field + " is 257 bytes long in UTF-8, more than the 256 allowed");
    }

    @Test
    void idLengthIsCountedInUtf8Bytes() {
        // 2-, 3- and 4-byte characters: each id is 256 bytes, well under 256 chars; one more ASCII char tips it.
        for (String unit : List.of("é", "€", "😀")) {
            int bytes = unit.getBytes(StandardCharsets.UTF_8).length;
            String atBound = unit.repeat(MAX_ID_BYTES / bytes) + "x".repeat(MAX_ID_BYTES % bytes);
            assertThat(atBound.getBytes(StandardCharsets.UTF_8)).hasSize(MAX_ID_BYTES);
            assertThat(atBound.length()).isLessThan(MAX_ID_BYTES);

            assertThat(validator.check(click(atBound).record()).ok()).as(unit).isTrue();
            EventValidator.Verdict v = validator.check(click(atBound + "x").record());
            assertThat(v.reason).as(unit).isEqualTo(DeadLetterReason.INVALID_FIELD);
            assertThat(v.detail).as(unit).startsWith("user_id is 257 bytes long");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "a", "é€😀", "\uD800", "x\uDC00y", "\uD83D", "😀\uD83D", "\uDE00\uD83D"})
    void utf8LengthIsWhatTheEncoderWrites(String s) {
        // Unpaired surrogates (a JSON string may escape one) are written as '?': one byte, as counted.
        for (String t : List.of(s, s.repeat(7), "a" + s + "b")) {
            assertThat(Utf8Length.of(t)).isEqualTo(t.getBytes(StandardCharsets.UTF_8).length);
        }
    }

    @Test
    void categoryAndSessionMayBeAbsent() {
        assertThat(validator.check(click(ALICE).category(null).session(null).record()).ok()).isTrue();
        assertThat(validator.check(click(ALICE).category("").session("s1").record()).ok()).isTrue();
    }

    @Test
    void aHugeIdIsQuotedOnlyByItsStart() {
        String huge = "u".repeat(100_000);

        EventValidator.Verdict v = validator.check(click(huge).record());

        assertThat(v.reason).isEqualTo(DeadLetterReason.INVALID_FIELD);
        assertThat(v.detail)
                .isEqualTo("user_id is 100000 bytes long in UTF-8, more than the 256 allowed (--max-id-bytes): '"
                        + "u".repeat(EventValidator.QUOTED_ID_CHARS) + "...'");
    }

    @Test
    void theQuoteNeverSplitsACharacter() {
        String id = "x".repeat(EventValidator.QUOTED_ID_CHARS - 1) + "😀".repeat(100);

        String detail = validator.check(click(id).record()).detail;

        String quoted = detail.substring(detail.indexOf('\'') + 1, detail.length() - "...'".length());
        assertThat(quoted).isEqualTo("x".repeat(EventValidator.QUOTED_ID_CHARS - 1));
    }

    @Test
    void theBoundIsTheValidatorsOwn() {
        EventValidator tight = new EventValidator(VOCABULARY, SKEW_MS, 3, () -> NOW);

        assertThat(tight.check(click("abc").record()).ok()).isTrue();
        assertThat(tight.check(click("abcd").record()).detail).startsWith("user_id is 4 bytes long");
        assertThat(tight.check(click("ab").session("éé").record()).detail).startsWith("session_id is 4 bytes long");
    }

    @Test
    void aBlankIdIsBlamedBeforeAnotherIdsLength() {
        // ClickRules, shared with the file readers, speak first; then the job's own bound.
        EventValidator.Verdict v = validator.check(click("").item("i".repeat(MAX_ID_BYTES + 1)).record());

        assertThat(v.detail).isEqualTo("empty user_id");
    }

    @ParameterizedTest
    @ValueSource(strings = {"click", "VIEW", "", "remove_from_cart"})
    void typeOutsideTheVocabularyIsUnknown(String type) {
        EventValidator.Verdict v = validator.check(click(ALICE).type(type).record());

        assertThat(v.reason).isEqualTo(DeadLetterReason.UNKNOWN_EVENT_TYPE);
        assertThat(v.detail).contains("'" + type + "'");
    }

    @Test
    void aHugeUnknownTypeIsQuotedOnlyInPart() {
        String type = "x".repeat(100_000);
        EventValidator.Verdict v = validator.check(click(ALICE).type(type).record());

        assertThat(v.reason).isEqualTo(DeadLetterReason.UNKNOWN_EVENT_TYPE);
        assertThat(v.detail).hasSizeLessThan(300).contains("'" + "x".repeat(64) + "...'");
    }

    @Test
    void missingTypeIsUnknown() {
        assertThat(validator.check(click(ALICE).type(null).record()).reason)
                .isEqualTo(DeadLetterReason.UNKNOWN_EVENT_TYPE);
    }

    @Test
    void timeBeyondTheAllowedSkewIsInTheFuture() {
        InputRecord atLimit = click(ALICE).atMillis(NOW + SKEW_MS).record();
        InputRecord beyond = click(ALICE).atMillis(NOW + SKEW_MS + 1).record();

        assertThat(validator.check(atLimit).ok()).isTrue();
        EventValidator.Verdict v = validator.check(beyond);
        assertThat(v.reason).isEqualTo(DeadLetterReason.FUTURE_TIMESTAMP);
        assertThat(v.detail).contains(Long.toString(SKEW_MS + 1)).contains("allowed: " + SKEW_MS);
    }

    @Test
    void theClockIsReadPerRecord() {
        // A validator lives for the whole job; "now" must move with the wall clock, not be fixed at start-up.
        long[] now = {T0.toEpochMilli()};
        EventValidator moving = new EventValidator(VOCABULARY, 0, MAX_ID_BYTES, () -> now[0]);
        InputRecord r = click(ALICE).at(T0_PLUS_1H).record();

        assertThat(moving.check(r).reason).isEqualTo(DeadLetterReason.FUTURE_TIMESTAMP);
        now[0] = T0_PLUS_1H.toEpochMilli();
        assertThat(moving.check(r).ok()).isTrue();
    }

    @Test
    void aBrokenRecordIsBlamedForItsFirstProblem() {
        // Undecodable beats everything; a bad field beats an unknown type (the type may only look unknown).
        InputRecord r = click("").type("zzz").atMillis(NOW + 10 * SKEW_MS).record();

        assertThat(validator.check(r).reason).isEqualTo(DeadLetterReason.INVALID_FIELD);
        r.decodeError = "json: broken";
        assertThat(validator.check(r).reason).isEqualTo(DeadLetterReason.UNDECODABLE);
    }

    @Test
    void survivesSerializationWithTheDefaultClock() throws Exception {
        EventValidator shipped = InstantiationUtil.clone(new EventValidator(VOCABULARY, SKEW_MS, MAX_ID_BYTES));

        assertThat(shipped.check(click(ALICE).record()).ok()).isTrue();
        assertThat(shipped.check(click(ALICE).type("zzz").record()).reason)
                .isEqualTo(DeadLetterReason.UNKNOWN_EVENT_TYPE);
        // The real clock: a click a day ahead of now is in the future.
        long tomorrow = System.currentTimeMillis() + Duration.ofDays(1).toMillis();
        assertThat(shipped.check(click(ALICE).atMillis(tomorrow).record()).reason)
                .isEqualTo(DeadLetterReason.FUTURE_TIMESTAMP);
    }

    /** A valid click with one id field set to {@code id}. */
    private static InputRecord withId(String field, String id) {
        var c = click(ALICE);
        switch (field) {
            case "user_id" -> c.user(id);
            case "item_id" -> c.item(id);
            case "category_id" -> c.category(id);
            case "session_id" -> c.session(id);
            default -> throw new IllegalArgumentException(field);
        }
        return c.record();
    }

    private void assertInvalid(InputRecord r, String detailPart) {
        EventValidator.Verdict v = validator.check(r);
        assertThat(v.ok()).isFalse();
        assertThat(v.reason).isEqualTo(DeadLetterReason.INVALID_FIELD);
        assertThat(v.detail).contains(detailPart);
    }
}
