package dev.seqscore.offline.files;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.offline.files.EventFileReader.Format;

class EventFileReaderTest {

    private static List<FileRecord> read(Format format, String name, String content) throws IOException {
        try (Stream<FileRecord> s = EventFileReader.of(new StringReader(content), format, name).stream()) {
            return s.toList();
        }
    }

    private static FileRecord single(Format format, String name, String content) throws IOException {
        List<FileRecord> records = read(format, name, content);
        assertThat(records).hasSize(1);
        return records.get(0);
    }

    @Nested
    class FormatParsing {
        @Test
        void parsesCliNamesCaseInsensitively() {
            assertThat(Format.parse("taobao")).isEqualTo(Format.TAOBAO);
            assertThat(Format.parse(" REES46 ")).isEqualTo(Format.REES46);
            assertThat(Format.parse("Canonical")).isEqualTo(Format.CANONICAL);
            assertThat(Format.REES46.cliName()).isEqualTo("rees46");
        }

        @Test
        void unknownNameListsTheValidOnes() {
            assertThatThrownBy(() -> Format.parse("parquet"))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessage("unknown format 'parquet'; valid formats are taobao, rees46, canonical");
            assertThatThrownBy(() -> Format.parse(null)).hasMessageContaining("taobao, rees46, canonical");
        }
    }

    @Nested
    class Taobao {
        @Test
        void mapsEveryBehaviourAndScalesSecondsToMillis() throws IOException {
            List<FileRecord> r = read(Format.TAOBAO, "t.csv", """
                    1,2268318,2520377,pv,1511544070
                    1,2333346,2520771,cart,1511561733
                    2,2576651,149192,fav,1511572885
                    2,3830808,4181361,buy,1511593493
                    """);

            assertThat(r).allMatch(FileRecord::isValid);
            assertThat(r).extracting(x -> x.event().getEventType()).containsExactly("view", "cart", "fav", "buy");
            assertThat(r).extracting(FileRecord::lineNumber).containsExactly(1L, 2L, 3L, 4L);
            FileRecord first = r.get(0);
            assertThat(first.event()).isEqualTo(new ClickEvent("1", "view", "2268318", "2520377",
                    Instant.ofEpochMilli(1_511_544_070_000L), null, null));
            assertThat(first.rawTimestamp()).isEqualTo("1511544070");
            assertThat(first.rawLine()).isEqualTo("1,2268318,2520377,pv,1511544070");
        }

        @ParameterizedTest(name = "{0} -> {2}")
        @CsvSource(delimiter = '|', textBlock = """
                1,2,3,pv                  | wrong_column_count     | wrong column count: 4, expected 5
                1,2,3,pv,1511544070,9     | wrong_column_count     | wrong column count: 6, expected 5
                ,2,3,pv,1511544070        | empty_user             | empty user_id
                1,,3,pv,1511544070        | empty_item             | empty item_id
                " ",2,3,pv,1511544070     | empty_user             | empty user_id
                1,2,3,zzz,1511544070      | unknown_event_type     | unknown event type 'zzz'
                1,2,3,,1511544070         | unknown_event_type     | unknown event type ''
                1,2,3,pv,abc              | bad_timestamp          | non-numeric timestamp 'abc'
                1,2,3,pv,1.5e9            | bad_timestamp          | non-numeric timestamp '1.5e9'
                1,2,3,pv,-                | bad_timestamp          | non-numeric timestamp '-'
                1,2,3,pv,+1511544070      | bad_timestamp          | non-numeric timestamp '+1511544070'
                1,2,3,pv,                 | bad_timestamp          | empty timestamp
                1,2,3,pv,-5               | bad_timestamp          | non-numeric timestamp '-5'
                1,2,3,pv,99999999999999999999 | bad_timestamp      | timestamp out of range '99999999999999999999'
                1,2,3,pv,9223372036854776 | bad_timestamp          | timestamp out of range '9223372036854776'
                1,2,3,pv,1511539199       | out_of_time_range      | timestamp 1511539199 outside [1511539200, 1512316800) s
                1,2,3,pv,1512316800       | out_of_time_range      | timestamp 1512316800 outside [1511539200, 1512316800) s
                1,2,3,pv,0                | out_of_time_range      | timestamp 0 outside [1511539200, 1512316800) s
                "1,2,3,pv,1511544070      | bad_quoting            | unterminated quote
                """)
        void rejectsMalformedLinesWithTheReason(String line, String kind, String reason) throws IOException {
            FileRecord r = single(Format.TAOBAO, "t.csv", line.strip() + "\n");

            assertThat(r.isValid()).isFalse();
            assertThat(r.event()).isNull();
            assertThat(r.rejection()).isEqualTo(reason);
            assertThat(r.rejectionKind()).isEqualTo(kind);
            assertThat(r.rawLine()).isEqualTo(line.strip());
        }

