package dev.seqscore.events;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.T0_PLUS_1M;
import static dev.seqscore.testing.Clicks.T0_PLUS_1H;
import static dev.seqscore.testing.Clicks.click;
import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.avro.DeadLetter;
import java.nio.ByteBuffer;
import java.time.Instant;
import org.junit.jupiter.api.Test;

/**
 * Dead letters keep the evidence: reason, detail, origin (topic, partition, offset), the bytes exactly as read,
 * and the time of recording; a valid record that lost its bytes on entering state (a late event) gets a re-encoded
 * Avro ClickEvent that decodes back to the same click, so the dead-letter topic can be replayed.
 */
class DeadLettersTest {
    private static final long NOW = T0_PLUS_1H.toEpochMilli();

    @Test
    void keepsReasonDetailOriginAndBytes() {
        InputRecord r = click("").from("clicks", 5, 1234L).record();
        byte[] asRead = r.raw.clone();

        DeadLetter d = DeadLetters.of(DeadLetterReason.INVALID_FIELD, "user_id is missing or empty", r, NOW);

        assertThat(d.getReason()).isEqualTo("INVALID_FIELD");
        assertThat(d.getDetail()).isEqualTo("user_id is missing or empty");
        assertThat(d.getSourceTopic()).isEqualTo("clicks");
        assertThat(d.getSourcePartition()).isEqualTo(5);
        assertThat(d.getSourceOffset()).isEqualTo(1234L);
        assertThat(bytes(d.getRaw())).isEqualTo(asRead);
        assertThat(d.getRecordedAt()).isEqualTo(Instant.ofEpochMilli(NOW));
    }

    @Test
    void undecodableBytesAreKeptExactly() {
        byte[] garbage = {(byte) 0xFF, 0x00, 0x7F, (byte) 0x80, 'x'};
        InputRecord r = new InputDecoder(InputFormat.AVRO).decode(garbage, "clicks", 2, 77L);

        DeadLetter d = DeadLetters.of(DeadLetterReason.UNDECODABLE, r.decodeError, r, NOW);

        assertThat(d.getReason()).isEqualTo("UNDECODABLE");
        assertThat(d.getDetail()).isEqualTo(r.decodeError).isNotEmpty();
        assertThat(bytes(d.getRaw())).isEqualTo(garbage);
        assertThat(d.getSourcePartition()).isEqualTo(2);
        assertThat(d.getSourceOffset()).isEqualTo(77L);
    }

    @Test
    void tombstoneHasNoBytesAndIsNotInventedOne() {
        InputRecord r = new InputDecoder(InputFormat.AVRO).decode(null, "clicks", 0, 9L);

        DeadLetter d = DeadLetters.of(DeadLetterReason.UNDECODABLE, r.decodeError, r, NOW);

        assertThat(d.getRaw()).isNull();
        assertThat(d.getSourceOffset()).isEqualTo(9L);
    }

    @Test
    void lateRecordWithoutBytesIsReEncodedAsTheSameClick() throws Exception {
        ClickEvent original = click(ALICE).type("cart").item("i3").category("c2").at(T0_PLUS_1M).price(4.5)
                .session("s7").event();
        InputRecord r = InputRecord.decoded(original, "clicks", 1, 500L, null);

        DeadLetter d = DeadLetters.of(DeadLetterReason.LATE_EVENT, "behind the watermark", r, NOW);

        assertThat(d.getRaw()).isNotNull();
        assertThat(ClickEventAvro.decode(bytes(d.getRaw()))).isEqualTo(original);
        assertThat(d.getSourceOffset()).isEqualTo(500L);
    }

    @Test
    void nullDetailBecomesEmpty() {
        // detail is a required string in the DeadLetter schema; null would fail at serialization in the sink.
        DeadLetter d = DeadLetters.of(DeadLetterReason.LATE_EVENT, null, click(ALICE).record(), NOW);

        assertThat(d.getDetail()).isEmpty();
    }

    @Test
    void recordWithoutTimeOrUserIsNotReEncoded() {
        InputRecord noTime = click(ALICE).atMillis(null).record();
        InputRecord noUser = click(null).record();

        assertThat(DeadLetters.of(DeadLetterReason.INVALID_FIELD, "x", noTime, NOW).getRaw()).isNull();
        assertThat(DeadLetters.of(DeadLetterReason.INVALID_FIELD, "x", noUser, NOW).getRaw()).isNull();
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }
}
