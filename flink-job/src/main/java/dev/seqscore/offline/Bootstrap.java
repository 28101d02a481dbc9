package dev.seqscore.offline;

import dev.seqscore.events.DeadLetterReason;
import dev.seqscore.events.EventValidator;
import dev.seqscore.events.InputRecord;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.job.SavepointManifest;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.job.SeqScorePipeline;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.options.CommandLine;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
import dev.seqscore.options.Timestamps;
import dev.seqscore.scoring.ScoringSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.core.execution.DetachedJobExecutionResult;
import org.apache.flink.core.fs.FileStatus;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.fs.Path;
import org.apache.flink.runtime.state.StateBackend;
import org.apache.flink.runtime.state.hashmap.HashMapStateBackend;
import org.apache.flink.state.api.OperatorIdentifier;
import org.apache.flink.state.api.OperatorTransformation;
import org.apache.flink.state.api.SavepointWriter;
import org.apache.flink.state.api.StateBootstrapTransformation;
import org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.LocalStreamEnvironment;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.SerializedThrowable;

/**
 * {@code bin/seqscore bootstrap} (and {@code flink run -c dev.seqscore.offline.Bootstrap} on a cluster): writes a
 * savepoint whose scorer state is what the job would hold had it consumed a history live up to a cut-off time T, so
 * that a new deployment starts with warm windows. See {@link BootstrapScorer} for how the state is computed, and
 * docs/design.md, "Warm start".
 *
 * <p>One bounded BATCH-mode job: the history (a file, or a topic between two timestamps) → the job's validation →
 * keyBy(user) → {@link BootstrapScorer} (the job's {@code UserStep}, model and batching) → keyBy(user) →
 * {@link UserStateWriter} ({@code SavepointWriter}, operator uid {@value SeqScorePipeline#UID_SCORE}, the job's max
 * parallelism). Then {@value SavepointManifest#FILE} beside the savepoint's {@code _metadata}.
 */
public final class Bootstrap {
    public static final Option<String> INPUT = Option.string("input", "",
            "history file (a path, or a URI Flink reads: file://, s3://, hdfs://); or use --topic");
    public static final Option<EventFileReader.Format> FORMAT = Option.of("format", "taobao|rees46|canonical", "",
            "the file's format, read with the backtest's cleaning contract (required with --input)",
            EventFileReader.Format::parse);
    public static final Option<String> TOPIC = Option.string("topic", "",
            "history from this Kafka topic (--bootstrap-servers, --input-format, --kafka-properties apply) instead "
                    + "of a file: the records from --from up to --until by Kafka record timestamp");
    public static final Option<Long> FROM = Timestamps.option("from",
            "with --topic: the first record timestamp to read; empty = the topic's beginning");
    public static final Option<Long> UNTIL = Timestamps.option("until",
            "T, the cut-off: the history is what came before it (file rows by event time, topic records by Kafka "
                    + "timestamp) and the job reads Kafka from T on; empty = 1 ms after a file's newest event "
                    + "(required with --topic)");
    public static final Option<String> SAVEPOINT = Option.string("savepoint", "",
            "directory to write the savepoint to (path or URI; must not exist or be empty) (required)");
    public static final OptionSet OPTIONS = new OptionSet()
            .add(INPUT, FORMAT, TOPIC, FROM, UNTIL, SAVEPOINT, OptionSet.HELP)
            .addAll("The job's options: give the bootstrap the model, window, alert and --max-parallelism options "
                    + "the job will run with (--state-backend: the backend that writes, default rocksdb; "
                    + "--parallelism: the bootstrap's)", JobConfig.OPTIONS);

    private Bootstrap() {}

