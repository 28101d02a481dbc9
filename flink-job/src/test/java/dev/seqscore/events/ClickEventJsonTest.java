package dev.seqscore.events;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.time.Instant;

import org.junit.jupiter.api.Test;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.events.ClickEventJson.InvalidClickEventException;

class ClickEventJsonTest {

    private static final ClickEvent FULL = new ClickEvent("u1", "cart", "i1", "c1",
            Instant.ofEpochMilli(1_511_544_070_123L), 9.5, "s1");

    @Test
    void encodesWithTheCanonicalKeysAndMillis() {
        assertThat(ClickEventJson.encode(FULL)).isEqualTo(
                "{\"user_id\":\"u1\",\"event_type\":\"cart\",\"item_id\":\"i1\",\"category_id\":\"c1\","
                        + "\"event_time\":1511544070123,\"price\":9.5,\"session_id\":\"s1\"}");
    }

    @Test
    void roundTripsFullAndSparseEvents() {
        ClickEvent sparse = new ClickEvent("u2", "view", "i2", "", Instant.ofEpochMilli(0), null, null);

        assertThat(ClickEventJson.decode(ClickEventJson.encode(FULL))).isEqualTo(FULL);
        assertThat(ClickEventJson.decode(ClickEventJson.encode(sparse))).isEqualTo(sparse);
        assertThat(ClickEventJson.encode(sparse)).contains("\"price\":null", "\"session_id\":null");
        assertThat(ClickEventJson.decode(ClickEventJson.encode(FULL).getBytes(StandardCharsets.UTF_8)))
                .isEqualTo(FULL);
    }

    @Test
    void acceptsNumericIdsAndIgnoresUnknownKeys() {
        ClickEvent e = ClickEventJson.decode(
                "{\"user_id\":1,\"event_type\":\"buy\",\"item_id\":2268318,\"category_id\":2520377,"
                        + "\"event_time\":1511544070000,\"referrer\":\"x\"}");

        assertThat(e).isEqualTo(new ClickEvent("1", "buy", "2268318", "2520377",
                Instant.ofEpochMilli(1_511_544_070_000L), null, null));
    }

    @Test
    void errorsNameTheField() {
        assertInvalid("{\"event_type\":\"view\",\"item_id\":\"i\",\"event_time\":1}", "user_id", "user_id is missing");
        assertInvalid("{\"user_id\":\"u\",\"item_id\":\"i\",\"event_time\":1}", "event_type", "event_type is missing");
        assertInvalid("{\"user_id\":\"u\",\"event_type\":\"view\",\"event_time\":1}", "item_id", "item_id is missing");
        assertInvalid("{\"user_id\":\"u\",\"event_type\":\"view\",\"item_id\":\"i\"}", "event_time",
                "event_time is missing");
        assertInvalid("{\"user_id\":\"u\",\"event_type\":\"view\",\"item_id\":\"i\",\"event_time\":\"2017\"}",
                "event_time", "event_time must be an integer of epoch milliseconds, got \"2017\"");
        assertInvalid("{\"user_id\":\"u\",\"event_type\":\"view\",\"item_id\":\"i\",\"event_time\":1,\"price\":\"1\"}",
                "price", "price must be a number, got \"1\"");
        assertInvalid("{\"user_id\":true,\"event_type\":\"view\",\"item_id\":\"i\",\"event_time\":1}",
                "user_id", "user_id must be a string, got BOOLEAN true");
        assertInvalid("{\"user_id\":\"u\",\"event_type\":\"view\",\"item_id\":\"i\",\"event_time\":1,"
                + "\"session_id\":{}}", "session_id", "session_id must be a string, got OBJECT {}");
    }

    @Test
    void brokenJsonIsReportedWithoutAField() {
        assertThatThrownBy(() -> ClickEventJson.decode("{not json"))
                .isInstanceOf(InvalidClickEventException.class)
                .hasMessageStartingWith("not valid JSON")
                .satisfies(e -> assertThat(((InvalidClickEventException) e).field()).isNull());
        assertThatThrownBy(() -> ClickEventJson.decode("42"))
                .isInstanceOf(InvalidClickEventException.class)
                .hasMessage("expected a JSON object, got NUMBER");
        assertThatThrownBy(() -> ClickEventJson.decode(""))
                .isInstanceOf(InvalidClickEventException.class)
                .hasMessage("expected a JSON object, got nothing");
    }

    private static void assertInvalid(String json, String field, String message) {
        assertThatThrownBy(() -> ClickEventJson.decode(json))
                .isInstanceOf(InvalidClickEventException.class)
                .hasMessage(message)
                .satisfies(e -> assertThat(((InvalidClickEventException) e).field()).isEqualTo(field));
    }
}