        @Test
        void rawRejectedTypesAreNotPassedThrough() throws IOException {
            // "view" is canonical but not a Taobao behaviour: the source mapping is closed.
            assertThat(single(Format.TAOBAO, "t.csv", "1,2,3,view,1511544070").rejection())
                    .isEqualTo("unknown event type 'view'");
        }

        @Test
        void keepsPhysicalLineNumbersAcrossBlankAndBadLinesAndToleratesCrLfAndBom() throws IOException {
            List<FileRecord> r = read(Format.TAOBAO, "t.csv",
                    "\uFEFF1,2,3,pv,1511544070\r\n\r\n1,2,3\r\n   \n4,5,6,buy,1511544071\r\n");

            assertThat(r).extracting(FileRecord::lineNumber).containsExactly(1L, 3L, 5L);
            assertThat(r).extracting(FileRecord::isValid).containsExactly(true, false, true);
            assertThat(r.get(0).event().getUserId()).isEqualTo("1");
            assertThat(r.get(2).rawLine()).isEqualTo("4,5,6,buy,1511544071");
        }

        @Test
        void emptyFileHasNoRecords() throws IOException {
            assertThat(read(Format.TAOBAO, "t.csv", "")).isEmpty();
        }
    }

    @Nested
    class Rees46 {
        static final String HEADER =
                "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n";

        @Test
        void mapsColumnsTypesAndTime() throws IOException {
            List<FileRecord> r = read(Format.REES46, "r.csv", HEADER + """
                    2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde
                    2019-10-01 00:00:01 UTC,cart,3900821,2053013552326770905,appliances.water_heater,aqua,33.20,554748717,
                    2019-10-01 00:00:02 UTC,purchase,1307067,2053013558920217191,computers.notebook,lenovo,,550050854,7c90
                    2019-10-01 00:00:03 UTC,remove_from_cart,1307067,,computers.notebook,lenovo,0,550050854,7c90
                    """);

            assertThat(r).allMatch(FileRecord::isValid);
            assertThat(r).extracting(FileRecord::lineNumber).containsExactly(2L, 3L, 4L, 5L);
            assertThat(r.get(0).event()).isEqualTo(new ClickEvent("541312140", "view", "44600062",
                    "2103807459595387724", Instant.parse("2019-10-01T00:00:00Z"), 35.79, "72d76fde"));
            assertThat(r.get(0).rawTimestamp()).isEqualTo("2019-10-01 00:00:00 UTC");
            assertThat(r.get(1).event().getSessionId()).as("empty session").isNull();
            assertThat(r.get(2).event().getEventType()).isEqualTo("buy");
            assertThat(r.get(2).event().getPrice()).as("empty price").isNull();
            assertThat(r.get(3).event().getEventType()).isEqualTo("remove_from_cart");
            assertThat(r.get(3).event().getCategoryId()).isEmpty();
            assertThat(r.get(3).event().getPrice()).isEqualTo(0.0);
        }

        @Test
        void findsColumnsByHeaderNameAndHonoursQuotes() throws IOException {
            FileRecord r = single(Format.REES46, "r.csv",
                    "user_id,user_session,price,brand,category_code,category_id,product_id,event_type,event_time\n"
                            + "7,s,1.5,\"acme, inc\",a.b,c,p,view,2019-10-01 12:34:56 UTC\n");

            assertThat(r.event()).isEqualTo(new ClickEvent("7", "view", "p", "c",
                    Instant.parse("2019-10-01T12:34:56Z"), 1.5, "s"));
        }

