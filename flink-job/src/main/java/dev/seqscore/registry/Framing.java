package dev.seqscore.registry;

/**
 * The schema-registry wire format of a Kafka value (Confluent's, which Apicurio's serdes also write by default):
 * magic byte 0, the writer schema's id as a 4-byte big-endian integer, then the Avro binary of the record.
 */
public final class Framing {
    public static final byte MAGIC = 0;
    public static final int HEADER_LENGTH = 5;

    private Framing() {}

    /** Whether the value starts with the magic byte and is long enough to carry an id. */
    public static boolean isFramed(byte[] value) {
        return value != null && value.length >= HEADER_LENGTH && value[0] == MAGIC;
    }

    /** The schema id of a framed value. */
    public static int schemaId(byte[] value) {
        return ((value[1] & 0xff) << 24) | ((value[2] & 0xff) << 16) | ((value[3] & 0xff) << 8) | (value[4] & 0xff);
    }

    /** Writes the 5-byte header for {@code schemaId} at the start of {@code out}. */
    public static void writeHeader(int schemaId, byte[] out) {
        out[0] = MAGIC;
        out[1] = (byte) (schemaId >>> 24);
        out[2] = (byte) (schemaId >>> 16);
        out[3] = (byte) (schemaId >>> 8);
        out[4] = (byte) schemaId;
    }

    /** The header followed by {@code avro}. */
    public static byte[] frame(int schemaId, byte[] avro) {
        byte[] out = new byte[HEADER_LENGTH + avro.length];
        writeHeader(schemaId, out);
        System.arraycopy(avro, 0, out, HEADER_LENGTH, avro.length);
        return out;
    }
}