    /** What to bootstrap from and where to. Exactly one of {@code file} and {@code topic}. */
    public record Request(String file, EventFileReader.Format format, String topic, Long fromMs, Long untilMs,
            String savepoint) {
        public Request {
            Objects.requireNonNull(savepoint, "savepoint");
        }

        public static Request file(String file, EventFileReader.Format format, Long untilMs, String savepoint) {
            return new Request(file, format, null, null, untilMs, savepoint);
        }

        public static Request topic(String topic, Long fromMs, long untilMs, String savepoint) {
            return new Request(null, null, topic, fromMs, untilMs, savepoint);
        }

        String source() {
            return file != null ? "file:" + file + " (" + format.cliName() + ")" : "kafka:" + topic;
        }
    }

    /** What a bootstrap wrote. */
    public record Result(SavepointManifest manifest, long rows, long rejectedRows, Map<String, Long> deadLetters,
            long duplicates, long usersGone, long valueBytes, double seconds) {

        public long users() {
            return manifest.users();
        }

        public long events() {
            return manifest.events();
        }
    }

    public static void main(String[] args) throws Exception {
        OptionValues options = new CommandLine(OPTIONS, usage()).check(JobConfig::of).parse(args);
        if (options == null) {
            return;
        }
        JobConfig config = JobConfig.of(options);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        // A Flink client (flink run, or a JobManager for REST submissions) runs this main too: never exit there.
        boolean standalone = env instanceof LocalStreamEnvironment;
        Result r;
        try {
            Request request = request(options);
            r = run(env, config, request, System.err);
            System.out.println("bootstrap: " + r.users() + " users with state at " + Timestamps.format(
                    r.manifest().untilMs()) + " from " + r.events() + " events (" + r.rows() + " rows, "
                    + r.rejectedRows() + " rejected by the cleaning contract, dead letters " + r.deadLetters()
                    + ", duplicates " + r.duplicates() + ", users whose state is gone by T " + r.usersGone() + ") in "
                    + String.format(java.util.Locale.ROOT, "%.1f s", r.seconds()));
            System.out.println("savepoint: " + request.savepoint() + " (check it: bin/seqscore state --savepoint "
                    + request.savepoint() + ")");
            System.out.println("start the job from it, reading Kafka from T on:");
            System.out.println("  " + flinkRunLine(config, r.manifest(), request.savepoint()));
            System.out.println(summaryJson(r, request.savepoint()));
        } catch (ConfigException | IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            if (standalone) {
                System.exit(CommandLine.USAGE_ERROR);
            }
            throw e;
        }
    }

    static String usage() {
        return OPTIONS.usage("bin/seqscore bootstrap --input FILE --format FORMAT --savepoint DIR [--until TIME] "
                        + "[job options]\n       bin/seqscore bootstrap --topic TOPIC --bootstrap-servers H:P "
                        + "[--from TIME] --until TIME --savepoint DIR [job options]\n"
                        + "       flink run -c dev.seqscore.offline.Bootstrap seqscore-flink-job-*-shaded.jar ...",
                "Writes a savepoint whose per-user scorer state (windows, lifetime records, model state, alert "
                        + "cooldowns, cleanup timers) is what the job would hold had it consumed the history live "
                        + "up to T. Then: flink run -s DIR ... --starting-offsets timestamp:T (printed at the end).");
    }

    static Request request(OptionValues o) {
        String input = blankToNull(o.get(INPUT));
        String topic = blankToNull(o.get(TOPIC));
        String savepoint = blankToNull(o.get(SAVEPOINT));
        if (savepoint == null) {
            throw new ConfigException("--" + SAVEPOINT.name() + " DIR is required");
        }
        if ((input == null) == (topic == null)) {
            throw new ConfigException("give the history as --" + INPUT.name() + " FILE --" + FORMAT.name()
                    + " FORMAT, or as --" + TOPIC.name() + " TOPIC --" + UNTIL.name() + " TIME (one of them)");
        }
        if (input != null) {
            if (o.get(FORMAT) == null) {
                throw new ConfigException("--" + FORMAT.name() + " is required with --" + INPUT.name());
            }
            if (o.get(FROM) != null) {
                throw new ConfigException("--" + FROM.name() + " applies to --" + TOPIC.name()
                        + " only; a file's history is all of it before --" + UNTIL.name());
            }
            return Request.file(input, o.get(FORMAT), o.get(UNTIL), savepoint);
        }
        if (o.get(UNTIL) == null) {
            throw new ConfigException("--" + UNTIL.name() + " TIME is required with --" + TOPIC.name()
                    + ": the job will read the topic from there on");
        }
        if (o.get(FROM) != null && o.get(FROM) >= o.get(UNTIL)) {
            throw new ConfigException("--" + FROM.name() + " must be before --" + UNTIL.name());
        }
        return Request.topic(topic, o.get(FROM), o.get(UNTIL), savepoint);
    }

