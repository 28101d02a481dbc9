package dev.seqscore.offline;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.model.ModelBundle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A backtest of a file with no valid row reports what it rejected instead of failing inside Flink. */
class BacktestTest {

    @Test
    void aFileWithNoValidRowGivesASummaryNotAStackTrace(@TempDir Path tmp) throws Exception {
        // A REES46 header and row read as Taobao: every line parses as CSV, none is a Taobao click.
        Path file = tmp.resolve("rees46-as-taobao.csv");
        Files.writeString(file, "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,"
                + "user_session\n2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,"
                + "541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c\n");
        List<FileRecord> rows;
        try (Stream<FileRecord> lines = EventFileReader.lines(file, EventFileReader.Format.TAOBAO)) {
            rows = lines.toList();
        }
        PipelineSettings settings = PipelineSettings.builder(ModelBundle.packaged()).build();

        Backtest.Result r = Backtest.run(StreamExecutionEnvironment.getExecutionEnvironment(), rows, "x", settings);

        assertThat(r.scores()).isEmpty();
        assertThat(r.rejectedRows().values().stream().mapToLong(Long::longValue).sum()).isEqualTo(2);
        assertThat(Backtest.summary(r)).startsWith("backtest: 2 rows, 0 events, 0 scored");
    }

    @Test
    void theReasonsColumnExplainsEveryOutputThatReachedItsThresholdAndNoOther(@TempDir Path tmp) throws Exception {
        List<FileRecord> rows = fiveTaobaoClicks(tmp);
        // Every event reaches the purchase threshold, none the churn one.
        PipelineSettings settings = PipelineSettings.builder(ModelBundle.packaged())
                .args("--threshold.purchase_30m", "0.0", "--threshold.churn_24h", "1.0").build();

        Backtest.Result r = Backtest.run(StreamExecutionEnvironment.getExecutionEnvironment(), rows, "x", settings);
        Path csv = tmp.resolve("scores.csv");
        Backtest.writeCsv(r, settings, csv, true);

        List<String> lines = Files.readAllLines(csv);
        assertThat(lines.get(0)).endsWith(",churn_24h,reasons");
        assertThat(lines).hasSize(6);
        assertThat(lines.subList(1, lines.size())).allSatisfy(line -> {
            String cell = line.substring(line.lastIndexOf(",\"") < 0 ? line.lastIndexOf(',') + 1
                    : line.lastIndexOf(",\"") + 1);
            assertThat(cell).contains("purchase_30m: ").doesNotContain("churn_24h:");
        });
        assertThat(r.alerts()).isNotEmpty().allSatisfy(a -> assertThat(a.getReasons()).isNotEmpty());
        assertThat(Backtest.summary(r)).contains(r.alerts().size() + " with reasons");
    }

    @Test
    void modelSwapsScoreEachEventWithTheModelOfItsTime(@TempDir Path tmp) throws Exception {
        List<FileRecord> rows = fiveTaobaoClicks(tmp);
        Path base = dev.seqscore.testing.RepoPaths.defaultModel();
        Path v2 = dev.seqscore.lifecycle.PublishedBundles.retrained(base, tmp.resolve("v2"), "-v2");
        Path v3 = dev.seqscore.lifecycle.PublishedBundles.retrained(base, tmp.resolve("v3"), "-v3");
        List<dev.seqscore.lifecycle.ModelControl> swaps = Backtest.modelSwaps(
                "1511600300000=" + v2 + ",1511600300000=" + v3 + ":shadow,1511600900000=promote");
        assertThat(swaps).extracting(c -> c.action().name() + " " + c.role())
                .containsExactly("PUBLISH SERVE", "PUBLISH SHADOW", "PROMOTE null");
        PipelineSettings settings = PipelineSettings.builder(ModelBundle.load(base)).modelSchedule(swaps).build();
        String version = settings.served.modelVersion();

        Backtest.Result r = Backtest.run(StreamExecutionEnvironment.getExecutionEnvironment(), rows, "x", settings);

        assertThat(r.scores()).hasSize(5).allSatisfy(s -> assertThat(s.modelVersion).isEqualTo(
                s.eventTime < 1511600300000L ? version : s.eventTime < 1511600900000L ? version + "-v2"
                        : version + "-v3"));
        Path csv = tmp.resolve("scores.csv");
        Backtest.writeCsv(r, settings, csv, false);
        assertThat(Files.readAllLines(csv).get(0)).endsWith(",model_version");
    }

    /** Two users' clicks in a Taobao file, as the backtest reads them. */
    private static List<FileRecord> fiveTaobaoClicks(Path tmp) throws Exception {
        Path file = tmp.resolve("taobao.csv");
        Files.writeString(file, String.join("\n", "7,100,10,pv,1511600000", "7,100,10,cart,1511600060",
                "7,101,10,pv,1511600300", "8,200,20,pv,1511601000", "7,100,10,buy,1511600900", ""));
        try (Stream<FileRecord> lines = EventFileReader.lines(file, EventFileReader.Format.TAOBAO)) {
            return lines.toList();
        }
    }
}
