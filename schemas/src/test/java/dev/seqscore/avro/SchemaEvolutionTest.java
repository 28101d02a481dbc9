package dev.seqscore.avro;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import org.apache.avro.JsonProperties;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityType;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificDatumWriter;
import org.junit.jupiter.api.Test;

/**
 * The evolution rule of the contracts (add only optional fields with defaults) works in both directions on real Avro
 * binary: a deployed job keeps reading what an upgraded producer writes, and an upgraded job reads old data.
 */
class SchemaEvolutionTest {

    private static final Schema CURRENT = ClickEvent.getClassSchema();
    /** ClickEvent as a future producer might send it: one more optional field, nothing else changed. */
    private static final Schema NEWER = withAddedOptionalField(CURRENT, "referrer");

    private static ClickEvent sample() {
        return ClickEvent.newBuilder()
                .setUserId("u-42")
                .setEventType("cart")
                .setItemId("item-7")
                .setCategoryId("cat-3")
                .setEventTime(Instant.ofEpochMilli(1_511_544_070_000L))
                .setPrice(19.99)
                .setSessionId("s-1")
                .build();
    }

    @Test
    void oldReaderReadsRecordsFromNewerWriter() throws Exception {
        GenericRecord written = new GenericData.Record(NEWER);
        ClickEvent expected = sample();
        written.put("user_id", expected.getUserId());
        written.put("event_type", expected.getEventType());
        written.put("item_id", expected.getItemId());
        written.put("category_id", expected.getCategoryId());
        written.put("event_time", expected.getEventTime().toEpochMilli());
        written.put("price", expected.getPrice());
        written.put("session_id", expected.getSessionId());
        written.put("referrer", "https://example.com");
        byte[] bytes = AvroBinary.write(new GenericDatumWriter<>(NEWER), written);

        // Schema resolution: the deployed job knows only CURRENT and skips the field it has never heard of.
        ClickEvent read = AvroBinary.read(new SpecificDatumReader<>(NEWER, CURRENT), bytes);

        assertThat(read).isEqualTo(expected);
    }

    @Test
    void newReaderReadsOldRecordsWithTheDefault() throws Exception {
        byte[] bytes = AvroBinary.write(new SpecificDatumWriter<>(ClickEvent.class), sample());

        GenericRecord read = AvroBinary.read(new GenericDatumReader<>(CURRENT, NEWER), bytes);

        assertThat(read.get("referrer")).isNull();
        assertThat(read.get("user_id").toString()).isEqualTo("u-42");
        assertThat(read.get("event_type").toString()).isEqualTo("cart");
        assertThat(read.get("event_time")).isEqualTo(1_511_544_070_000L);
        assertThat(read.get("price")).isEqualTo(19.99);
    }

    @Test
    void unknownEventTypeStillDecodesBecauseItIsAString() throws Exception {
        // Had event_type been an enum, a producer's new symbol would make every old reader fail on the record.
        ClickEvent event = sample();
        event.setEventType("wishlist");
        byte[] bytes = AvroBinary.write(new SpecificDatumWriter<>(ClickEvent.class), event);

        ClickEvent read = AvroBinary.read(new SpecificDatumReader<>(ClickEvent.class), bytes);

        assertThat(read.getEventType()).isEqualTo("wishlist");
    }

    @Test
    void addingAnOptionalFieldIsCompatibleBothWaysForEveryContract() {
        for (Schema schema : List.of(ClickEvent.getClassSchema(), Alert.getClassSchema(),
                Score.getClassSchema(), DeadLetter.getClassSchema(), ErasureAudit.getClassSchema())) {
            Schema newer = withAddedOptionalField(schema, "added_later");
            assertThat(SchemaCompatibility.checkReaderWriterCompatibility(schema, newer).getType())
                    .as("%s: old reader, new writer", schema.getName())
                    .isEqualTo(SchemaCompatibilityType.COMPATIBLE);
            assertThat(SchemaCompatibility.checkReaderWriterCompatibility(newer, schema).getType())
                    .as("%s: new reader, old writer", schema.getName())
                    .isEqualTo(SchemaCompatibilityType.COMPATIBLE);
        }
    }

