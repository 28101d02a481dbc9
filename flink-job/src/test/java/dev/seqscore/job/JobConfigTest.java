package dev.seqscore.job;

import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Durations;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.events.InputFormat;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The job's command line: defaults, both spellings of an option, {@code --help}, the {@code --threshold.*} and
 * {@code --kafka.*} families with the properties file, the usage text, duration parsing, and that every bad value
 * fails at parse time with a message naming the option (the only thing a user has to go on).
 */
class JobConfigTest {

    @Test
    void noArgumentsGiveTheDocumentedDefaults() {
        JobConfig c = JobConfig.parse();

        assertThat(c.help()).isFalse();
        assertThat(c.get(JobConfig.BOOTSTRAP_SERVERS)).isEqualTo("localhost:9092");
        assertThat(c.get(JobConfig.INPUT_TOPIC)).isEqualTo("clicks");
        assertThat(c.get(JobConfig.INPUT_FORMAT)).isEqualTo(InputFormat.AVRO);
        assertThat(c.get(JobConfig.GROUP_ID)).isEqualTo("seqscore");
        assertThat(c.get(JobConfig.STARTING_OFFSETS)).isEqualTo(JobConfig.StartingOffsets.COMMITTED);
        assertThat(c.get(JobConfig.OFFSET_RESET)).isEqualTo(JobConfig.OffsetReset.EARLIEST);
        assertThat(c.get(JobConfig.STOP_AT_LATEST)).isFalse();
        assertThat(c.get(JobConfig.ALERTS_TOPIC)).isEqualTo("alerts");
        assertThat(c.scoresTopic()).isEmpty();
        assertThat(c.get(JobConfig.DEAD_LETTER_TOPIC)).isEqualTo("clicks-dlq");
        assertThat(c.model()).as("the bundle packaged in the jar").isNull();
        // Null means "the model spec decides", which PipelineSettings relies on.
        assertThat(c.get(JobConfig.MAX_EVENTS)).isNull();
        assertThat(c.get(JobConfig.HORIZON)).isNull();
        assertThat(c.get(JobConfig.PARALLELISM)).isNull();
        assertThat(c.get(JobConfig.THRESHOLD)).isEmpty();
        assertThat(c.get(JobConfig.COOLDOWN)).isEqualTo(Duration.ofMinutes(10));
        assertThat(c.get(JobConfig.DELIVERY)).isEqualTo(JobConfig.Delivery.EXACTLY_ONCE);
        assertThat(c.get(JobConfig.TRANSACTIONAL_ID_PREFIX)).isEqualTo("seqscore");
        assertThat(c.get(JobConfig.CHECKPOINT_INTERVAL)).isEqualTo(Duration.ofSeconds(10));
        assertThat(c.get(JobConfig.MAX_OUT_OF_ORDERNESS)).isEqualTo(Duration.ofSeconds(5));
        assertThat(c.get(JobConfig.IDLENESS)).isEqualTo(Duration.ofSeconds(30));
        assertThat(c.get(JobConfig.MAX_FUTURE_SKEW)).isEqualTo(Duration.ofHours(1));
        assertThat(c.get(JobConfig.MAX_ID_BYTES)).isEqualTo(256);
        assertThat(c.get(JobConfig.STATE_TTL)).isEqualTo(Duration.ofHours(48));
        assertThat(c.get(JobConfig.MAX_PARALLELISM)).isEqualTo(128);
        assertThat(c.get(JobConfig.ORT_THREADS)).isEqualTo(1);
        assertThat(c.get(JobConfig.SCORE_BATCH)).isEqualTo(64);
        assertThat(c.kafkaProperties()).isEmpty();
    }

    @Test
    void helpTakesNoValue() {
        // --help must not swallow the next option as its value.
        JobConfig c = JobConfig.parse("--help", "--cooldown", "5m");

        assertThat(c.help()).isTrue();
        assertThat(c.get(JobConfig.COOLDOWN)).isEqualTo(Duration.ofMinutes(5));
    }

