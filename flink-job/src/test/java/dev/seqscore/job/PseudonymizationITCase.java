package dev.seqscore.job;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.BOB;
import static dev.seqscore.testing.Clicks.T0;
import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.Score;
import dev.seqscore.events.ClickEventAvro;
import dev.seqscore.kafka.EmbeddedKafkaExtension;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.privacy.Pseudonymizer;
import dev.seqscore.testing.Clicks;
import dev.seqscore.testing.KafkaTopics;
import dev.seqscore.offline.LocalFlink;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.Appender;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.WriterAppender;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.LoggerConfig;
import org.apache.logging.log4j.core.layout.PatternLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * With {@code --pseudonymize-key-file}, alerts and scores read from Kafka carry HMAC pseudonyms, never the raw user
 * ids; and a dummy key appears nowhere: not in the INFO logs of the whole run, not in the REST API's job config,
 * plan or cluster config, not in the output records.
 */
class PseudonymizationITCase {
    private static final String KEY = "dummy-pseudonymization-key-7f3a9c1e-SECRET";
    private static final int CLICKS_PER_USER = 8;
    private static final Duration AWAIT = Duration.ofMinutes(3);

    @RegisterExtension
    static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();

    @TempDir
    Path dir;

    @Test
    void outputsCarryPseudonymsAndTheKeyAppearsNowhere() throws Exception {
        Path keyFile = Files.writeString(dir.resolve("pseudonym.key"), KEY + "\n");
        Pseudonymizer expected = Pseudonymizer.fromKeyFile(keyFile, "--key");
        String in = KafkaTopics.unique("clicks");
        String alerts = KafkaTopics.unique("alerts");
        String scores = KafkaTopics.unique("scores");
        String dlq = KafkaTopics.unique("dlq");
        kafka.createTopics(1, in, alerts, scores, dlq);
        List<ProducerRecord<byte[], byte[]>> clicks = new ArrayList<>();
        for (int i = 0; i < CLICKS_PER_USER; i++) {
            for (String user : List.of(ALICE, BOB)) {
                clicks.add(new ProducerRecord<>(in, 0, user.getBytes(StandardCharsets.UTF_8), ClickEventAvro.encode(
                        Clicks.click(user).item("i" + i).at(T0.plus(Duration.ofMinutes(i))).event())));
            }
        }
        clicks.add(new ProducerRecord<>(in, 0, new byte[] {0}, ClickEventAvro.encode(
                Clicks.click("flush").at(T0.plus(Duration.ofDays(2))).event())));
        KafkaTopics.produce(kafka.bootstrapServers(), clicks);

        StringWriter logs = new StringWriter();
        List<String> rest = new ArrayList<>();
        List<ConsumerRecord<byte[], byte[]>> scoreRecords;
        List<ConsumerRecord<byte[], byte[]>> alertRecords;
        try (CapturedLogs capture = CapturedLogs.atInfo(logs); LocalFlink flink = LocalFlink.start(1)) {
            StreamExecutionEnvironment env = flink.environment(1);
            SeqScoreJob.assemble(env, JobConfig.parse(
                    "--bootstrap-servers", kafka.bootstrapServers(),
                    "--input-topic", in, "--alerts-topic", alerts, "--scores-topic", scores, "--dead-letter-topic", dlq,
                    "--group-id", KafkaTopics.unique("group"), "--transactional-id-prefix", KafkaTopics.unique("tx"),
                    "--starting-offsets", "earliest", "--checkpoint-interval", "500ms",
                    "--checkpoint-dir", dir.resolve("checkpoints").toUri().toString(),
                    "--threshold.purchase_30m", "0", "--threshold.churn_24h", "0", "--cooldown", "0",
                    "--pseudonymize-key-file", keyFile.toString()), ModelBundle.packaged());
            JobClient job = env.executeAsync("pseudonymized");
            try {
                scoreRecords = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), scores, 2 * CLICKS_PER_USER,
                        AWAIT, r -> r);
                alertRecords = KafkaTopics.awaitCommitted(kafka.bootstrapServers(), alerts, 4 * CLICKS_PER_USER,
                        AWAIT, r -> r);
                String id = job.getJobID().toHexString();
                for (String path : List.of("/jobs/" + id, "/jobs/" + id + "/config", "/jobs/" + id + "/plan",
                        "/jobs/" + id + "/exceptions", "/jobmanager/config", "/jobs/" + id + "/checkpoints/config")) {
                    rest.add(get(flink.restAddress().resolve(path)));
                }
            } finally {
                job.cancel().get();
            }
        }

        Set<String> pseudonyms = Set.of(expected.pseudonym(ALICE), expected.pseudonym(BOB));
        for (ConsumerRecord<byte[], byte[]> r : scoreRecords) {
            Score s = AvroRecords.decode(r.value(), Score.class);
            assertThat(s.getUserId()).isIn(pseudonyms);
            assertThat(new String(r.key(), StandardCharsets.UTF_8)).isEqualTo(s.getUserId());
        }
        for (ConsumerRecord<byte[], byte[]> r : alertRecords) {
            assertThat(AvroRecords.decode(r.value(), Alert.class).getUserId()).isIn(pseudonyms);
        }

        assertThat(logs.toString()).as("the INFO log was captured").contains("pseudonymized");
        assertThat(rest.get(1)).as("the job's config was read").contains("execution-config");
        List<String> places = new ArrayList<>(rest);
        places.add(logs.toString());
        scoreRecords.forEach(r -> places.add(new String(r.value(), StandardCharsets.ISO_8859_1)));
        alertRecords.forEach(r -> places.add(new String(r.value(), StandardCharsets.ISO_8859_1)));
        byte[] key = KEY.getBytes(StandardCharsets.UTF_8);
        for (String place : places) {
            assertThat(place).doesNotContain(KEY)
                    .doesNotContainIgnoringCase(HexFormat.of().formatHex(key))
                    .doesNotContain(Base64.getEncoder().encodeToString(key));
        }
    }

    private static String get(URI uri) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(uri).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(uri.toString()).isEqualTo(200);
        return r.body();
    }

    /** Every log event of the run at INFO and above, whatever the test logging config says. */
    private static final class CapturedLogs implements AutoCloseable {
        private final LoggerContext context;
        private final Appender appender;
        private final Level before;

        private CapturedLogs(LoggerContext context, Appender appender, Level before) {
            this.context = context;
            this.appender = appender;
            this.before = before;
        }

        static CapturedLogs atInfo(StringWriter into) {
            LoggerContext context = (LoggerContext) LogManager.getContext(false);
            Configuration config = context.getConfiguration();
            Appender appender = WriterAppender.newBuilder().setName("key-leak-capture").setTarget(into)
                    .setLayout(PatternLayout.newBuilder().withPattern("%p %c %m %ex%n").build()).build();
            appender.start();
            LoggerConfig root = config.getRootLogger();
            Level before = root.getLevel();
            root.addAppender(appender, Level.INFO, null);
            root.setLevel(Level.INFO);
            context.updateLoggers();
            return new CapturedLogs(context, appender, before);
        }

        @Override
        public void close() {
            LoggerConfig root = context.getConfiguration().getRootLogger();
            root.removeAppender(appender.getName());
            root.setLevel(before);
            context.updateLoggers();
            appender.stop();
        }
    }
}
