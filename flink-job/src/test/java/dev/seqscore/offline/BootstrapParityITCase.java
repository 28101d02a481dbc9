package dev.seqscore.offline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.avro.Alert;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.job.SavepointCheck;
import dev.seqscore.job.SavepointManifest;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.options.ConfigException;
import dev.seqscore.reasons.Reason;
import dev.seqscore.scoring.ScoredEvent;
import dev.seqscore.testing.RepoPaths;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.flink.client.program.StreamContextEnvironment;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.DeploymentOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.core.execution.DefaultExecutorServiceLoader;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Warm-start parity on real data (issue #14): for the Taobao sample's first users, H = their clicks before
 * 2017-12-02 00:00 China time (7 days), L = the rest. The scores and alerts of L from (bootstrap(H), then the job on L
 * from that savepoint) equal those of L from the job run on H then L, exactly: every output column (scores, window
 * length, reasons) and every alert field but the emit time. On the heap and on RocksDB, each backend writing and
 * restoring its own savepoint. Then the errors and the state inspection, on the savepoints it wrote.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class BootstrapParityITCase {
    @org.junit.jupiter.api.extension.RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1)
            .setNumberSlotsPerTaskManager(2)
            .build());

    private static final int USERS = 150;
    /** 2017-12-02T00:00:00+08:00. */
    private static final long T = 1512144000000L;

    @TempDir
    static Path tmp;
    private static Path history;
    private static Path live;
    private static List<FileRecord> liveRows;
    private static Backtest.Result whole;
    private static String model;
    private static final Map<JobConfig.StateBackend, Path> SAVEPOINTS = new EnumMap<>(JobConfig.StateBackend.class);
    private static final Set<String> HISTORY_USERS = new LinkedHashSet<>();

    @BeforeAll
    static void historyAndTheJobOnAllOfIt() throws Exception {
        Path sample = RepoPaths.requireData("taobao/UserBehavior_sample.csv");
        model = RepoPaths.defaultModel().toString();
        List<String> lines = new ArrayList<>();
        Set<String> users = new LinkedHashSet<>();
        for (String line : Files.readAllLines(sample, StandardCharsets.UTF_8)) {
            String user = line.substring(0, line.indexOf(','));
            if (users.add(user) && users.size() > USERS) {
                break;
            }
            lines.add(line);
        }
        List<String> h = new ArrayList<>();
        List<String> l = new ArrayList<>();
        for (String line : lines) {
            long seconds = Long.parseLong(line.substring(line.lastIndexOf(',') + 1).trim());
            (seconds * 1000 < T ? h : l).add(line);
            if (seconds * 1000 < T) {
                HISTORY_USERS.add(line.substring(0, line.indexOf(',')));
            }
        }
        Path all = tmp.resolve("all.csv");
        history = tmp.resolve("history.csv");
        live = tmp.resolve("live.csv");
        Files.write(all, lines, StandardCharsets.UTF_8);
        Files.write(history, h, StandardCharsets.UTF_8);
        Files.write(live, l, StandardCharsets.UTF_8);
        liveRows = rows(live);
        whole = Backtest.run(env(), rows(all), "all.csv", settings(JobConfig.StateBackend.HASHMAP));
        assertThat(l).as("live events").hasSizeGreaterThan(1000);
    }

    private static List<FileRecord> rows(Path file) throws Exception {
        try (Stream<FileRecord> s = EventFileReader.lines(file, EventFileReader.Format.TAOBAO)) {
            return s.toList();
        }
    }

    private static StreamExecutionEnvironment env() {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(2);
        return env;
    }

    private static JobConfig config(JobConfig.StateBackend backend, String... more) {
        List<String> args = new ArrayList<>(List.of("--model", model, "--state-backend",
                backend.name().toLowerCase(java.util.Locale.ROOT)));
        args.addAll(List.of(more));
        return JobConfig.parse(args.toArray(String[]::new));
    }

    private static PipelineSettings settings(JobConfig.StateBackend backend, String... more) {
        return PipelineSettings.from(config(backend, more), ModelBundle.load(Path.of(model)));
    }

    @Order(1)
    @ParameterizedTest
    @EnumSource(JobConfig.StateBackend.class)
    void scoresAndAlertsAfterTheSeamEqualThoseOfTheJobOnTheWholeHistory(JobConfig.StateBackend backend)
            throws Exception {
        Path savepoint = tmp.resolve("savepoint-" + backend);
        Bootstrap.Result boot = Bootstrap.run(env(), config(backend),
                Bootstrap.Request.file(history.toString(), EventFileReader.Format.TAOBAO, T, savepoint.toString()),
                System.err);
        SAVEPOINTS.put(backend, savepoint);
        assertThat(boot.users()).isEqualTo(HISTORY_USERS.size());
        assertThat(boot.manifest().untilMs()).isEqualTo(T);
        assertThat(SavepointManifest.read(savepoint.toString())).contains(boot.manifest());

        Backtest.Result warm = Backtest.run(env(), liveRows, "live.csv", settings(backend),
                Backtest.fromSavepoint(savepoint.toString(), backend));

        Map<String, List<String>> expected = scoresAfterT(whole.scores());
        Map<String, List<String>> actual = scoresAfterT(warm.scores());
        assertThat(actual.values().stream().mapToInt(List::size).sum()).isEqualTo(liveRows.size());
        assertThat(actual).isEqualTo(expected);
        assertThat(alertsAfterT(warm.alerts())).isEqualTo(alertsAfterT(whole.alerts())).isNotEmpty();
    }

    /** Every output column of each scored event at or after T, by the event (user, time, type, item). */
    private static Map<String, List<String>> scoresAfterT(List<ScoredEvent> scores) {
        Map<String, List<String>> out = new TreeMap<>();
        for (ScoredEvent s : scores) {
            if (s.eventTime < T) {
                continue;
            }
            String reasons = s.reasons == null ? "" : Arrays.stream(s.reasons).map(Reason::toString)
                    .collect(Collectors.joining("; "));
            out.computeIfAbsent(s.userId + "|" + s.eventTime + "|" + s.eventType + "|" + s.itemId,
                    k -> new ArrayList<>()).add(Arrays.toString(s.scores) + " n=" + s.windowLength + " " + reasons);
        }
        out.values().forEach(v -> v.sort(null));
        return out;
    }

    private static Map<String, Alert> alertsAfterT(List<Alert> alerts) {
        Map<String, Alert> out = new TreeMap<>();
        for (Alert a : alerts) {
            if (a.getEventTime().toEpochMilli() >= T) {
                Alert copy = Alert.newBuilder(a).setEmittedAt(Instant.EPOCH).build();
                out.put(copy.getAlertId(), copy);
            }
        }
        return out;
    }

    @Order(2)
    @Test
    void aSavepointForAnotherMaxParallelismOrWindowRuleIsRefusedNamingTheFix() {
        String savepoint = SAVEPOINTS.get(JobConfig.StateBackend.HASHMAP).toString();
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream());
        SavepointCheck.check(savepoint, settings(JobConfig.StateBackend.HASHMAP), quiet);
        assertThatThrownBy(() -> SavepointCheck.check(savepoint,
                settings(JobConfig.StateBackend.HASHMAP, "--max-parallelism", "64"), quiet))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("max parallelism 128")
                .hasMessageContaining("--max-parallelism 128");
        assertThatThrownBy(() -> SavepointCheck.check(savepoint,
                settings(JobConfig.StateBackend.HASHMAP, "--horizon", "12h"), quiet))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("window rule")
                .hasMessageContaining("--horizon 86400000ms");
        assertThatThrownBy(() -> SavepointCheck.check(savepoint,
                settings(JobConfig.StateBackend.HASHMAP, "--state-ttl", "0"), quiet))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("written with the processing-time TTL");
    }

    @Order(2)
    @Test
    void flinkRunDashSWithAnotherMaxParallelismFailsInMainBeforeSubmission() {
        // flink run -s reaches main() as execution.state-recovery.path in the context environment's configuration.
        Configuration cli = new Configuration();
        cli.set(StateRecoveryOptions.SAVEPOINT_PATH, SAVEPOINTS.get(JobConfig.StateBackend.HASHMAP).toString());
        cli.set(DeploymentOptions.TARGET, "local");
        StreamContextEnvironment.setAsContext(new DefaultExecutorServiceLoader(), cli,
                Thread.currentThread().getContextClassLoader(), false, false);
        try {
            assertThatThrownBy(() -> SeqScoreJob.main(new String[] {"--model", model, "--max-parallelism", "64",
                    "--checkpoint-dir", tmp.resolve("unused-checkpoints").toUri().toString()}))
                    .isInstanceOf(ConfigException.class)
                    .hasMessageContaining("cannot start from")
                    .hasMessageContaining("start the job with --max-parallelism 128");
        } finally {
            StreamContextEnvironment.unsetAsContext();
        }
    }

    @Order(3)
    @Test
    void aDirectoryThatHoldsASavepointIsNeverOverwritten() {
        String savepoint = SAVEPOINTS.get(JobConfig.StateBackend.HASHMAP).toString();
        assertThatThrownBy(() -> Bootstrap.run(env(), config(JobConfig.StateBackend.HASHMAP),
                Bootstrap.Request.file(history.toString(), EventFileReader.Format.TAOBAO, T, savepoint), System.err))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("already holds a savepoint");
    }

    @Order(4)
    @Test
    void aHistoryThatEndsAfterTIsRefusedAndLeavesNothingBehind() {
        Path savepoint = tmp.resolve("after-t");
        assertThatThrownBy(() -> Bootstrap.run(env(), config(JobConfig.StateBackend.HASHMAP),
                Bootstrap.Request.file(history.toString(), EventFileReader.Format.TAOBAO, T - 86_400_000L,
                        savepoint.toString()), System.err))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("the history ends after --until 2017-11-30T16:00:00Z");
        assertThat(savepoint).doesNotExist();
    }

    @Order(5)
    @Test
    void anEmptyHistoryIsRefused() throws Exception {
        Path empty = tmp.resolve("empty.csv");
        Files.write(empty, List.of("not,a,taobao,row", "1,2,3,zzz,1512000000"), StandardCharsets.UTF_8);
        for (Long until : new Long[] {null, T}) {
            assertThatThrownBy(() -> Bootstrap.run(env(), config(JobConfig.StateBackend.HASHMAP),
                    Bootstrap.Request.file(empty.toString(), EventFileReader.Format.TAOBAO, until,
                            tmp.resolve("empty-" + until).toString()), System.err))
                    .isInstanceOf(ConfigException.class)
                    .hasMessageContaining("empty history");
        }
    }

    @Order(6)
    @Test
    void theStateCommandSeesEveryUserAndOneUsersWindow() throws Exception {
        String savepoint = SAVEPOINTS.get(JobConfig.StateBackend.ROCKSDB).toString();
        String user = HISTORY_USERS.iterator().next();
        StateInspector.Report r = StateInspector.inspect(env(), savepoint, user, JobConfig.StateBackend.ROCKSDB,
                false);
        assertThat(r.users()).isEqualTo(HISTORY_USERS.size());
        assertThat(r.quantiles()[0]).isPositive().isLessThanOrEqualTo(r.quantiles()[1]);
        assertThat(r.quantiles()[3]).isLessThan(2_000);
        assertThat(r.windowRules()).containsOnlyKeys("N=50 H=PT24H");
        assertThat(r.user()).isNotNull();
        assertThat(r.user().registeredTimers).containsExactly(r.user().timerAt);

        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StateInspector.print(r, settings(JobConfig.StateBackend.ROCKSDB), savepoint, user, new PrintStream(out));
        String[] lines = out.toString(StandardCharsets.UTF_8).split("\n");
        assertThat(out.toString(StandardCharsets.UTF_8)).contains("user " + user + ": ").contains("window (N = 50");
        assertThat(lines[lines.length - 1]).startsWith("{\"users\":" + HISTORY_USERS.size() + ",\"bytes_p50\":")
                .contains("\"bytes_p99\":").contains("\"has_state\":true");

        StateInspector.Report none = StateInspector.inspect(env(), savepoint, "no-such-user",
                JobConfig.StateBackend.ROCKSDB, false);
        assertThat(none.user()).isNull();
    }
}
