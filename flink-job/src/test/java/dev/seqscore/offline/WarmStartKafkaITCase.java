package dev.seqscore.offline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.ClickEvent;
import dev.seqscore.avro.Score;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.job.AvroRecords;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.kafka.EmbeddedKafkaExtension;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.scoring.ScoredEvent;
import dev.seqscore.testing.KafkaTopics;
import dev.seqscore.testing.RepoPaths;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The deploy-with-history flow end to end against a real broker (issue #14): clicks with their event time as Kafka
 * timestamp in a topic; {@code bootstrap --topic ... --until T} writes a savepoint from the records before T; the
 * exactly-once job starts from it with {@code --starting-offsets timestamp:T} and commits every score and alert of
 * the records from T on exactly once, equal to the backtest of the whole history.
 */
class WarmStartKafkaITCase {
    @RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1)
            .setNumberSlotsPerTaskManager(2)
            .build());

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();

    private static final long FROM_MS = 1511539200_000L;
    private static final long TO_MS = 1512316800_000L;
    /** 2017-12-02T00:00:00+08:00. */
    private static final long T = 1512144000000L;
    private static final int USERS = 60;
    private static final int PARTITIONS = 2;
    private static final Duration AWAIT = Duration.ofMinutes(3);

    @TempDir
    Path tmp;

    @Test
    void theJobFromABootstrappedSavepointCommitsEveryLiveScoreAndAlertOnceAsTheBacktestOfTheWholeHistory()
            throws Exception {
        String model = RepoPaths.defaultModel().toString();
        List<FileRecord> rows = firstUsers(USERS);
        ModelBundle bundle = ModelBundle.load(Path.of(model));
        PipelineSettings settings = PipelineSettings.from(JobConfig.parse("--model", model), bundle);
        Backtest.Result whole = Backtest.run(env(), rows, "sample", settings);
        List<ScoredEvent> expectedScores = whole.scores().stream().filter(s -> s.eventTime >= T).toList();
        List<Alert> expectedAlerts = whole.alerts().stream()
                .filter(a -> a.getEventTime().toEpochMilli() >= T).toList();
        assertThat(expectedAlerts).as("alerts after T").isNotEmpty();

        String in = KafkaTopics.unique("clicks");
        String alerts = KafkaTopics.unique("alerts");
        String scores = KafkaTopics.unique("scores");
        String dlq = KafkaTopics.unique("dlq");
        kafka.createTopics(PARTITIONS, in, alerts, scores, dlq);
        produceWithEventTimeStamps(in, rows);

        Path savepoint = tmp.resolve("warm");
        JobConfig bootConfig = JobConfig.parse("--model", model, "--bootstrap-servers", kafka.bootstrapServers(),
                "--state-backend", "rocksdb");
        Bootstrap.Result boot = Bootstrap.run(env(), bootConfig,
                Bootstrap.Request.topic(in, null, T, savepoint.toString()), System.err);
        assertThat(boot.events()).isEqualTo(rows.size() - expectedScores.size());

        List<String> args = new ArrayList<>(List.of("--model", model,
                "--bootstrap-servers", kafka.bootstrapServers(),
                "--input-topic", in, "--alerts-topic", alerts, "--scores-topic", scores, "--dead-letter-topic", dlq,
                "--group-id", KafkaTopics.unique("group"), "--transactional-id-prefix", KafkaTopics.unique("tx"),
                "--starting-offsets", "timestamp:" + T, "--checkpoint-interval", "500ms",
                "--state-backend", "rocksdb", "--checkpoint-dir", tmp.resolve("checkpoints").toUri().toString()));
        StreamExecutionEnvironment env = env();
        Configuration restore = new Configuration();
        restore.set(StateRecoveryOptions.SAVEPOINT_PATH, savepoint.toString());
        // Kept after the cancel, for bin/seqscore state to read a retained (incremental RocksDB) checkpoint below.
        restore.setString("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION");
        env.configure(restore);
        SeqScoreJob.assemble(env, JobConfig.parse(args.toArray(String[]::new)), bundle);
        JobClient job = env.executeAsync("warm-start");
        List<Score> committedScores;
        List<Alert> committedAlerts;
        try {
            committedScores = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores, expectedScores.size(),
                    AWAIT, r -> AvroRecords.decode(r.value(), Score.class));
            committedAlerts = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), alerts, expectedAlerts.size(),
                    AWAIT, r -> AvroRecords.decode(r.value(), Alert.class));
        } finally {
            job.cancel().get();
        }

        // Each event once; scores equal up to float noise: ONNX Runtime may round a row differently by one unit in the
        // last place when the job's batch around it differs from the backtest's.
        Map<String, Integer> wantCount = new HashMap<>();
        Map<String, float[]> wantScores = new HashMap<>();
        for (ScoredEvent s : expectedScores) {
            String key = s.userId + "|" + s.eventTime + "|" + s.eventType + "|" + s.itemId + "|" + s.windowLength;
            wantCount.merge(key, 1, Integer::sum);
            wantScores.put(key, s.scores);
        }
        Map<String, Integer> gotCount = new HashMap<>();
        List<String> names = settings.outputNames();
        for (Score s : committedScores) {
            String key = s.getUserId() + "|" + s.getEventTime().toEpochMilli() + "|" + s.getEventType() + "|"
                    + s.getItemId() + "|" + s.getWindowLength();
            gotCount.merge(key, 1, Integer::sum);
            float[] want = wantScores.get(key);
            if (want != null) {
                for (int o = 0; o < names.size(); o++) {
                    assertThat(s.getScores().get(names.get(o))).as("%s %s", key, names.get(o))
                            .isCloseTo(want[o], within(1e-6));
                }
            }
        }
        assertThat(gotCount).as("every score from T on, once, as the backtest's").isEqualTo(wantCount);

        // bin/seqscore state reads the retained checkpoint: the bootstrapped users are there, with the rule.
        Path checkpoint;
        try (Stream<Path> files = Files.walk(tmp.resolve("checkpoints"))) {
            checkpoint = files.filter(f -> f.getFileName().toString().equals("_metadata"))
                    .max(Comparator.comparing(f -> f.toFile().lastModified())).orElseThrow().getParent();
        }
        StateInspector.Report state = StateInspector.inspect(env(), checkpoint.toString(), null,
                JobConfig.StateBackend.ROCKSDB, false);
        assertThat(state.users()).isGreaterThanOrEqualTo(boot.users());
        assertThat(state.windowRules()).containsOnlyKeys("N=50 H=PT24H");

        Set<String> ids = new HashSet<>();
        for (Alert a : committedAlerts) {
            assertThat(ids.add(a.getAlertId())).as("alert %s once", a.getAlertId()).isTrue();
        }
        Map<String, Alert> wantAlerts = new HashMap<>();
        expectedAlerts.forEach(a -> wantAlerts.put(a.getAlertId(), a));
        assertThat(ids).isEqualTo(wantAlerts.keySet());
        for (Alert a : committedAlerts) {
            Alert w = wantAlerts.get(a.getAlertId());
            assertThat(a.getScore()).isCloseTo(w.getScore(), within(1e-6));
            assertThat(a.getWindowLength()).isEqualTo(w.getWindowLength());
            assertThat(a.getReasons().stream().map(r -> r.getGroup() + ": " + r.getText()).toList())
                    .isEqualTo(w.getReasons().stream().map(r -> r.getGroup() + ": " + r.getText()).toList());
        }
    }

    private static StreamExecutionEnvironment env() {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(2);
        return env;
    }

    private static List<FileRecord> firstUsers(int users) throws Exception {
        Path file = RepoPaths.requireData("taobao/UserBehavior_sample.csv");
        Set<String> chosen = new HashSet<>();
        List<FileRecord> out = new ArrayList<>();
        try (Stream<FileRecord> lines = EventFileReader.lines(file, EventFileReader.Format.TAOBAO)) {
            for (FileRecord r : (Iterable<FileRecord>) lines::iterator) {
                if (!r.isValid()) {
                    continue;
                }
                long t = r.event().getEventTime().toEpochMilli();
                String user = r.event().getUserId();
                if (t < FROM_MS || t >= TO_MS || (!chosen.contains(user) && chosen.size() == users)) {
                    continue;
                }
                chosen.add(user);
                out.add(r);
            }
        }
        return out;
    }

    /**
     * In time order, keyed by user, each with its event time as Kafka timestamp; then one far-later event per
     * partition so the watermark passes every real one.
     */
    private static void produceWithEventTimeStamps(String topic, List<FileRecord> rows) {
        List<FileRecord> sorted = new ArrayList<>(rows);
        sorted.sort(Comparator.comparing((FileRecord r) -> r.event().getEventTime())
                .thenComparingLong(FileRecord::lineNumber));
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (FileRecord r : sorted) {
            byte[] key = r.event().getUserId().getBytes(StandardCharsets.UTF_8);
            records.add(new ProducerRecord<>(topic, Math.floorMod(r.event().getUserId().hashCode(), PARTITIONS),
                    r.event().getEventTime().toEpochMilli(), key, ClickEventAvro.encode(r.event())));
        }
        Instant later = sorted.get(sorted.size() - 1).event().getEventTime().plus(Duration.ofDays(2));
        for (int p = 0; p < PARTITIONS; p++) {
            ClickEvent flush = ClickEvent.newBuilder().setUserId("flush-" + p).setEventType("view").setItemId("i")
                    .setCategoryId("c").setEventTime(later).build();
            records.add(new ProducerRecord<>(topic, p, later.toEpochMilli(), "k".getBytes(StandardCharsets.UTF_8),
                    ClickEventAvro.encode(flush)));
        }
        KafkaTopics.produce(kafka.bootstrapServers(), records);
    }
}
