package dev.seqscore.registry;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.avro.specific.SpecificRecord;
import org.apache.flink.api.common.serialization.SerializationSchema;

/**
 * Writes a record as registry-framed Avro ({@link Framing}) with a schema id fixed when the job was built: the id
 * was registered (or found) on the client before submission ({@link SubjectRegistration}), so the TaskManagers
 * write without ever asking the registry.
 */
public final class FramedAvroSerializationSchema<T extends SpecificRecord> implements SerializationSchema<T> {
    private static final long serialVersionUID = 1L;

    private final Class<T> type;
    private final int schemaId;

    private transient SpecificDatumWriter<T> writer;
    private transient ByteArrayOutputStream buffer;
    private transient BinaryEncoder encoder;

    public FramedAvroSerializationSchema(Class<T> type, int schemaId) {
        this.type = type;
        this.schemaId = schemaId;
    }

    public int schemaId() {
        return schemaId;
    }

    @Override
    public byte[] serialize(T element) {
        if (writer == null) {
            writer = new SpecificDatumWriter<>(type);
            buffer = new ByteArrayOutputStream(256);
        }
        buffer.reset();
        buffer.write(Framing.MAGIC);
        buffer.write(schemaId >>> 24);
        buffer.write(schemaId >>> 16);
        buffer.write(schemaId >>> 8);
        buffer.write(schemaId);
        try {
            encoder = EncoderFactory.get().directBinaryEncoder(buffer, encoder);
            writer.write(element, encoder);
            encoder.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot encode " + type.getSimpleName(), e);
        }
        return buffer.toByteArray();
    }
}