        @ParameterizedTest(name = "{0} -> {2}")
        @CsvSource(delimiter = '|', textBlock = """
                2019-10-01 00:00:00 UTC,view,1,2,,b,1.0,3                  | wrong_column_count | wrong column count: 8, expected 9
                2019-10-01 00:00:00 UTC,zzz,1,2,,b,1.0,3,s                 | unknown_event_type | unknown event type 'zzz'
                2019-10-01 00:00:00 UTC,buy,1,2,,b,1.0,3,s                 | unknown_event_type | unknown event type 'buy'
                2019-10-01 00:00:00 UTC,view,1,2,,b,1.0,,s                 | empty_user         | empty user_id
                2019-10-01 00:00:00 UTC,view,,2,,b,1.0,3,s                 | empty_item         | empty item_id
                abc,view,1,2,,b,1.0,3,s                                    | bad_timestamp      | unparseable timestamp 'abc', expected YYYY-MM-DD HH:MM:SS UTC
                2019-10-01T00:00:00Z,view,1,2,,b,1.0,3,s                   | bad_timestamp      | unparseable timestamp '2019-10-01T00:00:00Z', expected YYYY-MM-DD HH:MM:SS UTC
                2019-02-30 00:00:00 UTC,view,1,2,,b,1.0,3,s                | bad_timestamp      | unparseable timestamp '2019-02-30 00:00:00 UTC', expected YYYY-MM-DD HH:MM:SS UTC
                ,view,1,2,,b,1.0,3,s                                       | bad_timestamp      | unparseable timestamp '', expected YYYY-MM-DD HH:MM:SS UTC
                2019-1-01 00:00:00 UTC,view,1,2,,b,1.0,3,s                 | bad_timestamp      | unparseable timestamp '2019-1-01 00:00:00 UTC', expected YYYY-MM-DD HH:MM:SS UTC
                2019-10-01 00:00:00 UTC,view,1,2,,b,cheap,3,s              | bad_price          | non-numeric price 'cheap'
                2019-10-01 00:00:00 UTC,view,1,2,,b,-1,3,s                 | bad_price          | invalid price '-1'
                2019-10-01 00:00:00 UTC,view,1,2,,b,NaN,3,s                | bad_price          | non-numeric price 'NaN'
                2019-10-01 00:00:00 UTC,view,1,2,,b,0x1p3,3,s              | bad_price          | non-numeric price '0x1p3'
                2019-10-01 00:00:00 UTC,view,1,2,,b,1e400,3,s              | bad_price          | invalid price '1e400'
                """)
        void rejectsMalformedLinesWithTheReason(String line, String kind, String reason) throws IOException {
            FileRecord r = single(Format.REES46, "r.csv", HEADER + line.strip() + "\n");

            assertThat(r.rejection()).isEqualTo(reason);
            assertThat(r.rejectionKind()).isEqualTo(kind);
            assertThat(r.lineNumber()).isEqualTo(2);
        }

        @Test
        void headerWithoutARequiredColumnFailsAtOpen() {
            assertThatThrownBy(() -> read(Format.REES46, "r.csv", "event_time,event_type,product_id\n"))
                    .isInstanceOf(IOException.class)
                    .hasMessageContaining("r.csv: header lacks column(s) [category_id, price, user_id, user_session]");
        }

        @Test
        void taobaoFileReadAsRees46FailsClearly() {
            assertThatThrownBy(() -> read(Format.REES46, "r.csv", "1,2268318,2520377,pv,1511544070\n"))
                    .isInstanceOf(IOException.class).hasMessageContaining("header lacks column(s)");
        }

        @Test
        void headerOnlyFileHasNoRecords() throws IOException {
            assertThat(read(Format.REES46, "r.csv", HEADER)).isEmpty();
            assertThat(read(Format.REES46, "r.csv", "")).isEmpty();
        }
    }

    @Nested
    class CanonicalCsv {
        static final String HEADER = "user_id,event_type,item_id,category_id,event_time,price,session_id\n";

        @Test
        void readsMillisAndEmptyCellsAsNull() throws IOException {
            List<FileRecord> r = read(Format.CANONICAL, "c.csv", HEADER + """
                    u1,view,i1,c1,1511544070123,9.5,s1
                    u2,cart,i2,,1511544070124,,
                    """);

            assertThat(r.get(0).event()).isEqualTo(new ClickEvent("u1", "view", "i1", "c1",
                    Instant.ofEpochMilli(1_511_544_070_123L), 9.5, "s1"));
            assertThat(r.get(0).rawTimestamp()).isEqualTo("1511544070123");
            assertThat(r.get(1).event()).isEqualTo(new ClickEvent("u2", "cart", "i2", "",
                    Instant.ofEpochMilli(1_511_544_070_124L), null, null));
        }

