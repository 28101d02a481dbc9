package dev.seqscore.job;

import dev.seqscore.events.InputFormat;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The job's command line: every option is a named constant with a default that works against a local broker, and
 * help text; {@link #usage()} lists them all. Values are checked when parsed, and a bad one fails with a message
 * that names the option.
 *
 * <p>Two families pass through: {@code --threshold.<output> X} overrides one model output's alert threshold, and
 * {@code --kafka.<property> V} (or {@code --kafka-properties FILE}) sets Kafka client properties such as SASL/SSL
 * on every source and sink.
 */
public final class JobConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    /** One documented option. */
    public record Option(String name, String defaultValue, String help) implements Serializable {}

    private static final Map<String, Option> OPTIONS = new LinkedHashMap<>();

    private static Option opt(String name, String def, String help) {
        Option o = new Option(name, def, help);
        OPTIONS.put(name, o);
        return o;
    }

    public static final Option BOOTSTRAP_SERVERS = opt("bootstrap-servers", "localhost:9092", "Kafka bootstrap servers");
    public static final Option INPUT_TOPIC = opt("input-topic", "clicks", "topic of ClickEvents to score");
    public static final Option INPUT_FORMAT = opt("input-format", "avro", "value format of the input topic: avro or json");
    public static final Option GROUP_ID = opt("group-id", "seqscore", "consumer group id (offsets are committed on checkpoints)");
    public static final Option STARTING_OFFSETS = opt("starting-offsets", "committed",
            "where to start reading: committed (the group's offsets), earliest or latest");
    public static final Option OFFSET_RESET = opt("offset-reset", "earliest",
            "with --starting-offsets committed, where to start when the group has no offset: earliest or latest");
    public static final Option STOP_AT_LATEST = opt("stop-at-latest", "false",
            "read up to the offsets that are latest at start-up, then finish (a bounded run)");
    public static final Option ALERTS_TOPIC = opt("alerts-topic", "alerts", "topic for Avro Alert records");
    public static final Option SCORES_TOPIC = opt("scores-topic", "",
            "topic for an Avro Score of every event, for dashboards; empty disables it");
    public static final Option DEAD_LETTER_TOPIC = opt("dead-letter-topic", "clicks-dlq",
            "topic for Avro DeadLetter records (bad input, with reason and origin)");
    public static final Option MODEL = opt("model", "models/default",
            "model bundle directory (model.onnx + model-spec.json); read on the client and shipped with the job");
    public static final Option MAX_EVENTS = opt("max-events", "",
            "window length N, at most the model's; empty = model-spec.json's window.max_events");
    public static final Option HORIZON = opt("horizon", "",
            "window horizon H (e.g. 24h); empty = model-spec.json's window.horizon_ms");
    public static final Option THRESHOLD = opt("threshold.<output>", "",
            "alert threshold for one model output, e.g. --threshold.purchase_30m 0.6; default: the spec's");
    public static final Option COOLDOWN = opt("cooldown", "10m",
            "per user and alert type, the minimum event time between two alerts");
    public static final Option DELIVERY = opt("delivery", "exactly-once",
            "alert and score sink guarantee: exactly-once (Kafka transactions) or at-least-once");
    public static final Option TRANSACTIONAL_ID_PREFIX = opt("transactional-id-prefix", "seqscore",
            "prefix of the sinks' Kafka transactional ids; unique per job on a cluster");
    public static final Option CHECKPOINT_INTERVAL = opt("checkpoint-interval", "10s",
            "checkpoint interval; exactly-once output becomes visible at each checkpoint");
    public static final Option MAX_OUT_OF_ORDERNESS = opt("max-out-of-orderness", "5s",
            "how far behind the newest event time an event may arrive and still be scored in order; later ones "
                    + "are dead-lettered as LATE_EVENT");
    public static final Option IDLENESS = opt("idleness", "30s",
            "a partition without records for this long stops holding back the watermark; 0 disables");
    public static final Option MAX_FUTURE_SKEW = opt("max-future-skew", "1h",
            "events further than this ahead of the wall clock are dead-lettered as FUTURE_TIMESTAMP");
    public static final Option STATE_TTL = opt("state-ttl", "48h",
            "processing-time TTL backstop on per-user state (windows also clear themselves in event time); 0 disables");
    public static final Option PARALLELISM = opt("parallelism", "", "job parallelism; empty = the cluster's default");
    public static final Option MAX_PARALLELISM = opt("max-parallelism", "128",
            "max parallelism of the keyed operators: the upper bound for rescaling, fixed for the job's lifetime");
    public static final Option ORT_THREADS = opt("ort-threads", "1", "ONNX Runtime intra-op threads per task");
    public static final Option SCORE_BATCH = opt("score-batch", "64", "largest batch handed to ONNX Runtime at once");
    public static final Option KAFKA_PROPERTIES = opt("kafka-properties", "",
            "file of Kafka client properties (security.protocol, sasl.*, ssl.*) for every source and sink");
    public static final Option KAFKA_PROPERTY = opt("kafka.<property>", "",
            "one Kafka client property, e.g. --kafka.security.protocol SASL_SSL; wins over --kafka-properties");
    public static final Option HELP = opt("help", "", "print this help and exit");

    private final Map<String, String> values;
    private final Map<String, Double> thresholds;
    private final Map<String, String> kafkaProperties;

    private JobConfig(Map<String, String> values, Map<String, Double> thresholds, Map<String, String> kafka) {
        this.values = values;
        this.thresholds = thresholds;
        this.kafkaProperties = kafka;
    }

    public static List<Option> options() {
        return List.copyOf(OPTIONS.values());
    }

    /** Parses {@code --name value} and {@code --name=value}; unknown names and bad values throw. */
    public static JobConfig parse(String... args) {
        Map<String, String> values = new LinkedHashMap<>();
        Map<String, Double> thresholds = new LinkedHashMap<>();
        Map<String, String> kafka = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (!arg.startsWith("--") || arg.length() == 2) {
                throw new ConfigException("unexpected argument '" + arg + "': options look like --name value");
            }
            String name = arg.substring(2);
            String value;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            } else if (name.equals(HELP.name())) {
                value = "true";
            } else if (i + 1 < args.length) {
                value = args[++i];
            } else {
                throw new ConfigException("--" + name + " needs a value");
            }
            if (name.startsWith("threshold.") && name.length() > "threshold.".length()) {
                thresholds.put(name.substring("threshold.".length()), parseThreshold(name, value));
            } else if (name.startsWith("kafka.") && name.length() > "kafka.".length()) {
                kafka.put(name.substring("kafka.".length()), value);
            } else if (OPTIONS.containsKey(name) && !name.contains("<")) {
                values.put(name, value);
            } else {
                throw new ConfigException("unknown option --" + name + " (see --help)");
            }
        }
        JobConfig c = new JobConfig(values, thresholds, kafka);
        c.validate();
        return c;
    }

    /**
     * Splits a command's own options from the job's, for commands (backtest, demo) that take both: options named in
     * {@code ownNames}, and {@code --help}, go into {@code own}; every other option and its value is returned, in
     * order, for {@link #parse}.
     */
    public static List<String> splitOwnOptions(String[] args, Collection<String> ownNames, Map<String, String> own) {
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (!arg.startsWith("--")) {
                rest.add(arg);
                continue;
            }
            String name = arg.substring(2);
            String value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            if (name.equals(HELP.name())) {
                own.put(name, "true");
            } else if (ownNames.contains(name)) {
                if (value == null) {
                    if (i + 1 >= args.length) {
                        throw new ConfigException("--" + name + " needs a value");
                    }
                    value = args[++i];
                }
                own.put(name, value);
            } else {
                rest.add(arg);
                // Every job option but --help takes a value; keep it with its name.
                if (value == null && i + 1 < args.length) {
                    rest.add(args[++i]);
                }
            }
        }
        return rest;
    }

    /** Touches every typed option once, so that a bad value fails at start-up rather than deep in the job. */
    private void validate() {
        inputFormat();
        startingOffsets();
        offsetReset();
        bool(STOP_AT_LATEST);
        maxEvents();
        horizon();
        positiveOrZero(COOLDOWN);
        delivery();
        positive(CHECKPOINT_INTERVAL);
        positiveOrZero(MAX_OUT_OF_ORDERNESS);
        positiveOrZero(IDLENESS);
        positiveOrZero(MAX_FUTURE_SKEW);
        positiveOrZero(STATE_TTL);
        parallelism();
        int maxPar = positiveInt(MAX_PARALLELISM);
        if (maxPar > 32768) {
            throw new ConfigException("--max-parallelism must be at most 32768, got " + maxPar);
        }
        if (parallelism() != null && parallelism() > maxPar) {
            throw new ConfigException("--parallelism " + parallelism() + " exceeds --max-parallelism " + maxPar);
        }
        positiveInt(ORT_THREADS);
        positiveInt(SCORE_BATCH);
        for (String o : List.of(BOOTSTRAP_SERVERS.name(), INPUT_TOPIC.name(), ALERTS_TOPIC.name(),
                DEAD_LETTER_TOPIC.name(), GROUP_ID.name(), MODEL.name(), TRANSACTIONAL_ID_PREFIX.name())) {
            if (get(OPTIONS.get(o)).isBlank()) {
                throw new ConfigException("--" + o + " must not be empty");
            }
        }
        kafkaProperties();
    }

    public boolean help() {
        return values.containsKey(HELP.name());
    }

    public String get(Option o) {
        return values.getOrDefault(o.name(), o.defaultValue());
    }

    /** A copy with some options replaced; used by the demo and tests to point the same job elsewhere. */
    public JobConfig with(Option o, String value) {
        Map<String, String> v = new LinkedHashMap<>(values);
        v.put(o.name(), value);
        JobConfig c = new JobConfig(v, thresholds, kafkaProperties);
        c.validate();
        return c;
    }

    public String bootstrapServers() {
        return get(BOOTSTRAP_SERVERS);
    }

    public String inputTopic() {
        return get(INPUT_TOPIC);
    }

    public InputFormat inputFormat() {
        try {
            return InputFormat.parse(get(INPUT_FORMAT));
        } catch (IllegalArgumentException e) {
            throw new ConfigException("--" + INPUT_FORMAT.name() + ": " + e.getMessage());
        }
    }

    public String groupId() {
        return get(GROUP_ID);
    }

    public String startingOffsets() {
        return oneOf(STARTING_OFFSETS, "committed", "earliest", "latest");
    }

    public String offsetReset() {
        return oneOf(OFFSET_RESET, "earliest", "latest");
    }

    public boolean stopAtLatest() {
        return bool(STOP_AT_LATEST);
    }

    public String alertsTopic() {
        return get(ALERTS_TOPIC);
    }

    /** Empty when the scores topic is off. */
    public String scoresTopic() {
        return get(SCORES_TOPIC).trim();
    }

    public String deadLetterTopic() {
        return get(DEAD_LETTER_TOPIC);
    }

    public Path modelDir() {
        return Path.of(get(MODEL));
    }

    public boolean modelGiven() {
        return values.containsKey(MODEL.name());
    }

    /** Null when the spec's N applies. */
    public Integer maxEvents() {
        String v = get(MAX_EVENTS).trim();
        return v.isEmpty() ? null : positiveInt(MAX_EVENTS);
    }

    /** Null when the spec's H applies. */
    public Duration horizon() {
        String v = get(HORIZON).trim();
        return v.isEmpty() ? null : positive(HORIZON);
    }

    public Map<String, Double> thresholds() {
        return Collections.unmodifiableMap(thresholds);
    }

    public Duration cooldown() {
        return positiveOrZero(COOLDOWN);
    }

    public boolean exactlyOnce() {
        return delivery().equals("exactly-once");
    }

    private String delivery() {
        return oneOf(DELIVERY, "exactly-once", "at-least-once");
    }

    public String transactionalIdPrefix() {
        return get(TRANSACTIONAL_ID_PREFIX);
    }

    public Duration checkpointInterval() {
        return positive(CHECKPOINT_INTERVAL);
    }

    public Duration maxOutOfOrderness() {
        return positiveOrZero(MAX_OUT_OF_ORDERNESS);
    }

    public Duration idleness() {
        return positiveOrZero(IDLENESS);
    }

    public Duration maxFutureSkew() {
        return positiveOrZero(MAX_FUTURE_SKEW);
    }

    public Duration stateTtl() {
        return positiveOrZero(STATE_TTL);
    }

    /** Null when the cluster's default applies. */
    public Integer parallelism() {
        return get(PARALLELISM).trim().isEmpty() ? null : positiveInt(PARALLELISM);
    }

    public int maxParallelism() {
        return positiveInt(MAX_PARALLELISM);
    }

    public int ortThreads() {
        return positiveInt(ORT_THREADS);
    }

    public int scoreBatch() {
        return positiveInt(SCORE_BATCH);
    }

    /** The file's properties, overridden by {@code --kafka.*} flags. */
    public Properties kafkaProperties() {
        Properties p = new Properties();
        String file = get(KAFKA_PROPERTIES).trim();
        if (!file.isEmpty()) {
            try (InputStream in = Files.newInputStream(Path.of(file))) {
                p.load(in);
            } catch (IOException e) {
                throw new ConfigException("--" + KAFKA_PROPERTIES.name() + ": cannot read '" + file + "': " + e, e);
            }
        }
        p.putAll(kafkaProperties);
        return p;
    }

    private String oneOf(Option o, String... allowed) {
        String v = get(o).trim().toLowerCase(Locale.ROOT);
        for (String a : allowed) {
            if (a.equals(v)) {
                return a;
            }
        }
        throw new ConfigException("--" + o.name() + ": '" + get(o) + "' is not one of " + String.join(", ", allowed));
    }

    private boolean bool(Option o) {
        return oneOf(o, "true", "false").equals("true");
    }

    private int positiveInt(Option o) {
        String v = get(o).trim();
        try {
            int n = Integer.parseInt(v);
            if (n <= 0) {
                throw new ConfigException("--" + o.name() + " must be a positive integer, got " + v);
            }
            return n;
        } catch (NumberFormatException e) {
            throw new ConfigException("--" + o.name() + ": '" + v + "' is not an integer");
        }
    }

    private Duration positive(Option o) {
        Duration d = duration(o);
        if (d.isZero()) {
            throw new ConfigException("--" + o.name() + " must be positive, got " + get(o));
        }
        return d;
    }

    private Duration positiveOrZero(Option o) {
        return duration(o);
    }

    private static final Pattern DURATION = Pattern.compile("(\\d+)\\s*(ms|s|m|min|h|d)?");

    private Duration duration(Option o) {
        try {
            return parseDuration(get(o));
        } catch (IllegalArgumentException e) {
            throw new ConfigException("--" + o.name() + ": " + e.getMessage());
        }
    }

    /** Accepts 500ms, 30s, 10m, 24h, 2d, a bare number of milliseconds, or ISO-8601 (PT10M). */
    public static Duration parseDuration(String text) {
        try {
            Duration d = parseDurationText(text);
            d.toMillis(); // every consumer works in milliseconds, so the value must fit a long of them
            return d;
        } catch (ArithmeticException | NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is too large a duration");
        }
    }

    private static Duration parseDurationText(String text) {
        String v = text.trim().toLowerCase(Locale.ROOT);
        if (v.startsWith("pt") || v.startsWith("p")) {
            try {
                Duration d = Duration.parse(text.trim().toUpperCase(Locale.ROOT));
                if (d.isNegative()) {
                    throw new IllegalArgumentException("'" + text + "' is negative");
                }
                return d;
            } catch (java.time.format.DateTimeParseException e) {
                throw new IllegalArgumentException("'" + text + "' is not a duration (e.g. 500ms, 30s, 10m, 24h)");
            }
        }
        Matcher m = DURATION.matcher(v);
        if (!m.matches()) {
            throw new IllegalArgumentException("'" + text + "' is not a duration (e.g. 500ms, 30s, 10m, 24h)");
        }
        long n = Long.parseLong(m.group(1));
        String unit = m.group(2) == null ? "ms" : m.group(2);
        switch (unit) {
            case "ms":
                return Duration.ofMillis(n);
            case "s":
                return Duration.ofSeconds(n);
            case "m":
            case "min":
                return Duration.ofMinutes(n);
            case "h":
                return Duration.ofHours(n);
            default:
                return Duration.ofDays(n);
        }
    }

    private static double parseThreshold(String name, String value) {
        try {
            double d = Double.parseDouble(value.trim());
            if (!(d >= 0.0 && d <= 1.0)) {
                throw new ConfigException("--" + name + " must be within [0, 1], got " + value);
            }
            return d;
        } catch (NumberFormatException e) {
            throw new ConfigException("--" + name + ": '" + value + "' is not a number");
        }
    }

    /** Every option with its default and help, for --help. */
    public static String usage(String command) {
        StringBuilder sb = new StringBuilder();
        sb.append("Usage: ").append(command).append(" [--option value ...]\n\n");
        sb.append("Scores every click of a Kafka topic with a per-user sequence model and emits alerts.\n\n");
        sb.append("Options:\n");
        List<Option> all = new ArrayList<>(OPTIONS.values());
        for (Option o : all) {
            String name = o.name().equals(HELP.name()) ? "--help" : "--" + o.name() + " VALUE";
            sb.append(String.format("  %-34s %s", name, o.help()));
            if (!o.defaultValue().isEmpty()) {
                sb.append(" (default: ").append(o.defaultValue()).append(")");
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return "JobConfig" + values + (thresholds.isEmpty() ? "" : " thresholds=" + thresholds)
                + (kafkaProperties.isEmpty() ? "" : " kafka=" + kafkaProperties.keySet());
    }
}