    /**
     * Writes the savepoint on {@code env} (switched to BATCH mode) and its manifest; progress and warnings go to
     * {@code log}.
     *
     * @throws ConfigException for a request that cannot be met: an existing savepoint, an empty history, a history
     *     that ends after T, no user with state at T
     */
    public static Result run(StreamExecutionEnvironment env, JobConfig config, Request request, PrintStream log)
            throws Exception {
        long started = System.nanoTime();
        ModelBundle bundle;
        PipelineSettings settings;
        try {
            bundle = SeqScoreJob.loadModel(config);
            settings = PipelineSettings.from(config, bundle);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage(), e);
        }
        checkTarget(request.savepoint());

        long untilMs;
        if (request.untilMs() != null) {
            untilMs = request.untilMs();
        } else {
            log.println("reading " + request.file() + " once for its newest event (give --until to skip this)...");
            FileHistory.Extent extent = FileHistory.extent(request.file(), request.format());
            if (extent.valid() == 0) {
                throw new ConfigException("empty history: " + request.file() + " has no valid "
                        + request.format().cliName() + " row (" + extent.rows() + " rows read); check --format");
            }
            untilMs = extent.newestMs() + 1;
            log.println("--until " + Timestamps.format(untilMs) + " (" + untilMs + "): 1 ms after the newest event");
        }
        if (request.topic() != null) {
            Map<Integer, Long> counts = TopicHistory.count(config, request.topic(), request.fromMs(), untilMs);
            long records = counts.values().stream().mapToLong(Long::longValue).sum();
            if (records == 0) {
                throw new ConfigException("empty history: topic " + request.topic() + " has no record "
                        + (request.fromMs() == null ? "" : "from " + Timestamps.format(request.fromMs()) + " ")
                        + "before " + Timestamps.format(untilMs) + " (by Kafka record timestamp)");
            }
            log.println("reading " + records + " records of " + request.topic() + " (per partition " + counts + ")");
        }

        env.setRuntimeMode(RuntimeExecutionMode.BATCH);
        if (config.get(JobConfig.PARALLELISM) != null) {
            env.setParallelism(config.get(JobConfig.PARALLELISM));
        }
        ScoringSettings scoring = settings.scoringSettings();
        DataStream<InputRecord> history;
        if (request.file() != null) {
            history = env.fromData(request.file())
                    .name("History file").uid("bootstrap-file")
                    .setParallelism(1)
                    .flatMap(new FileHistory(request.file(), request.format(), untilMs))
                    .returns(TypeInformation.of(InputRecord.class))
                    .name("Read " + new Path(request.file()).getName()).uid("bootstrap-file-reader")
                    .setParallelism(1);
        } else {
            history = env.fromSource(TopicHistory.source(config, request.topic(), request.fromMs(), untilMs),
                    WatermarkStrategy.noWatermarks(), "History topic " + request.topic()).uid("bootstrap-topic");
        }
        DataStream<UserValue> values = history
                .process(new Validate(settings.validator())).name("Validate events").uid("bootstrap-validate")
                .keyBy(r -> r.userId, Types.STRING)
                .transform("Bootstrap user state", TypeInformation.of(UserValue.class),
                        new BootstrapScorer(scoring, untilMs, request.file() != null))
                .uid("bootstrap-user-state")
                .setMaxParallelism(settings.maxParallelism);
        StateBootstrapTransformation<UserValue> users = OperatorTransformation.bootstrapWith(values)
                .keyBy(v -> v.user, Types.STRING)
                .transform(new UserStateWriter(scoring.effectiveStateTtl()));
        JobConfig.StateBackend backendName = config.get(JobConfig.STATE_BACKEND) == null
                ? JobConfig.StateBackend.ROCKSDB : config.get(JobConfig.STATE_BACKEND);
        StateBackend backend = backendName == JobConfig.StateBackend.ROCKSDB
                ? new EmbeddedRocksDBStateBackend() : new HashMapStateBackend();
        SavepointWriter.newSavepoint(env, backend, settings.maxParallelism)
                .withOperator(OperatorIdentifier.forUid(SeqScorePipeline.UID_SCORE), users)
                .write(request.savepoint());