    @Test
    void bothSpellingsOfAnOptionMeanTheSame() {
        JobConfig spaced = JobConfig.parse("--input-topic", "t1", "--max-events", "7", "--horizon", "2h",
                "--delivery", "at-least-once", "--model", "/m", "--stop-at-latest", "true", "--parallelism", "3");
        JobConfig joined = JobConfig.parse("--input-topic=t1", "--max-events=7", "--horizon=2h",
                "--delivery=at-least-once", "--model=/m", "--stop-at-latest=true", "--parallelism=3");

        for (JobConfig c : new JobConfig[] {spaced, joined}) {
            assertThat(c.get(JobConfig.INPUT_TOPIC)).isEqualTo("t1");
            assertThat(c.get(JobConfig.MAX_EVENTS)).isEqualTo(7);
            assertThat(c.get(JobConfig.HORIZON)).isEqualTo(Duration.ofHours(2));
            assertThat(c.get(JobConfig.DELIVERY)).isEqualTo(JobConfig.Delivery.AT_LEAST_ONCE);
            assertThat(c.model()).isEqualTo("/m");
            assertThat(c.get(JobConfig.STOP_AT_LATEST)).isTrue();
            assertThat(c.get(JobConfig.PARALLELISM)).isEqualTo(3);
        }
    }

    @Test
    void onlyTheFirstEqualsSignSplitsNameFromValue() {
        JobConfig c = JobConfig.parse("--kafka.client.dns.lookup=use_all=dns_ips");

        assertThat(c.kafkaProperties().getProperty("client.dns.lookup")).isEqualTo("use_all=dns_ips");
    }