        @Test
        void passesUnknownEventTypesThroughForTheJobToJudge() throws IOException {
            FileRecord r = single(Format.CANONICAL, "c.csv", HEADER + "u1,wishlist,i1,c1,1,,\n");

            assertThat(r.isValid()).isTrue();
            assertThat(r.event().getEventType()).isEqualTo("wishlist");
        }

        @Test
        void optionalColumnsMayBeAbsent() throws IOException {
            FileRecord r = single(Format.CANONICAL, "c.csv", "event_time,user_id,item_id,event_type\n5,u,i,buy\n");

            assertThat(r.event()).isEqualTo(new ClickEvent("u", "buy", "i", "", Instant.ofEpochMilli(5), null, null));
        }

        @ParameterizedTest(name = "{0} -> {2}")
        @CsvSource(delimiter = '|', textBlock = """
                u1,view,i1,c1,1511544070123,9.5        | wrong_column_count    | wrong column count: 6, expected 7
                ,view,i1,c1,1511544070123,,            | empty_user            | empty user_id
                u1,view,,c1,1511544070123,,            | empty_item            | empty item_id
                u1,,i1,c1,1511544070123,,              | unknown_event_type    | empty event_type
                u1,view,i1,c1,abc,,                    | bad_timestamp         | non-numeric timestamp 'abc'
                u1,view,i1,c1,2017-11-25,,             | bad_timestamp         | non-numeric timestamp '2017-11-25'
                u1,view,i1,c1,,,                       | bad_timestamp         | empty timestamp
                u1,view,i1,c1,-1,,                     | bad_timestamp         | non-numeric timestamp '-1'
                u1,view,i1,c1,0,,                      | bad_timestamp         | event_time 0 is not after 1970
                u1,view,i1,c1,1,x,                     | bad_price             | non-numeric price 'x'
                u1,view,i1,c1,1,-2.5,                  | bad_price             | invalid price '-2.5'
                u1,view,i1,c1,1,null,                  | bad_price             | non-numeric price 'null'
                """)
        void rejectsMalformedLinesWithTheReason(String line, String kind, String reason) throws IOException {
            FileRecord r = single(Format.CANONICAL, "c.csv", HEADER + line.strip() + "\n");

            assertThat(r.rejection()).isEqualTo(reason);
            assertThat(r.rejectionKind()).isEqualTo(kind);
        }

        @Test
        void headerWithoutEventTimeFailsAtOpen() {
            assertThatThrownBy(() -> read(Format.CANONICAL, "c.csv", "user_id,event_type,item_id\nu,view,i\n"))
                    .isInstanceOf(IOException.class).hasMessageContaining("[event_time]");
        }
    }

    @Nested
    class CanonicalJsonl {
        @Test
        void readsObjectsWithTheCanonicalKeys() throws IOException {
            List<FileRecord> r = read(Format.CANONICAL, "c.jsonl", """
                    {"user_id":"u1","event_type":"view","item_id":"i1","category_id":"c1","event_time":1511544070123,"price":9.5,"session_id":"s1"}
                    {"user_id":42,"event_type":"cart","item_id":7,"event_time":1511544070124}
                    """);

            assertThat(r).extracting(FileRecord::lineNumber).containsExactly(1L, 2L);
            assertThat(r.get(0).event()).isEqualTo(new ClickEvent("u1", "view", "i1", "c1",
                    Instant.ofEpochMilli(1_511_544_070_123L), 9.5, "s1"));
            assertThat(r.get(0).rawTimestamp()).isEqualTo("1511544070123");
            assertThat(r.get(1).event()).isEqualTo(new ClickEvent("42", "cart", "7", "",
                    Instant.ofEpochMilli(1_511_544_070_124L), null, null));
        }

