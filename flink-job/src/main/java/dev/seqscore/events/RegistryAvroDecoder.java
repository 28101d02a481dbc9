package dev.seqscore.events;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.registry.Framing;
import dev.seqscore.registry.RegistryClient;
import dev.seqscore.registry.RegistryEndpoint;
import java.io.IOException;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.specific.SpecificDatumReader;

/**
 * Decodes schema-registry framed Avro ({@link Framing}) written with any writer schema that resolves to the job's
 * {@link ClickEvent} (added fields, removed fields with a default, reordered fields), never throwing: every value
 * becomes an {@link InputRecord}, and one that cannot be read carries the reason the pipeline dead-letters it with:
 * {@code NOT_FRAMED}, {@code UNKNOWN_SCHEMA_ID}, {@code INCOMPATIBLE_SCHEMA}, {@code REGISTRY_UNAVAILABLE}, or
 * {@code UNDECODABLE} for bytes that do not match their own writer schema.
 *
 * <p>Per schema id it fetches the writer schema once and keeps the resolving reader, so ids already seen never
 * need the registry again: an outage only affects ids first seen during it. A failed fetch costs at most the
 * endpoint's timeouts, and then the registry is not asked again for {@link #RETRY_AFTER_FAILURE_MS}, so an outage
 * cannot stall the source thread on every record. An id the registry does not know is remembered as unknown for
 * {@link #UNKNOWN_ID_TTL_MS}, so a flood of such records costs one request per id and minute.
 */
public final class RegistryAvroDecoder implements Serializable {
    private static final long serialVersionUID = 1L;

    static final long RETRY_AFTER_FAILURE_MS = 5_000;
    static final long UNKNOWN_ID_TTL_MS = 60_000;
    /** Bound on remembered ids (resolved or failed): an id is only ever one of the subjects' schema versions. */
    static final int MAX_CACHED_IDS = 10_000;

    private final RegistryEndpoint endpoint;
    private final LongSupplier clock;

    private transient RegistryClient client;
    private transient Map<Integer, Resolution> byId;
    private transient long noRequestsUntil;
    private transient String lastFailure;

    public RegistryAvroDecoder(RegistryEndpoint endpoint) {
        this(endpoint, (LongSupplier & Serializable) () -> TimeUnit.NANOSECONDS.toMillis(System.nanoTime()));
    }

    RegistryAvroDecoder(RegistryEndpoint endpoint, LongSupplier clock) {
        this.endpoint = endpoint;
        this.clock = clock;
    }

    /** What an id resolved to: a reader, or why there is none (and until when that verdict holds). */
    private record Resolution(SpecificDatumReader<ClickEvent> reader, Schema writer, DeadLetterReason failure,
                              String detail, long expiresAtMs) {
        static Resolution of(Schema writer) {
            return new Resolution(new SpecificDatumReader<>(writer, ClickEvent.getClassSchema()), writer, null, null,
                    Long.MAX_VALUE);
        }

        static Resolution failed(DeadLetterReason reason, String detail, long expiresAtMs) {
            return new Resolution(null, null, reason, detail, expiresAtMs);
        }
    }

    public InputRecord decode(byte[] value, String topic, int partition, long offset) {
        if (value == null) {
            return InputRecord.undecodable("null value (tombstone)", topic, partition, offset, null);
        }
        if (!Framing.isFramed(value)) {
            return InputRecord.undecodable(DeadLetterReason.NOT_FRAMED, "not schema-registry framed Avro: "
                    + (value.length < Framing.HEADER_LENGTH ? value.length + " bytes"
                            : "first byte 0x" + Integer.toHexString(value[0] & 0xff) + ", not the magic byte 0"),
                    topic, partition, offset, value);
        }
        int id = Framing.schemaId(value);
        try {
            Resolution r = resolve(id);
            if (r.failure != null) {
                return InputRecord.undecodable(r.failure, r.detail, topic, partition, offset, value);
            }
            return InputRecord.decoded(read(r, value), topic, partition, offset, value);
        } catch (Exception | StackOverflowError e) {
            // Arbitrary bytes after a valid frame make Avro throw anything from IOException to ArrayIndexOutOfBounds.
            return InputRecord.undecodable(DeadLetterReason.UNDECODABLE, "avro (schema id "
                    + Integer.toUnsignedString(id) + "): " + e.getClass().getSimpleName() + ": " + e.getMessage(),
                    topic, partition, offset, value);
        }
    }

