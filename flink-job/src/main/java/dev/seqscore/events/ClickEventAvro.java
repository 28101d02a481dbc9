package dev.seqscore.events;

import dev.seqscore.avro.ClickEvent;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;

/**
 * Plain Avro binary encoding of {@link ClickEvent}, the wire format of the input topic (no schema registry: the
 * schema is the contract in {@code schemas/}).
 */
public final class ClickEventAvro {
    private static final SpecificDatumWriter<ClickEvent> WRITER = new SpecificDatumWriter<>(ClickEvent.class);
    private static final SpecificDatumReader<ClickEvent> READER = new SpecificDatumReader<>(ClickEvent.class);

    private ClickEventAvro() {}

    public static byte[] encode(ClickEvent event) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream(64);
            BinaryEncoder enc = EncoderFactory.get().directBinaryEncoder(out, null);
            WRITER.write(event, enc);
            enc.flush();
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot encode ClickEvent " + event, e);
        }
    }

    /**
     * Decodes one record; trailing bytes are rejected, since a value with extra bytes was not written with this
     * schema and would otherwise be half-read silently.
     */
    public static ClickEvent decode(byte[] bytes) throws IOException {
        // The reader allocates a string's declared length before reading it, so a few bytes claiming a 2 GB string
        // would exhaust the heap (an Error, so a poison record would fail the task on every restart). Skipping
        // allocates nothing and fails on a length beyond the bytes actually there.
        BinaryDecoder check = DecoderFactory.get().binaryDecoder(bytes, null);
        GenericDatumReader.skip(ClickEvent.getClassSchema(), check);
        BinaryDecoder dec = DecoderFactory.get().binaryDecoder(bytes, null);
        ClickEvent event = READER.read(null, dec);
        if (!dec.isEnd()) {
            throw new IOException("trailing bytes after a ClickEvent: not written with the ClickEvent schema");
        }
        return event;
    }
}