        @Test
        void detectsJsonByContentWhenTheExtensionSaysNothing() throws IOException {
            try (EventFileReader reader = EventFileReader.of(new StringReader(
                    "\n{\"user_id\":\"u\",\"event_type\":\"buy\",\"item_id\":\"i\",\"event_time\":1}\n"),
                    Format.CANONICAL, "events.txt")) {
                assertThat(reader.isJson()).isTrue();
                FileRecord r = reader.next();
                assertThat(r.lineNumber()).isEqualTo(2);
                assertThat(r.event().getEventType()).isEqualTo("buy");
                assertThat(reader.hasNext()).isFalse();
            }
            try (EventFileReader reader = EventFileReader.of(new StringReader(
                    "user_id,event_type,item_id,event_time\nu,buy,i,1\n"), Format.CANONICAL, "events.txt")) {
                assertThat(reader.isJson()).isFalse();
                assertThat(reader.next().event().getItemId()).isEqualTo("i");
            }
        }

        @ParameterizedTest(name = "{0} -> {2}")
        @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
                {"user_id":"u","event_type":"view","item_id":"i"                        | bad_json           | invalid JSON: Unexpected end-of-input...
                [1,2,3]                                                                 | bad_json           | expected a JSON object, got ARRAY
                {"event_type":"view","item_id":"i","event_time":1}                      | empty_user         | user_id is missing
                {"user_id":"","event_type":"view","item_id":"i","event_time":1}         | empty_user         | empty user_id
                {"user_id":"u","event_type":"view","item_id":" ","event_time":1}        | empty_item         | empty item_id
                {"user_id":"u","event_type":"","item_id":"i","event_time":1}            | unknown_event_type | empty event_type
                {"user_id":"u","item_id":"i","event_time":1}                            | unknown_event_type | event_type is missing
                {"user_id":"u","event_type":"view","item_id":"i"}                       | bad_timestamp      | event_time is missing
                {"user_id":"u","event_type":"view","item_id":"i","event_time":"abc"}    | bad_timestamp      | event_time must be an integer of epoch milliseconds, got "abc"
                {"user_id":"u","event_type":"view","item_id":"i","event_time":1.5}      | bad_timestamp      | event_time must be an integer of epoch milliseconds, got 1.5
                {"user_id":"u","event_type":"view","item_id":"i","event_time":-3}       | bad_timestamp      | event_time -3 is not after 1970
                {"user_id":["u"],"event_type":"view","item_id":"i","event_time":1}      | bad_field          | user_id must be a string, got ARRAY ["u"]
                {"user_id":"u","event_type":"view","item_id":"i","category_id":{},"event_time":1} | bad_field | category_id must be a string, got OBJECT {}
                {"user_id":"u","event_type":"view","item_id":"i","event_time":1,"price":"x"} | bad_price     | price must be a number, got "x"
                {"user_id":"u","event_type":"view","item_id":"i","event_time":1,"price":-1}  | bad_price     | price -1.0 is not a non-negative number
                """)
        void rejectsMalformedLinesWithTheReason(String line, String kind, String reason) throws IOException {
            FileRecord r = single(Format.CANONICAL, "c.jsonl", line.strip() + "\n");

            assertThat(r.rejectionKind()).isEqualTo(kind);
            // Jackson's own wording after the first words is its business, not ours.
            if (reason.endsWith("...")) {
                assertThat(r.rejection()).startsWith(reason.substring(0, reason.length() - 3));
            } else {
                assertThat(r.rejection()).isEqualTo(reason);
            }
        }
    }

    @Test
    void readsLazilyFromAFileAndClosesWithTheStream(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("big.csv");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 10_000; i++) {
            sb.append(i % 50).append(',').append(i).append(",1,pv,").append(1_511_544_000 + i).append('\n');
        }
        Files.writeString(file, sb);

        try (Stream<FileRecord> s = EventFileReader.lines(file, Format.TAOBAO)) {
            assertThat(s.limit(3).map(r -> r.event().getItemId())).containsExactly("0", "1", "2");
        }
        try (Stream<FileRecord> s = EventFileReader.lines(file, Format.TAOBAO)) {
            assertThat(s.filter(FileRecord::isValid).count()).isEqualTo(10_000);
        }
    }

    @Test
    void fileRecordHoldsEitherAnEventOrARejection() {
        ClickEvent e = new ClickEvent("u", "view", "i", "", Instant.EPOCH, null, null);
        assertThatThrownBy(() -> new FileRecord(1, "x", null, e, "why", "k"))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new FileRecord(1, "x", null, null, null, null))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
