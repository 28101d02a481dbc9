package dev.seqscore.offline.files;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.avro.ClickEvent;
import dev.seqscore.offline.files.EventFileReader.Format;
import dev.seqscore.testing.RepoPaths;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * One data contract for cleaning (docs/feature-contract.md, "Cleaning"): the job's readers and model-export's readers
 * ({@code python3 -m seqscore_export clean}) keep exactly the same rows, with the same values, and count the dropped
 * ones under the same kinds: on every shared real data file, and on hand-made files that break every rule.
 */
class CleaningMatchesTrainingITCase {
    private static final ObjectMapper JSON = new ObjectMapper();

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "taobao/UserBehavior_sample.csv, TAOBAO",
            "taobao/UserBehavior_extra_95users.csv, TAOBAO",
            "taobao/UserBehavior_timeordered_110k.csv, TAOBAO",
            "rees46/2019-Oct_head.csv, REES46"})
    void realFilesAreCleanedAlike(String relative, Format format, @TempDir Path tmp) throws Exception {
        Map<String, Long> drops = assertSameCleaning(RepoPaths.requireData(relative), format, tmp);
        if (relative.endsWith("UserBehavior_sample.csv")) {
            // The rows the issue found scored by the job but dropped by training: now dropped by both.
            assertThat(drops).containsEntry("out_of_time_range", 23L);
        }
    }

    @Test
    void handMadeTaobaoBreakingEveryRule(@TempDir Path tmp) throws Exception {
        Path f = write(tmp, "t.csv", """
                \uFEFF1,100,10,pv,1511544070
                1,100,10,pv,1511544070
                1,101,10,cart,1511544080,extra
                1,102,10,pv
                ,103,10,pv,1511544090
                1,,10,pv,1511544090
                " ",104,10,pv,1511544090
                1,104,10,pv,15115x4090
                1,104,10,pv,+1511544090
                1,105,10,click,1511544095
                1,106,10,buy,1511000000
                1,107,10,buy,1512316800
                "1,108,10,pv,1511544070
                1,"10""9",10,pv,1511544071

                2,108,11,fav,1511600000
                2,108,11,cart,1511600000
                  3 , 5 ,  , pv , 1511600001
                """);
        Map<String, Long> drops = assertSameCleaning(f, Format.TAOBAO, tmp);
        assertThat(drops).containsOnlyKeys("duplicate", "wrong_column_count", "empty_user", "empty_item",
                "bad_timestamp", "unknown_event_type", "out_of_time_range", "bad_quoting");
    }

    @Test
    void handMadeRees46BreakingEveryRule(@TempDir Path tmp) throws Exception {
        Path f = write(tmp, "r.csv", """
                event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
                2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,s1
                2019-10-01 00:00:05 UTC,purchase,44600062,2103807459595387724,,shiseido,35.79,541312140,s1
                2019-10-01 00:00:05 UTC,purchase,44600062,2103807459595387724,,shiseido,35.79,541312140,s1
                2019-10-01 00:00:06 UTC,remove_from_cart,44600062,,,shiseido,,541312140,
                2019-10-01 00:00:07,view,1,2,,b,1.0,5,s
                2019-1-01 00:00:07 UTC,view,1,2,,b,1.0,5,s
                2019-02-30 00:00:07 UTC,view,1,2,,b,1.0,5,s
                2019-10-01 00:00:07 UTC,wishlist,1,2,,b,1.0,5,s
                2019-10-01 00:00:07 UTC,view,1,2,,b,abc,5,s
                2019-10-01 00:00:07 UTC,view,1,2,,b,-1,5,s
                2019-10-01 00:00:07 UTC,view,1,2,,b,NaN,5,s
                2019-10-01 00:00:07 UTC,view,1,2,,b,1e3,5,s
                2019-10-01 00:00:07 UTC,view,1,2,,b,1.0,,s
                2019-10-01 00:00:07 UTC,view,1,2,b,1.0,5,s
                2019-10-01 00:00:08 UTC,view,1,2,"a, b",b,.5,5,"s"
                """);
        Map<String, Long> drops = assertSameCleaning(f, Format.REES46, tmp);
        assertThat(drops).containsOnlyKeys("duplicate", "bad_timestamp", "unknown_event_type", "bad_price",
                "empty_user", "wrong_column_count");
    }

    @Test
    void handMadeCanonicalCsvAndJsonl(@TempDir Path tmp) throws Exception {
        Path csv = write(tmp, "c.csv", """
                user_id,event_type,item_id,category_id,event_time,price,session_id
                u1,view,i1,c1,1000,,
                u1,cart,i1,,2000,9.5,s
                u1,cart,i1,,2000,9.5,s
                u1,view,i1,c1,12.5,,
                u1,view,i1,c1,0,,
                u1,view,i1,c1,-5,,
                u1,view,i1,c1
                u1,,i1,c1,3000,,
                u1,view,i1,c1,3000,null,
                " u2 ",buy," i2 ",c2,4000,1e2," "
                """);
        assertSameCleaning(csv, Format.CANONICAL, tmp);
        Path jsonl = write(tmp, "c.jsonl", String.join("\n",
                "{\"user_id\":\"u1\",\"event_type\":\"buy\",\"item_id\":\"i\",\"category_id\":\"c\",\"event_time\":5}",
                "{\"user_id\":\"u1\",\"event_type\":\"buy\",\"item_id\":\"i\",\"category_id\":\"c\",\"event_time\":5}",
                "{not json",
                "[1, 2]",
                "{\"user_id\":\"\",\"event_type\":\"buy\",\"item_id\":\"i\",\"event_time\":5}",
                "{\"event_type\":\"buy\",\"item_id\":\"i\",\"event_time\":5}",
                "{\"user_id\":7,\"event_type\":\"buy\",\"item_id\":8,\"event_time\":6,\"session_id\":\" s \"}",
                "{\"user_id\":[7],\"event_type\":\"buy\",\"item_id\":\"i\",\"event_time\":6}",
                "{\"user_id\":\"u2\",\"event_type\":\"buy\",\"item_id\":\"i\",\"event_time\":\"x\"}",
                "{\"user_id\":\"u2\",\"event_type\":\"buy\",\"item_id\":\"i\",\"event_time\":7.0}",
                "{\"user_id\":\"u2\",\"event_type\":\"buy\",\"item_id\":\"i\",\"event_time\":7,\"price\":\"p\"}",
                "{\"user_id\":\"u2\",\"event_type\":\"buy\",\"item_id\":\"i\",\"event_time\":7,\"price\":-1}",
                "{\"user_id\":\" u3\",\"event_type\":\"view \",\"item_id\":\"i\",\"event_time\":8,\"price\":2}",
                ""));
        assertSameCleaning(jsonl, Format.CANONICAL, tmp);
    }

    /** Compares both sides on one file and returns the (equal) drop counts by kind. */
    private static Map<String, Long> assertSameCleaning(Path file, Format format, Path tmp) throws Exception {
        List<FileRecord> rows;
        try (Stream<FileRecord> s = EventFileReader.lines(file, format)) {
            rows = DuplicateFilter.apply(s.toList());
        }
        Map<String, Long> javaDrops = new TreeMap<>();
        Map<Long, ClickEvent> javaKept = new TreeMap<>();
        for (FileRecord r : rows) {
            if (r.isValid()) {
                javaKept.put(r.lineNumber(), r.event());
            } else {
                javaDrops.merge(r.rejectionKind(), 1L, Long::sum);
            }
        }

        Path kept = tmp.resolve(file.getFileName() + ".kept.jsonl");
        JsonNode report = JSON.readTree(runClean(file, format, kept));
        Map<String, Long> pythonDrops = new TreeMap<>();
        report.get("dropped").fields().forEachRemaining(e -> {
            if (e.getValue().asLong() > 0) {
                pythonDrops.put(e.getKey(), e.getValue().asLong());
            }
        });
        assertThat(report.get("rows_read").asLong()).as("rows read").isEqualTo(rows.size());
        assertThat(javaDrops).as("drop counts by kind").isEqualTo(pythonDrops);

        Map<Long, JsonNode> pythonKept = new TreeMap<>();
        for (String line : Files.readAllLines(kept, StandardCharsets.UTF_8)) {
            JsonNode n = JSON.readTree(line);
            pythonKept.put(n.get("line").asLong(), n);
        }
        assertThat(javaKept.keySet()).as("line numbers of the kept rows").isEqualTo(pythonKept.keySet());
        for (Map.Entry<Long, ClickEvent> e : javaKept.entrySet()) {
            ClickEvent j = e.getValue();
            JsonNode p = pythonKept.get(e.getKey());
            String at = file.getFileName() + " line " + e.getKey();
            assertThat(j.getUserId()).as(at).isEqualTo(p.get("user_id").asText());
            assertThat(j.getEventType()).as(at).isEqualTo(p.get("event_type").asText());
            assertThat(j.getItemId()).as(at).isEqualTo(p.get("item_id").asText());
            assertThat(j.getCategoryId()).as(at).isEqualTo(p.get("category_id").asText());
            assertThat(j.getEventTime().toEpochMilli()).as(at).isEqualTo(p.get("event_time").asLong());
            assertThat(j.getPrice()).as(at).isEqualTo(p.get("price").isNull() ? null : p.get("price").asDouble());
            assertThat(j.getSessionId()).as(at).isEqualTo(p.get("session_id").isNull() ? null
                    : p.get("session_id").asText());
        }
        return javaDrops;
    }

    private static String runClean(Path input, Format format, Path output) throws Exception {
        Path python = Path.of("/usr/bin/python3");
        assumeTrue(Files.isExecutable(python), "skipped: /usr/bin/python3 not found");
        Path root = RepoPaths.repoRoot();
        Path stdout = output.resolveSibling(output.getFileName() + ".out");
        Path stderr = output.resolveSibling(output.getFileName() + ".err");
        Process p = new ProcessBuilder(python.toString(), "-m", "seqscore_export", "clean",
                "--format", format.cliName(), "--input", input.toString(), "--output", output.toString())
                .directory(root.resolve("model-export").toFile())
                .redirectOutput(stdout.toFile())
                .redirectError(stderr.toFile())
                .start();
        assertThat(p.waitFor(5, TimeUnit.MINUTES)).as("python clean finishes").isTrue();
        assertThat(p.exitValue()).as("python clean exit code; stderr:\n%s", Files.readString(stderr)).isZero();
        return Files.readString(stdout, StandardCharsets.UTF_8);
    }

    private static Path write(Path dir, String name, String content) throws IOException {
        Path f = dir.resolve(name);
        Files.writeString(f, content, StandardCharsets.UTF_8);
        return f;
    }
}
