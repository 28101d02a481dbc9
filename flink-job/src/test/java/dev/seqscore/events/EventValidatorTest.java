package dev.seqscore.events;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.T0;
import static dev.seqscore.testing.Clicks.T0_PLUS_1H;
import static dev.seqscore.testing.Clicks.click;
import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import org.apache.flink.util.InstantiationUtil;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Validation of input records: every dead-letter reason the validator can give (UNDECODABLE, INVALID_FIELD for
 * each field rule, UNKNOWN_EVENT_TYPE, FUTURE_TIMESTAMP against an injected clock), the accepted case, and that the
 * validator survives Java serialization, since the watermark assigner ships it to the TaskManagers.
 */
class EventValidatorTest {
    private static final List<String> VOCABULARY = List.of("view", "cart", "fav", "buy");
    private static final long SKEW_MS = Duration.ofMinutes(5).toMillis();
    /** The wall clock of these tests: an hour after the clicks' timeline starts. */
    private static final long NOW = T0_PLUS_1H.toEpochMilli();

    private final EventValidator validator = new EventValidator(VOCABULARY, SKEW_MS, () -> NOW);

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
    @ValueSource(strings = {"click", "VIEW", "", "remove_from_cart"})
    void typeOutsideTheVocabularyIsUnknown(String type) {
        EventValidator.Verdict v = validator.check(click(ALICE).type(type).record());

        assertThat(v.reason).isEqualTo(DeadLetterReason.UNKNOWN_EVENT_TYPE);
        assertThat(v.detail).contains("'" + type + "'");
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
        EventValidator moving = new EventValidator(VOCABULARY, 0, () -> now[0]);
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
        EventValidator shipped = InstantiationUtil.clone(new EventValidator(VOCABULARY, SKEW_MS));

        assertThat(shipped.check(click(ALICE).record()).ok()).isTrue();
        assertThat(shipped.check(click(ALICE).type("zzz").record()).reason)
                .isEqualTo(DeadLetterReason.UNKNOWN_EVENT_TYPE);
        // The real clock: a click a day ahead of now is in the future.
        long tomorrow = System.currentTimeMillis() + Duration.ofDays(1).toMillis();
        assertThat(shipped.check(click(ALICE).atMillis(tomorrow).record()).reason)
                .isEqualTo(DeadLetterReason.FUTURE_TIMESTAMP);
    }

    private void assertInvalid(InputRecord r, String detailPart) {
        EventValidator.Verdict v = validator.check(r);
        assertThat(v.ok()).isFalse();
        assertThat(v.reason).isEqualTo(DeadLetterReason.INVALID_FIELD);
        assertThat(v.detail).contains(detailPart);
    }
}