    @ParameterizedTest
    @ValueSource(strings = {"sasl.jaas.config", "ssl.key.password", "ssl.truststore.password", "sasl.client.secret"})
    void secretsAreRefusedAsFlagsNamingTheFileAndTheEnvironmentVariable(String property) {
        assertThatThrownBy(() -> JobConfig.parse("--kafka." + property, "Plain required password=\"hunter2\";"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--kafka." + property)
                .hasMessageContaining("--kafka-properties")
                .hasMessageContaining("SEQSCORE_KAFKA_" + property.toUpperCase(java.util.Locale.ROOT).replace('.', '_'))
                .hasMessageNotContaining("hunter2");
    }

    @Test
    void secretsComeFromTheEnvironmentBetweenTheFileAndTheFlags(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("client.properties");
        Files.writeString(file, "security.protocol=SSL\nsasl.mechanism=SCRAM-SHA-256\n");
        JobConfig c = JobConfig.parse("--kafka-properties", file.toString(), "--kafka.security.protocol", "SASL_SSL");

        // JAAS configs are full of '='; they must reach Kafka intact.
        Properties p = c.kafkaProperties(Map.of(
                "SEQSCORE_KAFKA_SASL_JAAS_CONFIG", "Plain required username=\"u\" password=\"p=q\";",
                "SEQSCORE_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT",
                "SEQSCORE_KAFKA_SASL_MECHANISM", "PLAIN",
                "PATH", "/usr/bin"));

        assertThat(p.getProperty("sasl.jaas.config")).isEqualTo("Plain required username=\"u\" password=\"p=q\";");
        assertThat(p.getProperty("sasl.mechanism")).as("the environment wins over the file").isEqualTo("PLAIN");
        assertThat(p.getProperty("security.protocol")).as("a flag wins over both").isEqualTo("SASL_SSL");
        assertThat(p).hasSize(3);
    }

    @Test
    void theConfigsTextNamesOptionsButShowsNoValue() {
        JobConfig c = JobConfig.parse("--kafka.sasl.mechanism", "PLAIN", "--group-id", "g-visible-value");

        assertThat(c.toString()).contains("group-id").doesNotContain("g-visible-value").doesNotContain("PLAIN");
    }

    @Test
    void enumValuesAreCaseInsensitive() {
        JobConfig c = JobConfig.parse("--input-format", "JSON", "--starting-offsets", "Earliest",
                "--delivery", "EXACTLY-ONCE");

        assertThat(c.get(JobConfig.INPUT_FORMAT)).isEqualTo(InputFormat.JSON);
        assertThat(c.get(JobConfig.STARTING_OFFSETS)).isEqualTo(JobConfig.StartingOffsets.EARLIEST);
        assertThat(c.get(JobConfig.DELIVERY)).isEqualTo(JobConfig.Delivery.EXACTLY_ONCE);
    }

    @Test
    void startingOffsetsTakeATimestampInEitherForm() {
        assertThat(JobConfig.parse("--starting-offsets", "timestamp:1512086400000").get(JobConfig.STARTING_OFFSETS))
                .isEqualTo(JobConfig.StartingOffsets.timestamp(1512086400000L));
        assertThat(JobConfig.parse("--starting-offsets", "Timestamp:2017-12-01T00:00:00Z")
                .get(JobConfig.STARTING_OFFSETS)).isEqualTo(JobConfig.StartingOffsets.timestamp(1512086400000L));
        assertThat(JobConfig.parse("--starting-offsets", "timestamp:2017-12-01T08:00:00+08:00")
                .get(JobConfig.STARTING_OFFSETS).timestampMs()).isEqualTo(1512086400000L);
        assertThatThrownBy(() -> JobConfig.parse("--starting-offsets", "timestamp:soon"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--starting-offsets")
                .hasMessageContaining("epoch milliseconds or an ISO-8601 time");
        assertThatThrownBy(() -> JobConfig.parse("--starting-offsets", "beginning"))
                .hasMessageContaining("committed, earliest, latest, timestamp:TIME");
    }

    @Test
    void unknownOptionIsNamedInTheError() {
        assertThatThrownBy(() -> JobConfig.parse("--bootstrap-server", "b:9092"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--bootstrap-server")
                .hasMessageContaining("unknown option");
    }

    @ParameterizedTest
    @ValueSource(strings = {"--threshold.", "--alert-rate.", "--kafka."})
    void familyPrefixWithoutANameIsUnknown(String arg) {
        assertThatThrownBy(() -> JobConfig.parse(arg, "x"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("unknown option");
    }

    @Test
    void optionWithoutValueIsNamed() {
        assertThatThrownBy(() -> JobConfig.parse("--input-topic", "t", "--cooldown"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--cooldown")
                .hasMessageContaining("needs a value");
    }

    @ParameterizedTest
    @ValueSource(strings = {"cooldown", "-cooldown", "--"})
    void positionalArgumentsAreRejected(String arg) {
        assertThatThrownBy(() -> JobConfig.parse(arg, "5m"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("unexpected argument '" + arg + "'");
    }

    @ParameterizedTest(name = "--{0} {1}")
    @CsvSource({
        // durations
        "cooldown, abc",
        "cooldown, -5m",
        "cooldown, 5 weeks",
        "cooldown, PT-5M",
        "cooldown, 99999999999999999999s",
        "cooldown, 9999999999999999d",
        "state-ttl, 999999999999d",
        "idleness, PT2562047788015215H",
        "horizon, 1x",
        "horizon, 0",
        "checkpoint-interval, 0s",
        "checkpoint-interval, soon",
        "max-out-of-orderness, 5 s s",
        "idleness, 1.5s",
        "max-future-skew, h",
        "state-ttl, forever",
        // integers
        "max-events, seven",
        "max-events, 0",
        "max-events, -3",
        "parallelism, 0",
        "parallelism, 2.5",
        "max-parallelism, 0",
        "max-parallelism, 40000",
        "ort-threads, -1",
        "ort-threads, 0",
        "ort-threads, 1000",
        "ort-threads, two",
        "score-batch, 0",
        "score-batch, 99999999999",
        "max-id-bytes, 0",
        "max-id-bytes, 65536",
        "max-id-bytes, 1k",
        // enums
        "delivery, exactly_once",
        "delivery, none",
        "starting-offsets, beginning",
        "starting-offsets, timestamp:",
        "starting-offsets, timestamp:yesterday",
        "starting-offsets, timestamp:-5",
        "offset-reset, committed",
        "input-format, protobuf",
        "stop-at-latest, yes",
        // required text
        "input-topic, ''",
        "bootstrap-servers, '  '",
        "state-backend, memory",
    })
    void badValueIsRejectedNamingTheOption(String option, String value) {
        assertThatThrownBy(() -> JobConfig.parse("--" + option, value))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--" + option);
        // The other spelling goes through the same checks.
        assertThatThrownBy(() -> JobConfig.parse("--" + option + "=" + value))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--" + option);
    }

    @Test
    void parallelismAboveMaxParallelismIsRejected() {
        assertThatThrownBy(() -> JobConfig.parse("--parallelism", "8", "--max-parallelism", "4"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--parallelism 8")
                .hasMessageContaining("--max-parallelism 4");
    }

    @Test
    void zeroDisablesTheOptionalDurations() {
        JobConfig c = JobConfig.parse("--state-ttl", "0", "--idleness", "0s", "--cooldown", "0ms",
                "--max-out-of-orderness", "0");

        assertThat(c.get(JobConfig.STATE_TTL)).isZero();
        assertThat(c.get(JobConfig.IDLENESS)).isZero();
        assertThat(c.get(JobConfig.COOLDOWN)).isZero();
        assertThat(c.get(JobConfig.MAX_OUT_OF_ORDERNESS)).isZero();
    }

    @Test
    void thresholdsArePerOutput() {
        JobConfig c = JobConfig.parse("--threshold.purchase_30m", "0.6", "--threshold.churn_24h=1",
                "--threshold.other", "0");

        assertThat(c.get(JobConfig.THRESHOLD)).containsExactlyInAnyOrderEntriesOf(
                Map.of("purchase_30m", 0.6, "churn_24h", 1.0, "other", 0.0));
    }

    @ParameterizedTest
    @ValueSource(strings = {"1.01", "-0.1", "NaN", "Infinity", "high", ""})
    void thresholdOutsideZeroToOneIsRejectedNamingTheOutput(String value) {
        assertThatThrownBy(() -> JobConfig.parse("--threshold.purchase_30m", value))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--threshold.purchase_30m");
    }

    @Test
    void alertRatesArePerOutputFractions() {
        JobConfig c = JobConfig.parse("--alert-rate.purchase_30m", "0.01", "--alert-rate.churn_24h=0.005");

        assertThat(c.get(JobConfig.ALERT_RATE)).containsExactlyInAnyOrderEntriesOf(Map.of("purchase_30m", 0.01, "churn_24h", 0.005));
        assertThat(c.get(JobConfig.THRESHOLD)).isEmpty();
        assertThat(JobConfig.parse().get(JobConfig.ALERT_RATE)).isEmpty();
        assertThatThrownBy(() -> JobConfig.parse("--alert-rate.churn_24h", "1.5"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--alert-rate.churn_24h");
        assertThat(JobConfig.OPTIONS.usage("job", "")).contains("--alert-rate.<output>");
    }

    @Test
    void kafkaFlagsOverrideThePropertiesFile(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("client.properties");
        Files.writeString(file, "security.protocol=SSL\nssl.truststore.location=/etc/ts.jks\n");

        JobConfig c = JobConfig.parse("--kafka.security.protocol", "SASL_SSL", "--kafka-properties", file.toString(),
                "--kafka.sasl.mechanism=PLAIN");

        Properties p = c.kafkaProperties();
        assertThat(p.getProperty("security.protocol")).isEqualTo("SASL_SSL");
        assertThat(p.getProperty("ssl.truststore.location")).isEqualTo("/etc/ts.jks");
        assertThat(p.getProperty("sasl.mechanism")).isEqualTo("PLAIN");
        assertThat(p).hasSize(3);
    }

    @Test
    void propertiesFileAloneIsUsed(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("client.properties");
        Files.writeString(file, "# comment\nsecurity.protocol = SASL_PLAINTEXT\n");

        Properties p = JobConfig.parse("--kafka-properties", file.toString()).kafkaProperties();
        assertThat(p.getProperty("security.protocol")).isEqualTo("SASL_PLAINTEXT");
        assertThat(p).hasSize(1);
    }

    @Test
    void missingPropertiesFileFailsAtParseTimeNamingOptionAndFile(@TempDir Path dir) {
        Path missing = dir.resolve("nope.properties");

        assertThatThrownBy(() -> JobConfig.parse("--kafka-properties", missing.toString()))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--kafka-properties")
                .hasMessageContaining(missing.toString());
    }

    @Test
    void usageListsEveryOptionWithItsHelpAndDefault() {
        String usage = JobConfig.usage("seqscore");

        assertThat(usage).startsWith("Usage: seqscore");
        assertThat(JobConfig.OPTIONS.options()).hasSizeGreaterThan(20);
        for (Option<?> o : JobConfig.OPTIONS.options()) {
            assertThat(usage).contains("--" + o.name()).contains(o.help());
            if (!o.defaultText().isEmpty()) {
                assertThat(usage).contains("(default: " + o.defaultText() + ")");
            }
        }
        assertThat(usage).contains("--threshold.<output>").contains("--kafka.<property>");
    }

    @Test
    void everyDocumentedOptionIsAccepted() {
        // The usage must not advertise a flag the parser refuses, or vice versa for the plain ones.
        for (Option<?> o : JobConfig.OPTIONS.options()) {
            if (o.isFlag() || o.defaultText().isEmpty()) {
                continue;
            }
            assertThat((Object) JobConfig.parse("--" + o.name(), o.defaultText()).get(o)).isEqualTo(o.defaultValue());
        }
    }

    @Test
    void withRevalidates() {
        JobConfig c = JobConfig.parse("--threshold.purchase_30m", "0.6");

        JobConfig moved = c.with(JobConfig.BOOTSTRAP_SERVERS, "other:9093");
        assertThat(moved.get(JobConfig.BOOTSTRAP_SERVERS)).isEqualTo("other:9093");
        assertThat(moved.get(JobConfig.THRESHOLD)).containsEntry("purchase_30m", 0.6);
        assertThat(c.get(JobConfig.BOOTSTRAP_SERVERS)).isEqualTo("localhost:9092");

        assertThatThrownBy(() -> c.with(JobConfig.COOLDOWN, "later"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--cooldown");
    }

    @ParameterizedTest(name = "{0} = {1} ms")
    @CsvSource({
        "500ms, 500",
        "1500, 1500",
        "30s, 30000",
        "10m, 600000",
        "10min, 600000",
        "24h, 86400000",
        "2d, 172800000",
        "' 5 s ', 5000",
        "5S, 5000",
        "PT10M, 600000",
        "pt1.5s, 1500",
        "P1D, 86400000",
        "0, 0",
    })
    void durationsParse(String text, long millis) {
        assertThat(Durations.parse(text)).isEqualTo(Duration.ofMillis(millis));
    }

    @ParameterizedTest
    @ValueSource(strings = {"99999999999999999999", "9999999999999999d", "999999999999d", "PT2562047788015215H"})
    void durationsBeyondALongOfMillisecondsAreRejectedNotOverflowed(String text) {
        // Every consumer calls toMillis(); an ArithmeticException there would surface far from the flag.
        assertThatThrownBy(() -> Durations.parse(text))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'" + text + "'")
                .hasMessageContaining("too large");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "abc", "-1s", "5x", "1.5s", "PT-1S", "P", "s", "5 5s"})
    void badDurationsAreRejectedWithTheText(String text) {
        assertThatThrownBy(() -> Durations.parse(text))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'" + text + "'");
    }

    @Test
    void aToolsOwnOptionsAndTheJobsParseTogetherKeepingEachValueWithItsName() {
        Option<String> input = Option.string("input", "", "a file");
        OptionSet tool = new OptionSet().add(input, OptionSet.HELP).addAll("job", JobConfig.OPTIONS);

        OptionValues v = tool.parse("--input", "a.csv", "--threshold.churn_24h", "0.7", "--group-id", "input", "--help");

        assertThat(v.get(input)).isEqualTo("a.csv");
        assertThat(v.get(OptionSet.HELP)).isTrue();
        // A job option's value that happens to spell an own option's name is still the job option's value.
        JobConfig job = JobConfig.of(v);
        assertThat(job.get(JobConfig.GROUP_ID)).isEqualTo("input");
        assertThat(job.get(JobConfig.THRESHOLD)).containsEntry("churn_24h", 0.7);
        assertThat(tool.usage("tool", "")).contains("--input VALUE").contains("--group-id VALUE").contains("job:");
    }

    @Test
    void anOwnOptionWithoutItsValueIsAnError() {
        OptionSet tool = new OptionSet().add(Option.string("input", "", "a file")).addAll("job", JobConfig.OPTIONS);

        assertThatThrownBy(() -> tool.parse("--input"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--input needs a value");
    }

    @Test
    void anOptionDefinedTwiceIsABugCaughtWhenTheSetIsBuilt() {
        assertThatThrownBy(() -> new OptionSet().add(JobConfig.OPTIONS.options().get(0)).addAll("job", JobConfig.OPTIONS))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("defined twice");
    }

    @Test
    void anOptionGivenTwiceIsRejectedRatherThanSilentlyOverridden() {
        assertThatThrownBy(() -> JobConfig.parse("--input-topic", "a", "--input-topic=b"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--input-topic given twice");
    }

    @Test
    void stateOptionsAreTyped() {
        JobConfig c = JobConfig.parse("--checkpoint-dir", "s3://bucket/cp", "--savepoint-dir", "file:///sp",
                "--state-backend", "RocksDB");

        assertThat(c.checkpointDir()).isEqualTo("s3://bucket/cp");
        assertThat(c.savepointDir()).isEqualTo("file:///sp");
        assertThat(c.get(JobConfig.STATE_BACKEND)).isEqualTo(JobConfig.StateBackend.ROCKSDB);
        assertThat(JobConfig.parse().checkpointDir()).isNull();
        assertThat(JobConfig.parse().get(JobConfig.STATE_BACKEND)).as("the cluster's").isNull();
    }

    @Test
    void modelControlNeedsItsStatusTopicAndATopicOfItsOwn() {
        assertThatThrownBy(() -> JobConfig.parse("--model-control-topic", "mc"))
                .isInstanceOf(ConfigException.class).hasMessageContaining("--model-control-topic needs "
                        + "--model-status-topic");
        assertThatThrownBy(() -> JobConfig.parse("--model-control-topic", "clicks", "--model-status-topic", "ms"))
                .hasMessageContaining("must be a topic of its own");
        assertThatThrownBy(() -> JobConfig.parse("--shadow-scores-topic", "ss"))
                .hasMessageContaining("--shadow-scores-topic needs --model-control-topic");
        JobConfig c = JobConfig.parse("--model-control-topic", "mc", "--model-status-topic", "ms",
                "--shadow-scores-topic", "ss");
        assertThat(c.modelControlTopic()).isEqualTo("mc");
        assertThat(c.modelStatusTopic()).isEqualTo("ms");
        assertThat(c.shadowScoresTopic()).isEqualTo("ss");
        assertThat(JobConfig.OPTIONS.usage("job", "")).contains("--model-control-topic")
                .contains("--model-status-topic").contains("--shadow-scores-topic");
    }
}
