package dev.seqscore.registry;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class FramingTest {
    @Test
    void theHeaderIsMagicZeroThenTheIdBigEndian() {
        byte[] framed = Framing.frame(0x01020304, new byte[] {9, 8});
        assertThat(framed).containsExactly(0, 1, 2, 3, 4, 9, 8);
        assertThat(Framing.isFramed(framed)).isTrue();
        assertThat(Framing.schemaId(framed)).isEqualTo(0x01020304);
    }

    @Test
    void idsAboveTwoToThe31RoundTripAsTheSameBits() {
        byte[] framed = Framing.frame(0xfffffffe, new byte[0]);
        assertThat(Framing.schemaId(framed)).isEqualTo(0xfffffffe);
    }

    @Test
    void shortValuesAndOtherFirstBytesAreNotFramed() {
        assertThat(Framing.isFramed(null)).isFalse();
        assertThat(Framing.isFramed(new byte[] {0, 0, 0, 1})).isFalse();
        assertThat(Framing.isFramed(new byte[] {2, 0, 0, 0, 1})).isFalse();
    }
}
