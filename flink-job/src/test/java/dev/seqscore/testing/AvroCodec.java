package dev.seqscore.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificRecord;

/** Decodes the job's Avro outputs the way a downstream consumer would: plain binary, reader schema = the contract. */
public final class AvroCodec {
    private AvroCodec() {}

    public static <T extends SpecificRecord> T decode(byte[] bytes, Class<T> type) {
        try {
            return new SpecificDatumReader<>(type).read(null, DecoderFactory.get().binaryDecoder(bytes, null));
        } catch (IOException e) {
            throw new UncheckedIOException("not a " + type.getSimpleName(), e);
        }
    }
}