    @Test
    void addingARequiredFieldWouldBreakOldData() {
        // The reason for the rule: a field without a default cannot be filled in when reading old records.
        List<Schema.Field> fields = copyFields(CURRENT);
        fields.add(new Schema.Field("referrer", Schema.create(Schema.Type.STRING), null, (Object) null));
        Schema withRequired = Schema.createRecord(CURRENT.getName(), CURRENT.getDoc(), CURRENT.getNamespace(), false,
                fields);

        assertThat(SchemaCompatibility.checkReaderWriterCompatibility(withRequired, CURRENT).getType())
                .isEqualTo(SchemaCompatibilityType.INCOMPATIBLE);
    }

    /** Alert as every job before reasons wrote it, kept verbatim: the readers in the field know only this. */
    private static Schema alertBeforeReasons() throws Exception {
        try (var in = SchemaEvolutionTest.class.getResourceAsStream("/previous/Alert-before-reasons.avsc")) {
            return new Schema.Parser().parse(in);
        }
    }

    private static Alert alertWithReasons() {
        return Alert.newBuilder()
                .setAlertId("a-1")
                .setUserId("u-42")
                .setAlertType("HIGH_PURCHASE_INTENT")
                .setOutput("purchase_30m")
                .setScore(0.41)
                .setThreshold(0.23)
                .setScores(java.util.Map.of("purchase_30m", 0.41, "churn_24h", 0.02))
                .setModelVersion("m1")
                .setEventTime(Instant.ofEpochMilli(1_511_544_070_000L))
                .setEventType("cart")
                .setItemId("item-7")
                .setWindowLength(12)
                .setEmittedAt(Instant.ofEpochMilli(1_800_000_000_000L))
                .setReasons(List.of(
                        new AlertReason("carts_without_buy", "3 carts without a buy in the window", 0.12),
                        new AlertReason("repeat_views", "4 earlier events on this item", 0.05)))
                .build();
    }

    @Test
    void readerFromBeforeReasonsDecodesAlertsThatCarryThem() throws Exception {
        Schema old = alertBeforeReasons();
        Alert alert = alertWithReasons();
        byte[] bytes = AvroBinary.write(new SpecificDatumWriter<>(Alert.class), alert);

        GenericRecord read = AvroBinary.read(new GenericDatumReader<>(Alert.getClassSchema(), old), bytes);

        assertThat(read.getSchema().getField("reasons")).isNull();
        assertThat(read.get("alert_id").toString()).isEqualTo("a-1");
        assertThat(read.get("score")).isEqualTo(0.41);
        assertThat(read.get("window_length")).isEqualTo(12);
        assertThat(read.get("emitted_at")).isEqualTo(1_800_000_000_000L);
    }

    @Test
    void currentReaderDecodesAlertsFromBeforeReasonsWithNone() throws Exception {
        Schema old = alertBeforeReasons();
        Alert expected = alertWithReasons();
        GenericRecord written = new GenericData.Record(old);
        for (Schema.Field f : old.getFields()) {
            Object v = expected.get(f.name());
            written.put(f.name(), v instanceof Instant i ? i.toEpochMilli() : v);
        }
        byte[] bytes = AvroBinary.write(new GenericDatumWriter<>(old), written);

        Alert read = AvroBinary.read(new SpecificDatumReader<>(old, Alert.getClassSchema()), bytes);

        assertThat(read.getReasons()).isEmpty();
        expected.setReasons(List.of());
        assertThat(read).isEqualTo(expected);
    }

    private static Schema withAddedOptionalField(Schema base, String name) {
        List<Schema.Field> fields = copyFields(base);
        Schema optionalString = Schema.createUnion(Schema.create(Schema.Type.NULL), Schema.create(Schema.Type.STRING));
        fields.add(new Schema.Field(name, optionalString, "added in a later version", JsonProperties.NULL_VALUE));
        return Schema.createRecord(base.getName(), base.getDoc(), base.getNamespace(), false, fields);
    }

    /** Schema.Field objects belong to one record schema, so a derived schema needs copies. */
    private static List<Schema.Field> copyFields(Schema base) {
        List<Schema.Field> fields = new ArrayList<>();
        for (Schema.Field f : base.getFields()) {
            fields.add(new Schema.Field(f, f.schema()));
        }
        return fields;
    }
}
