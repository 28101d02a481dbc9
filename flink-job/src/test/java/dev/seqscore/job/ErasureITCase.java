package dev.seqscore.job;

import static dev.seqscore.testing.Clicks.T0;
import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.offline.Backtest;
import dev.seqscore.avro.ErasureAudit;
import dev.seqscore.avro.Score;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.kafka.EmbeddedKafkaExtension;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.testing.Clicks;
import dev.seqscore.testing.KafkaTopics;
import dev.seqscore.testing.RepoPaths;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.apache.flink.api.common.JobID;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.InjectMiniCluster;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Erasure on request, against a real broker on a MiniCluster of two TaskManagers: a request clears everything the
 * job keeps for its user and is answered exactly once on the audit topic, also when a TaskManager dies between the
 * request and the next checkpoint (the recovery replays it); a request for a user the job never saw is answered too;
 * a savepoint taken afterwards holds no byte of the erased user's id, while it does hold the other user's; and the
 * erased user's next click is scored as a new user's would be.
 */
class ErasureITCase {
    private static final Duration AWAIT = Duration.ofMinutes(3);
    private static final String ERASED = "erase-me-5d1c";
    private static final String KEPT = "keep-me-8b2e";
    private static final String NEVER_SEEN = "never-seen-3a7f";
    private static final int CLICKS = 6;

