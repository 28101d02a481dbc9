package dev.seqscore.job;

import java.io.IOException;
import java.io.UncheckedIOException;
import dev.seqscore.registry.Framing;
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

    /**
     * The value of an output topic, bare Avro or registry-framed (the job writes the latter with
     * {@code --schema-registry}, with these very schemas as writer schemas, so the frame's id can be skipped). A
     * value starting with byte 0 is framed: a bare Alert, Score or DeadLetter never starts with it, because its first
     * field is a non-empty string, whose length is the first byte. Consumers elsewhere should read the writer schema
     * by the frame's id from the registry instead (README, "Schema registry").
     */
    public static <T extends SpecificRecord> T decodeValue(byte[] bytes, Class<T> type) {
        if (!Framing.isFramed(bytes)) {
            return decode(bytes, type);
        }
        try {
            return new SpecificDatumReader<>(type).read(null, DecoderFactory.get()
                    .binaryDecoder(bytes, Framing.HEADER_LENGTH, bytes.length - Framing.HEADER_LENGTH, null));
        } catch (IOException e) {
            throw new UncheckedIOException("not a framed " + type.getSimpleName(), e);
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
