package dev.seqscore.job;

import dev.seqscore.events.InputFormat;
import dev.seqscore.features.Scoring;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
import dev.seqscore.options.PrefixOption;
import dev.seqscore.registry.RegistryEndpoint;
import dev.seqscore.options.Timestamps;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;

/**
 * The job's options, typed: each is one {@link Option} definition (name, type, default, help, validation) in
 * {@link #OPTIONS}, from which parsing, checking and {@code --help} all follow. Code reads an option with
 * {@link #get(Option)}; the few accessors below add a rule on top (blank means unset, the Kafka property layers).
 *
 * <p>Three families pass through: {@code --threshold.<output> X} overrides one model output's alert threshold,
 * {@code --alert-rate.<output> F} sets it from the spec's score quantiles instead, and
 * {@code --kafka.<property> V} (or {@code --kafka-properties FILE}) sets Kafka client properties on every source and
 * sink. Secrets belong in that file, never in a flag: Flink shows program arguments in its web UI.
 */
public final class JobConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    public static final Option<String> BOOTSTRAP_SERVERS =
            Option.nonBlank("bootstrap-servers", "localhost:9092", "Kafka bootstrap servers");
    public static final Option<String> INPUT_TOPIC = Option.nonBlank("input-topic", "clicks", "topic of ClickEvents to score");
    public static final Option<InputFormat> INPUT_FORMAT = Option.of("input-format", "avro|json", "avro",
            "value format of the input topic", InputFormat::parse);
    public static final Option<String> GROUP_ID =
            Option.nonBlank("group-id", "seqscore", "consumer group id (offsets are committed on checkpoints)");
    public static final Option<StartingOffsets> STARTING_OFFSETS = Option.of("starting-offsets",
            "committed|earliest|latest|timestamp:TIME", "committed",
            "where to start reading when the source has no state: the group's committed offsets, earliest, latest, or "
                    + "timestamp:TIME, the first record whose Kafka timestamp is at or after TIME in each partition "
                    + "(" + Timestamps.FORMS + "; after a warm-start bootstrap: its --until)",
            StartingOffsets::parse);
    public static final Option<OffsetReset> OFFSET_RESET = Option.enumOf("offset-reset", "earliest",
            "with --starting-offsets committed, where to start when the group has no offset", OffsetReset.class);
    public static final Option<Boolean> STOP_AT_LATEST = Option.bool("stop-at-latest", "false",
            "read up to the offsets that are latest at start-up, then finish (a bounded run)");
    public static final Option<String> ALERTS_TOPIC = Option.nonBlank("alerts-topic", "alerts", "topic for Avro Alert records");
    public static final Option<String> SCORES_TOPIC = Option.string("scores-topic", "",
            "topic for an Avro Score of every event, for dashboards; empty disables it");
    public static final Option<String> DEAD_LETTER_TOPIC = Option.nonBlank("dead-letter-topic", "clicks-dlq",
            "topic for Avro DeadLetter records (bad input, with reason and origin)");
    public static final Option<Scoring> SCORING = Option.enumOf("scoring", "incremental",
            "incremental: the bundle's streaming model updates each user's model state in one step per event; "
                    + "windowed: the windowed model reads the whole window for every event (the fallback)",
            Scoring.class);
    public static final Option<String> MODEL = Option.string("model", "",
            "model bundle: a directory or a URI Flink can read (file://, s3://, hdfs://); read on the client and "
                    + "shipped with the job; empty = the bundle inside the job jar");
    public static final Option<Integer> MAX_EVENTS = Option.positiveInt("max-events", "",
            "window length N, at most the model's; empty = model-spec.json's window.max_events");
    public static final Option<Duration> HORIZON = Option.positiveDuration("horizon", "",
            "window horizon H (e.g. 24h); empty = model-spec.json's window.horizon_ms");
    public static final PrefixOption<Double> THRESHOLD = new PrefixOption<>("threshold", "<output>",
            Option.number("threshold", "", "alert threshold for one model output, e.g. --threshold.purchase_30m 0.6; "
                    + "default: the spec's", 0.0, 1.0));
    public static final PrefixOption<Double> ALERT_RATE = new PrefixOption<>("alert-rate", "<output>",
            Option.number("alert-rate", "", "alert on this fraction of events for one model output, e.g. "
                    + "--alert-rate.churn_24h 0.005: the threshold comes from the score quantiles in "
                    + "model-spec.json; not together with --threshold.<output>", 0.0, 1.0));
    public static final Option<Duration> COOLDOWN = Option.duration("cooldown", "10m",
            "per user and alert type, the minimum event time between two alerts");
    public static final Option<Delivery> DELIVERY = Option.enumOf("delivery", "exactly-once",
            "alert and score sink guarantee (exactly-once uses Kafka transactions)", Delivery.class);
    public static final Option<String> TRANSACTIONAL_ID_PREFIX = Option.nonBlank("transactional-id-prefix", "seqscore",
            "prefix of the sinks' Kafka transactional ids; unique per job on a cluster");
    public static final Option<Duration> CHECKPOINT_INTERVAL = Option.positiveDuration("checkpoint-interval", "10s",
            "checkpoint interval; exactly-once output becomes visible at each checkpoint");
    public static final Option<String> CHECKPOINT_DIR = Option.string("checkpoint-dir", "",
            "durable checkpoint storage, any Flink file system URI (file:///..., s3://..., hdfs://...); empty = the "
                    + "cluster's execution.checkpointing.dir (the job refuses to start if neither is set)");
    public static final Option<String> SAVEPOINT_DIR = Option.string("savepoint-dir", "",
            "default savepoint directory (URI); empty = the cluster's execution.checkpointing.savepoint-dir");
    public static final Option<StateBackend> STATE_BACKEND = Option.enumOf("state-backend", "",
            "state backend: rocksdb (large state, incremental checkpoints) or hashmap; empty = the cluster's",
            StateBackend.class);
    public static final Option<Duration> MAX_OUT_OF_ORDERNESS = Option.duration("max-out-of-orderness", "5s",
            "how far behind the newest event time an event may arrive and still be scored in order; later ones "
                    + "are dead-lettered as LATE_EVENT");
    public static final Option<Duration> IDLENESS = Option.duration("idleness", "30s",
            "a partition without records for this long stops holding back the watermark; 0 disables");
    public static final Option<Duration> MAX_FUTURE_SKEW = Option.duration("max-future-skew", "1h",
            "events further than this ahead of the wall clock are dead-lettered as FUTURE_TIMESTAMP");
    public static final Option<Integer> MAX_ID_BYTES = Option.integer("max-id-bytes", "256",
            "the longest user_id, item_id, category_id and session_id accepted, in UTF-8 bytes; longer ones are "
                    + "dead-lettered as INVALID_FIELD", 1, 65535);
    public static final Option<Duration> STATE_TTL = Option.duration("state-ttl", "48h",
            "processing-time TTL backstop on per-user state (windows also clear themselves in event time); 0 disables");
    public static final Option<Duration> MODEL_STATE_TTL = Option.duration("model-state-ttl", "",
            "how long, in event time, a user's lifetime record and model state outlive the user's last event (the "
                    + "window itself clears after the horizon); empty = the streaming model's reset gap "
                    + "(model-spec.json streaming.reset_gap_ms, 30 days) with --scoring incremental, 0 with windowed; "
                    + "0 = as long as the window");
    public static final Option<Integer> PARALLELISM =
            Option.positiveInt("parallelism", "", "job parallelism; empty = the cluster's default");
    public static final Option<Integer> MAX_PARALLELISM = Option.integer("max-parallelism", "128",
            "max parallelism of the keyed operators: the upper bound for rescaling, fixed for the job's lifetime",
            1, 32768);
    public static final Option<Integer> ORT_THREADS = Option.integer("ort-threads", "1",
            "ONNX Runtime intra-op threads per scoring task; keep ort-threads x task slots per TaskManager <= its "
                    + "cores (README, Operate)", 1, 256);
    public static final Option<Integer> SCORE_BATCH =
            Option.positiveInt("score-batch", "64", "largest batch handed to ONNX Runtime at once");
    public static final Option<Duration> SCORE_MAX_DELAY = Option.duration("score-max-delay", "5ms",
            "how long a ready event may wait for its batch to fill (processing time); 0 scores what is ready at once");
    public static final Option<Integer> ALERT_REASONS = Option.integer("alert-reasons", "",
            "reasons per alert at most, found by occluding the model's reason groups for events that reach a "
                    + "threshold; empty = the model's default (model-spec.json reasons.top); 0 = no reasons", 0, 20);
    public static final Option<Path> KAFKA_PROPERTIES = Option.path("kafka-properties", "",
            "file of Kafka client properties (security.protocol, sasl.*, ssl.*) for every source and sink; "
                    + "the place for credentials");
    public static final PrefixOption<String> KAFKA_PROPERTY = new PrefixOption<>("kafka", "<property>",
            Option.string("kafka", "", "one Kafka client property, e.g. --kafka.security.protocol SASL_SSL; wins "
                    + "over --kafka-properties; not for secrets (program arguments show in Flink's web UI)"));
    public static final Option<String> SCHEMA_REGISTRY = Option.string(RegistryEndpoint.FLAG, "",
            "URL of a Confluent-compatible schema registry API (Confluent Schema Registry, or Apicurio's "
                    + "http://host:8080/apis/ccompat/v7): input values are then registry-framed Avro (magic byte 0, "
                    + "4-byte schema id), each read with its writer schema; alerts, scores and dead letters are "
                    + "written framed, their schemas registered under <topic>-value before submission; "
                    + "empty = bare Avro");
    public static final Option<Path> SCHEMA_REGISTRY_PROPERTIES = Option.path(RegistryEndpoint.PROPERTIES_FLAG, "",
            "file of schema registry settings: " + RegistryEndpoint.BASIC_AUTH_USER_INFO + "=user:password or "
                    + RegistryEndpoint.BEARER_AUTH_TOKEN + "=..., " + RegistryEndpoint.CONNECT_TIMEOUT_MS + ", "
                    + RegistryEndpoint.REQUEST_TIMEOUT_MS + "; the place for its credentials (or "
                    + RegistryEndpoint.ENV_PREFIX + "* environment variables, e.g. " + RegistryEndpoint.ENV_PREFIX
                    + "BASIC_AUTH_USER_INFO)");
    public static final Option<Path> PSEUDONYMIZE_KEY_FILE = Option.path("pseudonymize-key-file", "",
            "file holding a secret key (>= 16 bytes); alerts and scores then carry hex(HMAC-SHA256(key, user_id)) "
                    + "instead of the user id; state and dead letters keep the raw id");
    public static final Option<String> ERASURE_TOPIC = Option.string("erasure-topic", "",
            "topic of erasure requests (a record's value names a user: the bare id, or {\"user_id\": \"...\"}): the "
                    + "job clears everything it keeps for that user and answers on --erasure-audit-topic; empty = off");
    public static final Option<String> ERASURE_AUDIT_TOPIC = Option.string("erasure-audit-topic", "",
            "topic for the Avro ErasureAudit answer to every erasure request (required with --erasure-topic)");
    public static final Option<String> MODEL_CONTROL_TOPIC = Option.string("model-control-topic", "",
            "topic of model control records (JSON: publish a bundle URI as serve or shadow, promote, withdraw, each "
                    + "from an event time on; bin/seqscore model publish writes them): the running job swaps or "
                    + "shadows models without a restart and answers on --model-status-topic; empty = off");
    public static final Option<String> MODEL_STATUS_TOPIC = Option.string("model-status-topic", "",
            "topic for the Avro ModelEvent answers to model control records (ACCEPTED, REFUSED with the reason, "
                    + "ACTIVE once a change takes effect), one per scorer subtask (required with --model-control-topic)");
    public static final Option<String> SHADOW_SCORES_TOPIC = Option.string("shadow-scores-topic", "",
            "topic for an Avro Score of every event the shadow candidate scores, with its model_version; empty = off");
    public static final Option<Boolean> HELP = OptionSet.HELP;

    /** Kafka client properties from the environment: SEQSCORE_KAFKA_SASL_JAAS_CONFIG is sasl.jaas.config. */
    public static final String KAFKA_ENV_PREFIX = "SEQSCORE_KAFKA_";

    /** Every option of the job, in help order. */
    public static final OptionSet OPTIONS = new OptionSet()
            .add(BOOTSTRAP_SERVERS, INPUT_TOPIC, INPUT_FORMAT, GROUP_ID, STARTING_OFFSETS, OFFSET_RESET,
                    STOP_AT_LATEST, ALERTS_TOPIC, SCORES_TOPIC, DEAD_LETTER_TOPIC, SCORING, MODEL, MAX_EVENTS, HORIZON,
                    COOLDOWN, DELIVERY, TRANSACTIONAL_ID_PREFIX, CHECKPOINT_INTERVAL, CHECKPOINT_DIR, SAVEPOINT_DIR,
                    STATE_BACKEND, MAX_OUT_OF_ORDERNESS, IDLENESS, MAX_FUTURE_SKEW, MAX_ID_BYTES, STATE_TTL,
                    MODEL_STATE_TTL, PARALLELISM, MAX_PARALLELISM, ORT_THREADS, SCORE_BATCH, SCORE_MAX_DELAY,
                    ALERT_REASONS, KAFKA_PROPERTIES, SCHEMA_REGISTRY, SCHEMA_REGISTRY_PROPERTIES, PSEUDONYMIZE_KEY_FILE,
                    ERASURE_TOPIC, ERASURE_AUDIT_TOPIC, MODEL_CONTROL_TOPIC, MODEL_STATUS_TOPIC, SHADOW_SCORES_TOPIC,
                    HELP)
            .add(THRESHOLD, ALERT_RATE, KAFKA_PROPERTY);

    /** The alert and score sinks' guarantee. */
    public enum Delivery { EXACTLY_ONCE, AT_LEAST_ONCE }

    /**
     * Where the Kafka source starts when the job starts without source state: {@code committed}, {@code earliest},
     * {@code latest} or {@code timestamp:TIME} ({@link Timestamps}).
     *
     * @param timestampMs for {@link Kind#TIMESTAMP}, the Kafka record timestamp to start at (epoch ms); else 0
     */
    public record StartingOffsets(Kind kind, long timestampMs) implements Serializable {
        public enum Kind { COMMITTED, EARLIEST, LATEST, TIMESTAMP }

        public static final StartingOffsets COMMITTED = new StartingOffsets(Kind.COMMITTED, 0);
        public static final StartingOffsets EARLIEST = new StartingOffsets(Kind.EARLIEST, 0);
        public static final StartingOffsets LATEST = new StartingOffsets(Kind.LATEST, 0);

        public static StartingOffsets timestamp(long epochMs) {
            return new StartingOffsets(Kind.TIMESTAMP, epochMs);
        }

        /** @throws IllegalArgumentException naming the four forms */
        public static StartingOffsets parse(String text) {
            String v = text.trim();
            String lower = v.toLowerCase(java.util.Locale.ROOT);
            switch (lower) {
                case "committed": return COMMITTED;
                case "earliest": return EARLIEST;
                case "latest": return LATEST;
                default: break;
            }
            if (lower.startsWith("timestamp:")) {
                long t = Timestamps.parse(v.substring("timestamp:".length()));
                if (t < 0) {
                    throw new IllegalArgumentException("'" + text + "': the time must not be before 1970");
                }
                return timestamp(t);
            }
            throw new IllegalArgumentException("'" + text + "' is not one of committed, earliest, latest, "
                    + "timestamp:TIME (TIME: " + Timestamps.FORMS + ")");
        }

        @Override
        public String toString() {
            return kind == Kind.TIMESTAMP ? "timestamp:" + timestampMs : Option.cliName(kind);
        }
    }

    /** With {@link StartingOffsets#COMMITTED}, where a partition without a committed offset starts. */
    public enum OffsetReset { EARLIEST, LATEST }

    /** Flink's state backends this job supports (state.backend.type). */
    public enum StateBackend { ROCKSDB, HASHMAP }

    private final OptionValues values;

    private JobConfig(OptionValues values) {
        this.values = values;
    }

    /** Parses {@code --name value} and {@code --name=value}; unknown names and bad values throw. */
    public static JobConfig parse(String... args) {
        return of(OPTIONS.parse(args));
    }

    /**
     * The job's view of values parsed by a set that includes {@link #OPTIONS} (a tool that takes the job's options
     * too); checks the rules that span options.
     */
    public static JobConfig of(OptionValues values) {
        JobConfig c = new JobConfig(values);
        c.validate();
        return c;
    }

    private void validate() {
        Integer p = get(PARALLELISM);
        if (p != null && p > get(MAX_PARALLELISM)) {
            throw new ConfigException("--parallelism " + p + " exceeds --max-parallelism " + get(MAX_PARALLELISM));
        }
        if (!erasureTopic().isEmpty() && erasureAuditTopic().isEmpty()) {
            throw new ConfigException("--" + ERASURE_TOPIC.name() + " needs --" + ERASURE_AUDIT_TOPIC.name()
                    + ": every erasure request is answered there (user, when, whether any state was found)");
        }
        if (!erasureTopic().isEmpty() && erasureTopic().equals(get(INPUT_TOPIC))) {
            throw new ConfigException("--" + ERASURE_TOPIC.name() + " must not be the input topic "
                    + get(INPUT_TOPIC));
        }
        if (!modelControlTopic().isEmpty() && modelStatusTopic().isEmpty()) {
            throw new ConfigException("--" + MODEL_CONTROL_TOPIC.name() + " needs --" + MODEL_STATUS_TOPIC.name()
                    + ": every control record is answered there (accepted, or refused with the reason)");
        }
        if (!modelControlTopic().isEmpty() && (modelControlTopic().equals(get(INPUT_TOPIC))
                || modelControlTopic().equals(erasureTopic()))) {
            throw new ConfigException("--" + MODEL_CONTROL_TOPIC.name() + " must be a topic of its own, not "
                    + modelControlTopic());
        }
        if (!shadowScoresTopic().isEmpty() && modelControlTopic().isEmpty()) {
            throw new ConfigException("--" + SHADOW_SCORES_TOPIC.name() + " needs --" + MODEL_CONTROL_TOPIC.name()
                    + ": a shadow candidate is published there");
        }
        for (String property : values.get(KAFKA_PROPERTY).keySet()) {
            if (isSecret(property)) {
                throw new ConfigException("--kafka." + property + " would show a secret in Flink's web UI, which lists "
                        + "program arguments: put it in the --" + KAFKA_PROPERTIES.name() + " file or the "
                        + envName(property) + " environment variable");
            }
        }
        kafkaProperties();
        RegistryEndpoint registry = RegistryEndpoint.from(get(SCHEMA_REGISTRY), get(SCHEMA_REGISTRY_PROPERTIES),
                System.getenv());
        if (registry != null && get(INPUT_FORMAT) != InputFormat.AVRO) {
            throw new ConfigException("--" + SCHEMA_REGISTRY.name() + " reads registry-framed Avro: it does not go "
                    + "with --" + INPUT_FORMAT.name() + " " + get(INPUT_FORMAT).name().toLowerCase(java.util.Locale.ROOT));
        }
    }

    static boolean isSecret(String property) {
        String p = property.toLowerCase(java.util.Locale.ROOT);
        return p.equals("sasl.jaas.config") || p.contains("password") || p.contains("secret");
    }

    static String envName(String property) {
        return KAFKA_ENV_PREFIX + property.toUpperCase(java.util.Locale.ROOT).replace('.', '_').replace('-', '_');
    }

    public boolean help() {
        return values.get(HELP);
    }

    /** The option's typed value, or its default; null when neither is set. */
    public <T> T get(Option<T> o) {
        return values.get(o);
    }

    /** Every {@code --prefix.key value} of a family, typed, by key. */
    public <T> Map<String, T> get(PrefixOption<T> family) {
        return values.get(family);
    }

    /** Whether the command line named the option. */
    public boolean given(Option<?> o) {
        return values.given(o);
    }

    /** A copy with one option replaced; used by the demo and tests to point the same job elsewhere. */
    public JobConfig with(Option<?> o, String value) {
        return of(values.with(o, value));
    }

    /** Empty when the scores topic is off. */
    public String scoresTopic() {
        return get(SCORES_TOPIC) == null ? "" : get(SCORES_TOPIC).trim();
    }

    /** Empty when erasure requests are off. */
    public String erasureTopic() {
        return get(ERASURE_TOPIC) == null ? "" : get(ERASURE_TOPIC).trim();
    }

    /** Empty when model control is off. */
    public String modelControlTopic() {
        return get(MODEL_CONTROL_TOPIC) == null ? "" : get(MODEL_CONTROL_TOPIC).trim();
    }

    /** Empty unless set. */
    public String modelStatusTopic() {
        return get(MODEL_STATUS_TOPIC) == null ? "" : get(MODEL_STATUS_TOPIC).trim();
    }

    /** Empty unless set. */
    public String shadowScoresTopic() {
        return get(SHADOW_SCORES_TOPIC) == null ? "" : get(SHADOW_SCORES_TOPIC).trim();
    }

    /** Empty unless set. */
    public String erasureAuditTopic() {
        return get(ERASURE_AUDIT_TOPIC) == null ? "" : get(ERASURE_AUDIT_TOPIC).trim();
    }

    /** The bundle's location as given (a directory or URI); null means the bundle packaged with the job. */
    public String model() {
        String m = get(MODEL);
        return m == null || m.isBlank() ? null : m.trim();
    }

    /** Null when the cluster's checkpoint directory applies. */
    public String checkpointDir() {
        return blankToNull(get(CHECKPOINT_DIR));
    }

    /** Null when the cluster's savepoint directory applies. */
    public String savepointDir() {
        return blankToNull(get(SAVEPOINT_DIR));
    }

    /**
     * The file's properties, then {@code SEQSCORE_KAFKA_*} environment variables (for secrets, with the file), then
     * {@code --kafka.*} flags.
     */
    public Properties kafkaProperties() {
        return kafkaProperties(System.getenv());
    }

    Properties kafkaProperties(Map<String, String> env) {
        Properties p = new Properties();
        Path file = get(KAFKA_PROPERTIES);
        if (file != null) {
            try (InputStream in = Files.newInputStream(file)) {
                p.load(in);
            } catch (IOException e) {
                throw new ConfigException("--" + KAFKA_PROPERTIES.name() + ": cannot read '" + file + "': " + e, e);
            }
        }
        env.forEach((name, value) -> {
            if (name.startsWith(KAFKA_ENV_PREFIX) && name.length() > KAFKA_ENV_PREFIX.length()) {
                p.put(name.substring(KAFKA_ENV_PREFIX.length()).toLowerCase(java.util.Locale.ROOT).replace('_', '.'),
                        value);
            }
        });
        p.putAll(values.get(KAFKA_PROPERTY));
        return p;
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s.trim();
    }

    /** Every option with its default and help, for --help. */
    public static String usage(String command) {
        return OPTIONS.usage(command + " [--option value ...]",
                "Scores every click of a Kafka topic with a per-user sequence model and emits alerts.");
    }

    @Override
    public String toString() {
        // Names only: values may be Kafka properties, which can carry credentials.
        return "JobConfig " + values;
    }
}
