package dev.seqscore.job;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.ClickEvent;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.Score;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.kafka.EmbeddedKafkaExtension;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.offline.Backtest;
import dev.seqscore.testing.KafkaTopics;
import dev.seqscore.testing.RepoPaths;
import dev.seqscore.scoring.ScoredEvent;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The whole job against a real KRaft broker on a Flink MiniCluster: real Taobao clicks in as Avro, alerts out
 * through Kafka transactions, read back with read_committed and compared with a backtest of the same events; and
 * every kind of bad input in, each landing in the dead-letter topic with its reason and origin.
 */
class KafkaPipelineITCase {
    @TempDir
    Path checkpoints;

    @RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1)
            .setNumberSlotsPerTaskManager(2)
            .build());

    /** The Taobao sample's documented time range; training drops what falls outside, so the test data does too. */
    private static final long TAOBAO_FROM_MS = 1511539200_000L;
    private static final long TAOBAO_TO_MS = 1512316800_000L;
    private static final int USERS = 80;
    private static final int PARTITIONS = 4;
    private static final Duration AWAIT = Duration.ofMinutes(3);
    private static final byte[] KEY = "k".getBytes(StandardCharsets.UTF_8);

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();
    private static ModelBundle bundle;

    @BeforeAll
    static void loadModel() {
        bundle = ModelBundle.load(RepoPaths.defaultModel());
    }

    @Test
    void alertsReadCommittedFromKafkaEqualTheBacktestOfTheSameEvents() throws Exception {
        List<FileRecord> rows = firstUsersOfTaobaoSample(USERS);

        // Thresholds at a high quantile of the model's own scores, so that alerts exist whatever the model is.
        Backtest.Result probe = Backtest.run(env(2), rows, "taobao", PipelineSettings.builder(bundle).build());
        Map<String, Double> thresholds = new TreeMap<>();
        for (int o = 0; o < bundle.spec().outputs().size(); o++) {
            thresholds.put(bundle.spec().outputs().get(o).name(), quantile(probe.scores(), o, 0.97));
        }
        PipelineSettings settings = PipelineSettings.builder(bundle).thresholds(thresholds).build();
        Backtest.Result expected = Backtest.run(env(2), rows, "taobao", settings);
        assertThat(expected.alerts()).as("the backtest raises alerts at these thresholds").isNotEmpty();
        assertThat(expected.deadLetters()).isEmpty();

        String in = KafkaTopics.unique("clicks");
        String alerts = KafkaTopics.unique("alerts");
        String scores = KafkaTopics.unique("scores");
        String dlq = KafkaTopics.unique("dlq");
        kafka.createTopics(PARTITIONS, in, alerts, scores, dlq);
        produceInTimeOrder(in, rows);

        List<String> args = new ArrayList<>(List.of(
                "--bootstrap-servers", kafka.bootstrapServers(),
                "--input-topic", in, "--alerts-topic", alerts, "--scores-topic", scores, "--dead-letter-topic", dlq,
                "--group-id", KafkaTopics.unique("group"), "--transactional-id-prefix", KafkaTopics.unique("tx"),
                "--starting-offsets", "earliest", "--checkpoint-interval", "500ms",
                "--checkpoint-dir", checkpoints.toUri().toString()));
        thresholds.forEach((k, v) -> args.addAll(List.of("--threshold." + k, Double.toString(v))));
        StreamExecutionEnvironment env = env(2);
        SeqScoreJob.assemble(env, JobConfig.parse(args.toArray(new String[0])), bundle);
        // Unbounded, as in production: the job runs until every event is scored and committed, then is cancelled.
        JobClient job = env.executeAsync("alerts-equal-backtest");
        List<Score> scored;
        List<Alert> actual;
        try {
            scored = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores, expected.scores().size(), AWAIT,
                    r -> AvroRecords.decode(r.value(), Score.class));
            actual = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), alerts, expected.alerts().size(), AWAIT,
                    r -> AvroRecords.decode(r.value(), Alert.class));
        } finally {
            job.cancel().get();
        }
        assertThat(scored).hasSameSizeAs(expected.scores());
        assertThat(KafkaTopics.readCommitted(kafka.bootstrapServers(), dlq,
                r -> AvroRecords.decode(r.value(), DeadLetter.class))).as("dead letters").isEmpty();

        Map<String, Alert> byId = actual.stream().collect(Collectors.toMap(a -> a.getAlertId(), Function.identity()));
        assertThat(byId).as("no alert is delivered twice").hasSameSizeAs(actual);
        assertThat(byId.keySet()).containsExactlyInAnyOrderElementsOf(
                expected.alerts().stream().map(Alert::getAlertId).toList());
        for (Alert want : expected.alerts()) {
            Alert got = byId.get(want.getAlertId());
            assertThat(got.getUserId()).isEqualTo(want.getUserId());
            assertThat(got.getAlertType()).isEqualTo(want.getAlertType());
            assertThat(got.getEventTime()).isEqualTo(want.getEventTime());
            assertThat(got.getItemId()).isEqualTo(want.getItemId());
            assertThat(got.getWindowLength()).isEqualTo(want.getWindowLength());
            assertThat(got.getThreshold()).isEqualTo(want.getThreshold());
            assertThat(got.getScore()).isCloseTo(want.getScore(), within(1e-5));
            assertThat(got.getModelVersion()).isEqualTo(settings.served.modelVersion());
            assertThat(got.getReasons()).as("every alert says why").isNotEmpty();
            // Batches differ between the runs, so drops differ in the last bits; only clear reasons must agree.
            for (var reason : got.getReasons()) {
                if (Math.abs(reason.getScoreDrop()) > 1e-4) {
                    assertThat(want.getReasons()).as("the backtest's reasons for %s", want.getAlertId())
                            .anySatisfy(w -> {
                                assertThat(w.getGroup()).isEqualTo(reason.getGroup());
                                assertThat(w.getText()).isEqualTo(reason.getText());
                                assertThat(w.getScoreDrop()).isCloseTo(reason.getScoreDrop(), within(1e-4));
                            });
                }
            }
        }
    }

    @Test
    void everyKindOfBadInputLandsInTheDeadLetterTopicWithItsOrigin() throws Exception {
        Instant t0 = Instant.parse("2017-11-26T01:00:00Z");
        byte[] garbage = "definitely not avro".getBytes(StandardCharsets.UTF_8);
        String hugeUser = "u".repeat(100_000);
        List<byte[]> values = List.of(
                garbage,
                ClickEventAvro.encode(click("", "view", t0)),
                ClickEventAvro.encode(click("u1", "teleport", t0)),
                // A hostile id: it must not become a 100 KB state key and output record key.
                ClickEventAvro.encode(click(hugeUser, "view", t0)),
                ClickEventAvro.encode(click("u1", "view", Instant.now().plus(Duration.ofDays(10)))),
                ClickEventAvro.encode(click("u1", "view", t0.plus(Duration.ofMinutes(10)))),
                // Ten minutes behind the previous click of the partition: far past the 5 s bound.
                ClickEventAvro.encode(click("u1", "cart", t0)),
                ClickEventAvro.encode(click("u2", "view", t0.plus(Duration.ofMinutes(11)))));
        String in = KafkaTopics.unique("bad-clicks");
        String alerts = KafkaTopics.unique("alerts");
        String scores = KafkaTopics.unique("scores");
        String dlq = KafkaTopics.unique("dlq");
        // One partition: lateness is defined by record order within a partition.
        kafka.createTopics(1, in, alerts, scores, dlq);
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        values.forEach(v -> records.add(new ProducerRecord<>(in, 0, KEY, v)));
        records.add(flush(in, 0, t0.plus(Duration.ofDays(1))));
        KafkaTopics.produce(kafka.bootstrapServers(), records);

        StreamExecutionEnvironment env = env(1);
        SeqScoreJob.assemble(env, JobConfig.parse(
                "--bootstrap-servers", kafka.bootstrapServers(),
                "--input-topic", in, "--alerts-topic", alerts, "--scores-topic", scores, "--dead-letter-topic", dlq,
                "--group-id", KafkaTopics.unique("group"), "--transactional-id-prefix", KafkaTopics.unique("tx"),
                "--starting-offsets", "earliest", "--checkpoint-interval", "500ms",
                "--checkpoint-dir", checkpoints.toUri().toString()),
                bundle);
        JobClient job = env.executeAsync("dead-letters");
        List<DeadLetter> dead;
        List<Score> scored;
        try {
            dead = new ArrayList<>(KafkaTopics.awaitCommitted(kafka.bootstrapServers(), dlq, 6, AWAIT,
                    r -> AvroRecords.decode(r.value(), DeadLetter.class)));
            scored = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores, 2, AWAIT,
                    r -> AvroRecords.decode(r.value(), Score.class));
        } finally {
            job.cancel().get();
        }
        dead.sort(Comparator.comparingLong(DeadLetter::getSourceOffset));
        assertThat(dead).extracting(DeadLetter::getReason).containsExactly(
                "UNDECODABLE", "INVALID_FIELD", "UNKNOWN_EVENT_TYPE", "INVALID_FIELD", "FUTURE_TIMESTAMP", "LATE_EVENT");
        assertThat(dead).extracting(DeadLetter::getSourceOffset).containsExactly(0L, 1L, 2L, 3L, 4L, 6L);
        assertThat(dead).allSatisfy(d -> {
            assertThat(d.getSourceTopic()).isEqualTo(in);
            assertThat(d.getSourcePartition()).isZero();
            assertThat(d.getDetail()).isNotBlank();
        });
        assertThat(AvroRecords.bytes(dead.get(0).getRaw())).isEqualTo(garbage);
        assertThat(AvroRecords.bytes(dead.get(1).getRaw())).isEqualTo(values.get(1));
        // The detail names the field, its length and the bound, and quotes only the id's start; the bytes keep it.
        assertThat(dead.get(3).getDetail()).startsWith("user_id is 100000 bytes long in UTF-8, more than the 256")
                .hasSizeLessThan(200);
        assertThat(AvroRecords.bytes(dead.get(3).getRaw())).isEqualTo(values.get(3));
        assertThat(ClickEventAvro.decode(AvroRecords.bytes(dead.get(5).getRaw()))).isEqualTo(
                ClickEventAvro.decode(values.get(6)));

        // The job kept running past every bad record: the clicks after them were scored.
        assertThat(scored).extracting(Score::getUserId).containsExactlyInAnyOrder("u1", "u2");
    }

    private static StreamExecutionEnvironment env(int parallelism) {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(parallelism);
        return env;
    }

    private static ClickEvent click(String user, String type, Instant t) {
        return ClickEvent.newBuilder().setUserId(user).setEventType(type).setItemId("i1").setCategoryId("c1")
                .setEventTime(t).build();
    }

    /** The first users of the sample (it is grouped by user) within the data's documented time range. */
    private static List<FileRecord> firstUsersOfTaobaoSample(int users) throws Exception {
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
                if (t < TAOBAO_FROM_MS || t >= TAOBAO_TO_MS || (!chosen.contains(user) && chosen.size() == users)) {
                    continue;
                }
                chosen.add(user);
                out.add(r);
            }
        }
        return out;
    }

    /**
     * The rows in time order, keyed by user, then one far-later event per partition: the watermark is the minimum
     * over partitions, so only then has it passed every real event, and every one is scored.
     */
    private void produceInTimeOrder(String topic, List<FileRecord> rows) {
        List<FileRecord> sorted = new ArrayList<>(rows);
        sorted.sort(Comparator.comparing((FileRecord r) -> r.event().getEventTime())
                .thenComparingLong(FileRecord::lineNumber));
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (FileRecord r : sorted) {
            records.add(new ProducerRecord<>(topic, r.event().getUserId().getBytes(StandardCharsets.UTF_8),
                    ClickEventAvro.encode(r.event())));
        }
        Instant later = sorted.get(sorted.size() - 1).event().getEventTime().plus(Duration.ofDays(2));
        for (int p = 0; p < PARTITIONS; p++) {
            records.add(flush(topic, p, later));
        }
        KafkaTopics.produce(kafka.bootstrapServers(), records);
    }

    /** An event that is never scored itself (nothing passes it) but moves its partition's watermark past the rest. */
    private static ProducerRecord<byte[], byte[]> flush(String topic, int partition, Instant at) {
        return new ProducerRecord<>(topic, partition, KEY,
                ClickEventAvro.encode(click("flush-" + partition, "view", at)));
    }

    /**
     * A threshold near the q-quantile of one output's scores, halfway between two distinct scores: a threshold
     * equal to some event's score would make the test hinge on the last bit of a float.
     */
    private static double quantile(List<ScoredEvent> scores, int output, double q) {
        double[] v = scores.stream().mapToDouble(s -> s.scores[output]).sorted().toArray();
        int k = (int) Math.min(v.length - 2, Math.floor(q * v.length));
        int j = k + 1;
        while (j < v.length - 1 && v[j] - v[k] < 1e-4) {
            j++;
        }
        return (v[k] + v[j]) / 2;
    }
}