    private static ClickEvent read(Resolution r, byte[] value) throws IOException {
        int length = value.length - Framing.HEADER_LENGTH;
        // As in ClickEventAvro.decode: skipping first allocates nothing, so a few bytes claiming a 2 GB string
        // fail here instead of exhausting the heap.
        BinaryDecoder check = DecoderFactory.get().binaryDecoder(value, Framing.HEADER_LENGTH, length, null);
        GenericDatumReader.skip(r.writer, check);
        if (!check.isEnd()) {
            throw new IOException("trailing bytes after the record: not written with its frame's schema");
        }
        BinaryDecoder dec = DecoderFactory.get().binaryDecoder(value, Framing.HEADER_LENGTH, length, null);
        return r.reader.read(null, dec);
    }

    private Resolution resolve(int id) {
        if (byId == null) {
            byId = new LinkedHashMap<>(64, 0.75f, true) {
                @Override
                protected boolean removeEldestEntry(Map.Entry<Integer, Resolution> eldest) {
                    return size() > MAX_CACHED_IDS;
                }
            };
            client = new RegistryClient(endpoint);
        }
        long now = clock.getAsLong();
        Resolution known = byId.get(id);
        if (known != null && now < known.expiresAtMs) {
            return known;
        }
        if (now < noRequestsUntil) {
            return Resolution.failed(DeadLetterReason.REGISTRY_UNAVAILABLE, "schema id " + Integer.toUnsignedString(id)
                    + " not seen before, and the registry failed less than " + RETRY_AFTER_FAILURE_MS + " ms ago: "
                    + lastFailure, 0);
        }
        Resolution r = fetch(id, now);
        if (r.failure == DeadLetterReason.REGISTRY_UNAVAILABLE) {
            noRequestsUntil = clock.getAsLong() + RETRY_AFTER_FAILURE_MS;
            lastFailure = r.detail;
        } else {
            byId.put(id, r);
        }
        return r;
    }

    private Resolution fetch(int id, long now) {
        String name = Integer.toUnsignedString(id);
        RegistryClient.RegisteredSchema s;
        try {
            s = client.schemaById(id);
        } catch (RegistryClient.UnknownSchemaException e) {
            return Resolution.failed(DeadLetterReason.UNKNOWN_SCHEMA_ID, e.getMessage(), now + UNKNOWN_ID_TTL_MS);
        } catch (RegistryClient.RegistryUnavailableException e) {
            return Resolution.failed(DeadLetterReason.REGISTRY_UNAVAILABLE, "schema id " + name + ": "
                    + e.getMessage(), 0);
        }
        if (!s.type().equalsIgnoreCase("AVRO")) {
            return Resolution.failed(DeadLetterReason.INCOMPATIBLE_SCHEMA, "schema id " + name + " is "
                    + s.type() + ", not Avro", Long.MAX_VALUE);
        }
        Schema writer;
        try {
            writer = new Schema.Parser().parse(s.schema());
        } catch (RuntimeException e) {
            return Resolution.failed(DeadLetterReason.INCOMPATIBLE_SCHEMA, "schema id " + name
                    + " is not a valid Avro schema: " + e.getMessage(), Long.MAX_VALUE);
        }
        SchemaCompatibility.SchemaPairCompatibility c =
                SchemaCompatibility.checkReaderWriterCompatibility(ClickEvent.getClassSchema(), writer);
        if (c.getType() != SchemaCompatibility.SchemaCompatibilityType.COMPATIBLE) {
            return Resolution.failed(DeadLetterReason.INCOMPATIBLE_SCHEMA, "schema id " + name + " ("
                    + writer.getFullName() + ") cannot be read as " + ClickEvent.getClassSchema().getFullName()
                    + ": " + c.getResult().getIncompatibilities().stream()
                            .map(i -> i.getType() + " at " + where(i.getLocation()) + ": " + i.getMessage())
                            .toList(), Long.MAX_VALUE);
        }
        return Resolution.of(writer);
    }

    /** A reader-schema location such as {@code /fields/4/type} with the field's name: {@code event_time (/fields/4/type)}. */
    static String where(String location) {
        String[] parts = location == null ? new String[0] : location.split("/");
        if (parts.length >= 3 && parts[1].equals("fields")) {
            try {
                int i = Integer.parseInt(parts[2]);
                List<Schema.Field> fields = ClickEvent.getClassSchema().getFields();
                if (i >= 0 && i < fields.size()) {
                    return "field " + fields.get(i).name() + " (" + location + ")";
                }
            } catch (NumberFormatException e) {
                // Not an index: keep the location as it is.
            }
        }
        return location;
    }
}
