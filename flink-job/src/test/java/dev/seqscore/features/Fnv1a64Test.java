package dev.seqscore.features;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class Fnv1a64Test {

    @Test
    void contractCheckValues() {
        assertThat(Fnv1a64.hash("")).isEqualTo(0xcbf29ce484222325L);
        assertThat(Fnv1a64.hash("a")).isEqualTo(0xaf63dc4c8601ec8cL);
    }

    @Test
    void multiByteUtf8MatchesPython() {
        // Values from Python: fnv1a64(s.encode("utf-8")), the training side's implementation.
        assertThat(Fnv1a64.hash("foobar")).isEqualTo(0x85944171f73967e8L);
        assertThat(Fnv1a64.hash("商品")).isEqualTo(0x3c991d2eb76c878eL);
        assertThat(Fnv1a64.hash("😀x")).isEqualTo(0x4d5c34eed26afdd0L);
    }

    @Test
    void bucketReadsTheHashAsUnsigned() {
        // The hash of "a" is negative as a signed long; a signed remainder would give 380 + 1 for 1000 buckets.
        assertThat(Fnv1a64.bucket("a", 1000)).isEqualTo(997);
        assertThat(Fnv1a64.bucket("a", 4096)).isEqualTo(3213);
        assertThat(Fnv1a64.bucket("", 4096)).isEqualTo(806);
        assertThat(Fnv1a64.bucket("2333346", 1024)).isEqualTo(996);
        assertThat(Fnv1a64.bucket("商品", 1000)).isEqualTo(767);
    }

    @Test
    void inlineEncodingAgreesWithGetBytes() {
        String[] samples = {"ascii-123", "é", "ß€", "\u07ff\u0800\uffff", "😀😀", "lone \ud800 high", "lone \udc00 low",
                "end \ud83d"};
        for (String s : samples) {
            assertThat(Fnv1a64.hash(s)).as(s).isEqualTo(reference(s.getBytes(StandardCharsets.UTF_8)));
        }
    }

    @Test
    void bucketRejectsNonPositiveCounts() {
        assertThatThrownBy(() -> Fnv1a64.bucket("a", 0)).isInstanceOf(IllegalArgumentException.class);
    }

    private static long reference(byte[] bytes) {
        long h = 0xcbf29ce484222325L;
        for (byte b : bytes) {
            h ^= b & 0xff;
            h *= 0x100000001b3L;
        }
        return h;
    }
}
