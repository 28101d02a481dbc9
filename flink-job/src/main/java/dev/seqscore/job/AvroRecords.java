package dev.seqscore.job;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificRecord;

/**
 * Reads the job's output records (Alert, Score, DeadLetter) the way a downstream consumer does: plain Avro binary,
 * the contract in {@code schemas/} as reader schema. Used by the demo's dashboard and by the tests.
 */
public final class AvroRecords {
    private AvroRecords() {}

    public static <T extends SpecificRecord> T decode(byte[] bytes, Class<T> type) {
        try {
            return new SpecificDatumReader<>(type).read(null, DecoderFactory.get().binaryDecoder(bytes, null));
        } catch (IOException e) {
            throw new UncheckedIOException("not a " + type.getSimpleName(), e);
        }
    }

    /** The bytes of an Avro {@code bytes} field, such as {@code DeadLetter.raw}, without moving its position. */
    public static byte[] bytes(ByteBuffer b) {
        ByteBuffer d = b.duplicate();
        byte[] out = new byte[d.remaining()];
        d.get(out);
        return out;
    }
}