        JobExecutionResult done;
        try {
            done = env.execute("SeqScore bootstrap from " + request.source() + " up to "
                    + Timestamps.format(untilMs));
        } catch (Exception e) {
            deleteQuietly(request.savepoint());
            // The job's own refusals (a row after T, an empty file) come back as the job's failure cause.
            for (Throwable t = e; t != null; t = t.getCause()) {
                if (t instanceof ConfigException || (t instanceof SerializedThrowable st
                        && ConfigException.class.getName().equals(st.getOriginalErrorClassName()))) {
                    throw new ConfigException(t.getMessage(), e);
                }
            }
            throw e;
        }
        if (done instanceof DetachedJobExecutionResult) {
            throw new ConfigException("the bootstrap ran detached (flink run -d): it must wait for its job to count "
                    + "the users and write " + SavepointManifest.FILE + "; run it without -d");
        }
        long userCount = counter(done, BootstrapScorer.USERS);
        long events = counter(done, BootstrapScorer.EVENTS);
        Map<String, Long> deadLetters = new LinkedHashMap<>();
        for (DeadLetterReason reason : DeadLetterReason.values()) {
            long n = counter(done, Validate.PREFIX + reason.name());
            if (n > 0) {
                deadLetters.put(reason.name(), n);
            }
        }
        if (userCount == 0) {
            deleteQuietly(request.savepoint());
            throw new ConfigException("no user has state at " + Timestamps.format(untilMs) + ": " + events
                    + " events scored, " + counter(done, BootstrapScorer.USERS_GONE) + " users whose state the job "
                    + "would have forgotten by then (window horizon " + Duration.ofMillis(settings.horizonMs)
                    + ", model-state TTL " + settings.modelStateTtl + "), dead letters " + deadLetters
                    + "; nothing to start from");
        }
        SavepointManifest manifest = new SavepointManifest(SavepointManifest.FORMAT, Instant.now().toString(),
                settings.served.modelVersion(), Option.cliName(settings.scoring), settings.maxEvents,
                settings.horizonMs, settings.maxParallelism, untilMs, Timestamps.format(untilMs), request.source(),
                events, userCount, Option.cliName(backendName), scoring.effectiveStateTtl().toMillis());
        manifest.write(request.savepoint());
        long rows = request.file() != null ? counter(done, FileHistory.ROWS) : counter(done, Validate.RECEIVED);
        return new Result(manifest, rows, counter(done, FileHistory.REJECTED), deadLetters,
                counter(done, BootstrapScorer.DUPLICATES), counter(done, BootstrapScorer.USERS_GONE),
                counter(done, BootstrapScorer.VALUE_BYTES), (System.nanoTime() - started) / 1e9);
    }

    /** The command that starts the job from a bootstrapped savepoint with the same model, window and alert flags. */
    public static String flinkRunLine(JobConfig c, SavepointManifest m, String savepoint) {
        StringBuilder b = new StringBuilder("flink run -s ").append(savepoint)
                .append(" seqscore-flink-job-0.1.0-SNAPSHOT-slim.jar --starting-offsets timestamp:")
                .append(m.untilMs()).append(" --max-parallelism ").append(m.maxParallelism())
                .append(" --scoring ").append(m.scoring());
        for (Option<?> o : List.of(JobConfig.MODEL, JobConfig.MAX_EVENTS, JobConfig.HORIZON, JobConfig.COOLDOWN,
                JobConfig.MODEL_STATE_TTL, JobConfig.STATE_TTL)) {
            if (c.given(o)) {
                Object v = c.get(o);
                b.append(" --").append(o.name()).append(' ')
                        .append(v instanceof Duration d ? d.toMillis() + "ms" : v);
            }
        }
        c.get(JobConfig.THRESHOLD).forEach((k, v) -> b.append(" --threshold.").append(k).append(' ').append(v));
        c.get(JobConfig.ALERT_RATE).forEach((k, v) -> b.append(" --alert-rate.").append(k).append(' ').append(v));
        return b.append(" [your Kafka, checkpoint and state-backend flags]").toString();
    }

    static String summaryJson(Result r, String savepoint) {
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("users", r.users());
        j.put("events", r.events());
        j.put("rows", r.rows());
        j.put("until_ms", r.manifest().untilMs());
        j.put("seconds", Math.round(r.seconds() * 10) / 10.0);
        j.put("events_per_s", Math.round(r.events() / Math.max(r.seconds(), 1e-9)));
        j.put("value_bytes_per_user", r.users() == 0 ? 0 : r.valueBytes() / r.users());
        j.put("savepoint", savepoint);
        try {
            return new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(j);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static long counter(JobExecutionResult r, String name) {
        Object v = r.getAccumulatorResult(name);
        return v == null ? 0 : ((Number) v).longValue();
    }

    /** Refuses a directory that already holds a savepoint (or anything else): a bootstrap never overwrites. */
    static void checkTarget(String savepoint) throws IOException {
        Path dir = new Path(savepoint);
        FileSystem fs = dir.getFileSystem();
        if (!fs.exists(dir)) {
            return;
        }
        if (fs.exists(new Path(dir, "_metadata"))) {
            throw new ConfigException("--" + SAVEPOINT.name() + " " + savepoint + " already holds a savepoint "
                    + "(_metadata): a bootstrap never overwrites one; give a new directory, or delete that one");
        }
        FileStatus[] entries = fs.listStatus(dir);
        if (entries != null && entries.length > 0) {
            throw new ConfigException("--" + SAVEPOINT.name() + " " + savepoint + " is not empty (" + entries.length
                    + " entries): give a new or empty directory");
        }
    }

    private static void deleteQuietly(String savepoint) {
        try {
            Path dir = new Path(savepoint);
            dir.getFileSystem().delete(dir, true);
        } catch (IOException | RuntimeException e) {
            // Best effort: the error that led here matters more.
        }
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s.trim();
    }

    /** The job's validation (the same {@link EventValidator}), counting what it drops by reason. */
    static final class Validate extends ProcessFunction<InputRecord, InputRecord> {
        private static final long serialVersionUID = 1L;
        static final String PREFIX = "bootstrap-dead-letters-";
        static final String RECEIVED = "bootstrap-records";
        private final EventValidator validator;
        private transient Map<DeadLetterReason, LongCounter> counters;
        private transient LongCounter received;

        Validate(EventValidator validator) {
            this.validator = validator;
        }

        @Override
        public void open(OpenContext ctx) {
            counters = new EnumMap<>(DeadLetterReason.class);
            for (DeadLetterReason r : DeadLetterReason.values()) {
                LongCounter c = new LongCounter();
                getRuntimeContext().addAccumulator(PREFIX + r.name(), c);
                counters.put(r, c);
            }
            received = new LongCounter();
            getRuntimeContext().addAccumulator(RECEIVED, received);
        }

        @Override
        public void processElement(InputRecord r, Context ctx, Collector<InputRecord> out) {
            received.add(1);
            EventValidator.Verdict v = validator.check(r);
            if (v.ok()) {
                out.collect(r);
            } else {
                counters.get(v.reason).add(1);
            }
        }
    }
}
