package dev.seqscore.avro;

import java.io.ByteArrayOutputStream;
import java.io.IOException;

import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DatumReader;
import org.apache.avro.io.DatumWriter;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;

/** Plain Avro binary (no header, no registry), the encoding the topics carry. */
final class AvroBinary {
    private AvroBinary() {}

    static <T> byte[] write(DatumWriter<T> writer, T datum) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
        writer.write(datum, encoder);
        encoder.flush();
        return out.toByteArray();
    }

    static <T> T read(DatumReader<T> reader, byte[] bytes) throws IOException {
        var decoder = DecoderFactory.get().binaryDecoder(bytes, null);
        T datum = reader.read(null, decoder);
        if (!decoder.isEnd()) {
            throw new IOException("trailing bytes: reader did not consume the whole record");
        }
        return datum;
    }
}