    @RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(2)
            .setNumberSlotsPerTaskManager(1)
            .build());

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();

    @TempDir
    Path dir;

    @Test
    void aRequestClearsTheUserExactlyOnceAcrossATaskManagerFailure(@InjectMiniCluster MiniCluster cluster)
            throws Exception {
        String in = KafkaTopics.unique("clicks");
        String erasures = KafkaTopics.unique("erasures");
        String audit = KafkaTopics.unique("erasure-audit");
        String scores = KafkaTopics.unique("scores");
        String alerts = KafkaTopics.unique("alerts");
        String dlq = KafkaTopics.unique("dlq");
        kafka.createTopics(2, in, scores);
        kafka.createTopics(1, erasures, audit, alerts, dlq);
        List<ProducerRecord<byte[], byte[]>> clicks = new ArrayList<>();
        for (int i = 0; i < CLICKS; i++) {
            for (String user : List.of(ERASED, KEPT)) {
                clicks.add(click(in, user, i));
            }
        }
        KafkaTopics.produce(kafka.bootstrapServers(), clicks);
        // Computed first: the job takes both slots of the cluster.
        java.util.Map<String, Double> fresh = freshUserScores(click(in, "a-new-user", CLICKS + 1));

        // A long checkpoint interval, so that the TaskManager dies after the request and before the next one.
        JobConfig config = JobConfig.parse("--bootstrap-servers", kafka.bootstrapServers(),
                "--input-topic", in, "--alerts-topic", alerts, "--scores-topic", scores, "--dead-letter-topic", dlq,
                "--erasure-topic", erasures, "--erasure-audit-topic", audit,
                "--group-id", KafkaTopics.unique("group"), "--transactional-id-prefix", KafkaTopics.unique("tx"),
                "--starting-offsets", "earliest", "--max-out-of-orderness", "0", "--idleness", "2s",
                "--checkpoint-interval", "8s",
                "--parallelism", "2", "--state-backend", "hashmap",
                "--checkpoint-dir", dir.resolve("checkpoints").toUri().toString());
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        SeqScoreJob.assemble(env, config, ModelBundle.load(RepoPaths.defaultModel()));
        JobClient job = env.executeAsync("erasure");
        try {
            // Every click but each user's last is scored once the next one moves the watermark past it.
            KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores, 2 * (CLICKS - 1), AWAIT, r -> r);

            KafkaTopics.produce(kafka.bootstrapServers(), List.of(
                    new ProducerRecord<>(erasures, bytes(ERASED), bytes(ERASED)),
                    new ProducerRecord<>(erasures, bytes(NEVER_SEEN), bytes("{\"user_id\": \"" + NEVER_SEEN + "\"}"))));
            awaitErasuresApplied(cluster, job.getJobID(), 2);
            cluster.terminateTaskManager(0).get();
            cluster.startTaskManager();

            List<ErasureAudit> answers = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), audit, 2, AWAIT,
                    r -> AvroRecords.decode(r.value(), ErasureAudit.class));
            // One more checkpoint after the answers: a duplicate from the replayed request would show by now.
            KafkaTopics.produce(kafka.bootstrapServers(), List.of(click(in, KEPT, CLICKS)));
            KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores, 2 * (CLICKS - 1) + 1, AWAIT, r -> r);
            answers = KafkaTopics.readCommitted(kafka.bootstrapServers(), audit,
                    r -> AvroRecords.decode(r.value(), ErasureAudit.class));

            assertThat(answers).extracting(a -> a.getUserId().toString()).containsExactlyInAnyOrder(ERASED, NEVER_SEEN);
            ErasureAudit erased = answers.stream().filter(a -> a.getUserId().toString().equals(ERASED)).findFirst()
                    .orElseThrow();
            assertThat(erased.getStateFound()).as("%s", answers).isTrue();
            assertThat(erased.getEventsDropped()).as("the user's last click still waited for the watermark")
                    .isEqualTo(1);
            assertThat(erased.getSourceTopic().toString()).isEqualTo(erasures);
            ErasureAudit unknown = answers.stream().filter(a -> a.getUserId().toString().equals(NEVER_SEEN))
                    .findFirst().orElseThrow();
            assertThat(unknown.getStateFound()).isFalse();
            assertThat(unknown.getEventsDropped()).isZero();

            Path savepoint = Path.of(URI.create(job.triggerSavepoint(dir.resolve("savepoint").toUri().toString(),
                    SavepointFormatType.CANONICAL).get()));
            assertThat(contains(savepoint, KEPT)).as("the other user's state is in the savepoint").isTrue();
            assertThat(contains(savepoint, ERASED)).as("no byte of the erased user's id is left").isFalse();

            // The erased user's next clicks: scored as a new user's (a window of one event, then two).
            KafkaTopics.produce(kafka.bootstrapServers(), List.of(click(in, ERASED, CLICKS + 1),
                    click(in, ERASED, CLICKS + 2)));
            List<Score> after = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores, 2 * (CLICKS - 1) + 2,
                    AWAIT, r -> AvroRecords.decode(r.value(), Score.class)).stream()
                    .filter(s -> s.getUserId().toString().equals(ERASED)
                            && s.getEventTime().toEpochMilli() > at(CLICKS))
                    .toList();
            assertThat(after).hasSize(1);
            assertThat(after.get(0).getWindowLength()).isEqualTo(1);
            assertThat(after.get(0).getScores()).isEqualTo(fresh);
        } finally {
            job.cancel().get();
        }
    }

    /** The scores, by output, that the pipeline gives this click of a user it has never seen. */
    private java.util.Map<String, Double> freshUserScores(ProducerRecord<byte[], byte[]> record) throws Exception {
        var row = dev.seqscore.offline.files.EventFileReader.Format.CANONICAL;
        Path file = dir.resolve("fresh.jsonl");
        var e = ClickEventAvro.decode(record.value());
        Files.writeString(file, "{\"user_id\":\"" + e.getUserId() + "\",\"event_type\":\"" + e.getEventType()
                + "\",\"item_id\":\"" + e.getItemId() + "\",\"category_id\":\"" + e.getCategoryId()
                + "\",\"event_time\":" + e.getEventTime().toEpochMilli() + "}\n");
        List<dev.seqscore.offline.files.FileRecord> rows;
        try (Stream<dev.seqscore.offline.files.FileRecord> lines = dev.seqscore.offline.files.EventFileReader.lines(file, row)) {
            rows = lines.toList();
        }
        PipelineSettings settings = PipelineSettings.builder(ModelBundle.load(RepoPaths.defaultModel())).build();
        Backtest.Result r = Backtest.run(StreamExecutionEnvironment.getExecutionEnvironment(), rows, "fresh",
                settings);
        assertThat(r.scores()).hasSize(1);
        java.util.Map<String, Double> byOutput = new java.util.HashMap<>();
        for (int o = 0; o < settings.outputNames().size(); o++) {
            byOutput.put(settings.outputNames().get(o), (double) r.scores().get(0).scores[o]);
        }
        return byOutput;
    }

    /** Polls the scorer's {@code userErasures} counters through the REST API until they add up to {@code n}. */
    private static void awaitErasuresApplied(MiniCluster cluster, JobID job, long n) throws Exception {
        URI rest = cluster.getRestAddress().get();
        ObjectMapper json = new ObjectMapper();
        HttpClient http = HttpClient.newHttpClient();
        long deadline = System.nanoTime() + AWAIT.toNanos();
        while (System.nanoTime() < deadline) {
            JsonNode vertices = json.readTree(get(http, rest.resolve("/jobs/" + job)).body()).get("vertices");
            for (JsonNode v : vertices) {
                if (!v.get("name").asText().contains("Score user sequences")) {
                    continue;
                }
                String base = "/jobs/" + job + "/vertices/" + v.get("id").asText() + "/metrics";
                List<String> names = new ArrayList<>();
                for (JsonNode m : json.readTree(get(http, rest.resolve(base)).body())) {
                    if (m.get("id").asText().endsWith(".userErasures")) {
                        names.add(m.get("id").asText());
                    }
                }
                if (!names.isEmpty()) {
                    long sum = 0;
                    for (JsonNode m : json.readTree(get(http, rest.resolve(base + "?get=" + String.join(",", names)))
                            .body())) {
                        sum += (long) Double.parseDouble(m.get("value").asText());
                    }
                    if (sum >= n) {
                        return;
                    }
                }
            }
            LockSupport.parkNanos(Duration.ofMillis(100).toNanos());
        }
        throw new AssertionError("the scorer did not apply " + n + " erasure requests within " + AWAIT);
    }

    private static HttpResponse<String> get(HttpClient http, URI uri) throws Exception {
        return http.send(HttpRequest.newBuilder(uri).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Whether any file of the savepoint holds the id's bytes (keys are written as UTF-8 in canonical savepoints). */
    private static boolean contains(Path savepoint, String id) throws Exception {
        byte[] needle = bytes(id);
        try (Stream<Path> files = Files.walk(savepoint)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                byte[] data = Files.readAllBytes(f);
                outer:
                for (int i = 0; i + needle.length <= data.length; i++) {
                    for (int j = 0; j < needle.length; j++) {
                        if (data[i + j] != needle[j]) {
                            continue outer;
                        }
                    }
                    return true;
                }
            }
        }
        return false;
    }

    private static long at(int i) {
        return T0.plus(Duration.ofMinutes(i)).toEpochMilli();
    }

    private static ProducerRecord<byte[], byte[]> click(String topic, String user, int i) {
        return new ProducerRecord<>(topic, bytes(user), ClickEventAvro.encode(
                Clicks.click(user).item("i" + i).at(T0.plus(Duration.ofMinutes(i))).event()));
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
