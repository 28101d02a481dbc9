package dev.seqscore.offline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.testing.RepoPaths;
import dev.seqscore.job.PipelineSettings;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Serving equals training: the Java backtest (the job's operators on a MiniCluster) and model-export's own offline
 * scoring (PyTorch, Python features) score the same real Taobao events, and every event's scores agree within
 * 1e-4. Unlike the golden vectors, this also covers the window bookkeeping over whole user histories: eviction
 * by count and horizon, duplicates, ordering.
 */
class BacktestMatchesTrainingITCase {
    @RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1)
            .setNumberSlotsPerTaskManager(2)
            .build());

    private static final int USERS = 60;

    @Test
    void everyEventsScoresEqualModelExportsOfflineScores(@TempDir Path tmp) throws Exception {
        Path sample = RepoPaths.requireData("taobao/UserBehavior_sample.csv");
        Path input = tmp.resolve("sample.csv");
        Files.write(input, firstUsersLines(sample, USERS), StandardCharsets.UTF_8);

        Path pyOut = tmp.resolve("python-scores.csv");
        runPythonScore(input, pyOut);
        Map<String, double[]> python = readScores(pyOut);

        ModelBundle bundle = ModelBundle.load(RepoPaths.defaultModel());
        PipelineSettings settings = PipelineSettings.builder(bundle).build();
        List<FileRecord> rows;
        try (Stream<FileRecord> lines = EventFileReader.lines(input, EventFileReader.Format.TAOBAO)) {
            rows = lines.toList();
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(2);
        Backtest.Result result = Backtest.run(env, rows, "sample.csv", settings);
        Path javaOut = tmp.resolve("java-scores.csv");
        Backtest.writeCsv(result, settings, javaOut);
        Map<String, double[]> java = readScores(javaOut);

        assertThat(java).as("scored events").hasSizeGreaterThan(1000);
        assertThat(java.keySet()).isEqualTo(python.keySet());
        for (Map.Entry<String, double[]> e : python.entrySet()) {
            double[] want = e.getValue();
            double[] got = java.get(e.getKey());
            for (int o = 0; o < want.length; o++) {
                assertThat(got[o]).as("output %d of %s", o, e.getKey()).isCloseTo(want[o], within(1e-4));
            }
        }
    }

    /**
     * Raw lines of the first users (the sample is grouped by user), as they are: rows outside the data's time range
     * included, which both readers drop by the same cleaning contract.
     */
    private static List<String> firstUsersLines(Path sample, int users) throws IOException {
        Set<String> chosen = new HashSet<>();
        List<String> out = new ArrayList<>();
        for (String line : Files.readAllLines(sample, StandardCharsets.UTF_8)) {
            String user = line.split(",")[0];
            if (!chosen.contains(user)) {
                if (chosen.size() == users) {
                    break;
                }
                chosen.add(user);
            }
            out.add(line);
        }
        return out;
    }

    private static void runPythonScore(Path input, Path output) throws Exception {
        Path python = Path.of("/usr/bin/python3");
        assumeTrue(Files.isExecutable(python), "skipped: /usr/bin/python3 not found");
        Path root = RepoPaths.repoRoot();
        Process p = new ProcessBuilder(python.toString(), "-m", "seqscore_export", "score",
                "--model", root.resolve("models/default").toString(),
                "--input", input.toString(), "--format", "taobao", "--output", output.toString())
                .directory(root.resolve("model-export").toFile())
                .redirectErrorStream(true)
                .start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(5, TimeUnit.MINUTES)).as("python score finishes").isTrue();
        assertThat(p.exitValue()).as("python score exit code; output:\n%s", log).isZero();
    }

    /** Key: user,timestamp,event_type,item_id; value: one score per output column. */
    private static Map<String, double[]> readScores(Path csv) throws IOException {
        List<String> lines = Files.readAllLines(csv, StandardCharsets.UTF_8);
        assertThat(lines.get(0)).isEqualTo("user_id,timestamp,event_type,item_id,purchase_30m,churn_24h");
        Map<String, double[]> out = new HashMap<>();
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split(",");
            double[] scores = new double[f.length - 4];
            for (int i = 4; i < f.length; i++) {
                scores[i - 4] = Double.parseDouble(f[i]);
            }
            String key = String.join(",", f[0], f[1], f[2], f[3]);
            assertThat(out.put(key, scores)).as("one row per event: %s", key).isNull();
        }
        return out;
    }
}
