package dev.seqscore.offline;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.features.Lifetime;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.PackedWindow;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.job.SavepointManifest;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.job.SeqScorePipeline;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.features.Scoring;
import dev.seqscore.options.CommandLine;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
import dev.seqscore.options.Timestamps;
import dev.seqscore.scoring.ScoringOperator;
import dev.seqscore.scoring.UserState;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.core.fs.Path;
import org.apache.flink.runtime.state.StateBackend;
import org.apache.flink.runtime.state.hashmap.HashMapStateBackend;
import org.apache.flink.state.api.OperatorIdentifier;
import org.apache.flink.state.api.SavepointReader;
import org.apache.flink.state.api.functions.KeyedStateReaderFunction;
import org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend;
import org.apache.flink.streaming.api.environment.LocalStreamEnvironment;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.CloseableIterator;
import org.apache.flink.util.Collector;

/**
 * {@code bin/seqscore state --savepoint DIR [--user ID]}: an operator's look into the scorer's state in a savepoint or
 * retained checkpoint (a directory with {@code _metadata}), read with the State Processor API: how many users have
 * state, their value's bytes (quantiles), the model and window rule the values were written for, and one user's
 * window, lifetime record, cooldowns and timer. It is how a bootstrap is checked, one user's alerts debugged, and a
 * user's state shown to be gone. The last line printed is one JSON object.
 */
public final class StateInspector {
    public static final Option<String> SAVEPOINT = Option.string("savepoint", "",
            "savepoint or retained checkpoint directory (path or URI, the directory that holds _metadata) (required)");
    public static final Option<String> USER = Option.string("user", "",
            "also show this user's value: window (type, event time, item hash), lifetime record, cooldowns, timer");
    public static final OptionSet OPTIONS = new OptionSet()
            .add(SAVEPOINT, USER, OptionSet.HELP)
            .addAll("The job's options: --model (whose version the values' model tag is matched against), "
                    + "--state-backend (the backend that reads; default rocksdb, which reads canonical savepoints "
                    + "and RocksDB checkpoints), --state-ttl 0 for a job that ran without the TTL backstop",
                    JobConfig.OPTIONS);

    private StateInspector() {}

    /** One user's entry: its value's size and header, and for the user asked about, the value and timers. */
    public static class Entry {
        public String user;
        public int bytes;
        public long stateTag;
        public int maxEvents;
        public long horizonMs;
        public long timerAt;
        public int timers;
        public byte[] value;
        public long[] registeredTimers;

        public Entry() {}
    }

    /** What the inspection found. */
    public record Report(long users, long[] quantiles, long totalBytes, Map<String, Long> models,
            Map<String, Long> windowRules, Optional<SavepointManifest> manifest, Entry user) {}

    public static void main(String[] args) throws Exception {
        OptionValues options = new CommandLine(OPTIONS, usage()).check(JobConfig::of).parse(args);
        if (options == null) {
            return;
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        boolean standalone = env instanceof LocalStreamEnvironment;
        try {
            JobConfig config = JobConfig.of(options);
            String savepoint = options.get(SAVEPOINT);
            if (savepoint == null || savepoint.isBlank()) {
                throw new ConfigException("--" + SAVEPOINT.name() + " DIR is required");
            }
            String user = options.get(USER);
            ModelBundle bundle = SeqScoreJob.loadModel(config);
            PipelineSettings settings = PipelineSettings.from(config, bundle);
            Report r = inspect(env, savepoint.trim(), user == null || user.isBlank() ? null : user,
                    config.get(JobConfig.STATE_BACKEND), config.given(JobConfig.STATE_TTL)
                            && config.get(JobConfig.STATE_TTL).isZero());
            print(r, settings, savepoint.trim(), user, System.out);
        } catch (ConfigException | IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            if (standalone) {
                System.exit(CommandLine.USAGE_ERROR);
            }
            throw e;
        }
    }

    static String usage() {
        return OPTIONS.usage("bin/seqscore state --savepoint DIR [--user ID] [--model DIR]",
                "Reads the scorer's per-user state from a savepoint or retained checkpoint: users, state bytes per "
                        + "user, model version and window rule, and one user's window. Last line: JSON.");
    }

    /**
     * Reads every user's value of operator {@value SeqScorePipeline#UID_SCORE}.
     *
     * @param noTtl the values were written without the TTL backstop (--state-ttl 0); otherwise TTL-wrapped values are
     *              read first and plain ones if that fails
     */
    public static Report inspect(StreamExecutionEnvironment env, String savepoint, String user,
            JobConfig.StateBackend backendName, boolean noTtl) throws Exception {
        if (!new Path(savepoint, "_metadata").getFileSystem().exists(new Path(savepoint, "_metadata"))) {
            throw new ConfigException(savepoint + " holds no savepoint or checkpoint (no _metadata)");
        }
        env.setRuntimeMode(RuntimeExecutionMode.BATCH);
        StateBackend backend = backendName == JobConfig.StateBackend.HASHMAP
                ? new HashMapStateBackend() : new EmbeddedRocksDBStateBackend();
        List<Entry> entries;
        if (noTtl) {
            entries = read(env, savepoint, backend, user, false);
        } else {
            try {
                entries = read(env, savepoint, backend, user, true);
            } catch (Exception withTtl) {
                try {
                    entries = read(env, savepoint, backend, user, false);
                } catch (Exception plain) {
                    plain.addSuppressed(withTtl);
                    throw plain;
                }
            }
        }
        long[] sizes = entries.stream().mapToLong(e -> e.bytes).sorted().toArray();
        long total = Arrays.stream(sizes).sum();
        Map<String, Long> models = new TreeMap<>();
        Map<String, Long> rules = new TreeMap<>();
        Entry one = null;
        for (Entry e : entries) {
            models.merge(Long.toHexString(e.stateTag), 1L, Long::sum);
            rules.merge("N=" + e.maxEvents + " H=" + Duration.ofMillis(e.horizonMs), 1L, Long::sum);
            if (e.value != null) {
                one = e;
            }
        }
        return new Report(sizes.length, new long[] {quantile(sizes, 0.5), quantile(sizes, 0.9),
                quantile(sizes, 0.99), sizes.length == 0 ? 0 : sizes[sizes.length - 1]}, total, models, rules,
                SavepointManifest.read(savepoint), one);
    }

    private static List<Entry> read(StreamExecutionEnvironment env, String savepoint, StateBackend backend,
            String user, boolean ttl) throws Exception {
        SavepointReader reader = SavepointReader.read(env, savepoint, backend);
        List<Entry> out = new ArrayList<>();
        try (CloseableIterator<Entry> it = reader.readKeyedState(OperatorIdentifier.forUid(SeqScorePipeline.UID_SCORE),
                        new UserReader(ttl, user), Types.STRING, TypeInformation.of(Entry.class))
                .executeAndCollect("SeqScore state of " + savepoint)) {
            it.forEachRemaining(out::add);
        }
        return out;
    }

    /** Nearest rank. */
    static long quantile(long[] sorted, double q) {
        if (sorted.length == 0) {
            return 0;
        }
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    /** Reads each user's value; the one asked about comes whole. */
    static final class UserReader extends KeyedStateReaderFunction<String, Entry> {
        private static final long serialVersionUID = 1L;
        private final boolean ttl;
        private final String only;
        private transient ValueState<byte[]> state;

        UserReader(boolean ttl, String only) {
            this.ttl = ttl;
            this.only = only;
        }

        @Override
        public void open(OpenContext ctx) {
            // TTL wraps the serialized value (its duration does not); expired values are shown, not hidden.
            ValueStateDescriptor<byte[]> desc = ScoringOperator.userStateDescriptor(
                    ttl ? Duration.ofDays(1) : Duration.ZERO);
            if (ttl) {
                desc.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofDays(1))
                        .setUpdateType(StateTtlConfig.UpdateType.OnCreateAndWrite)
                        .setStateVisibility(StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp)
                        .build());
            }
            state = getRuntimeContext().getState(desc);
        }

        @Override
        public void readKey(String key, Context ctx, Collector<Entry> out) throws Exception {
            byte[] v = state.value();
            if (v == null) {
                return;
            }
            UserState.Header h = UserState.header(v);
            Entry e = new Entry();
            e.user = key;
            e.bytes = v.length;
            e.stateTag = h.stateTag();
            e.maxEvents = h.maxEvents();
            e.horizonMs = h.horizonMs();
            e.timerAt = h.timerAt();
            e.timers = ctx.registeredEventTimeTimers().size();
            if (key.equals(only)) {
                e.value = v;
                e.registeredTimers = ctx.registeredEventTimeTimers().stream().mapToLong(Long::longValue).sorted()
                        .toArray();
            }
            out.collect(e);
        }
    }

    static void print(Report r, PipelineSettings settings, String savepoint, String user, PrintStream out)
            throws Exception {
        ModelSpec spec = settings.spec();
        Map<String, String> tagNames = new LinkedHashMap<>();
        tagNames.put("0", "none (windowed model, or no event since a reset)");
        if (spec.streaming().isPresent()) {
            ModelSpec.Served inc = spec.served(Scoring.INCREMENTAL);
            tagNames.put(Long.toHexString(inc.versionTag()), inc.modelVersion() + " (the given bundle's streaming model)");
        }
        out.println("state of operator " + SeqScorePipeline.UID_SCORE + " in " + savepoint);
        r.manifest().ifPresent(m -> out.println("  written by bin/seqscore bootstrap at " + m.writtenAt() + " from "
                + m.source() + " up to T = " + m.until() + " (" + m.untilMs() + "): " + m.events() + " events, model "
                + m.modelVersion() + " (" + m.scoring() + "), max parallelism " + m.maxParallelism()));
        out.println("  users with state: " + r.users());
        out.println("  state bytes per user: p50 " + r.quantiles()[0] + ", p90 " + r.quantiles()[1] + ", p99 "
                + r.quantiles()[2] + ", max " + r.quantiles()[3] + "; total " + r.totalBytes());
        Map<String, Long> models = new LinkedHashMap<>();
        r.models().forEach((tag, n) -> models.put(tagNames.getOrDefault(tag, "tag " + tag
                + " (not the given bundle's model: such a user's model state starts again from zeros)"), n));
        out.println("  model state written by: " + models);
        out.println("  window rule: " + r.windowRules());
        if (user != null && !user.isBlank()) {
            if (r.user() == null) {
                out.println("  user " + user + ": no state (never seen, or forgotten: window past its horizon, "
                        + "model state past its TTL, no cooldown running)");
            } else {
                userLines(r.user(), settings, tagNames, out);
            }
        }
        Map<String, Long> versions = new LinkedHashMap<>();
        r.models().forEach((tag, n) -> versions.put(tag.equals("0") ? "none" : tagNames.containsKey(tag)
                ? tagNames.get(tag).split(" ")[0] : "tag:" + tag, n));
        out.println(json(r, versions, user));
    }

    private static void userLines(Entry e, PipelineSettings settings, Map<String, String> tagNames, PrintStream out) {
        ModelSpec spec = settings.spec();
        UserState.Header h = UserState.header(e.value);
        out.println("  user " + e.user + ": " + e.bytes + " bytes; cleanup timer at " + time(h.timerAt())
                + " (registered: " + Arrays.stream(e.registeredTimers).mapToObj(StateInspector::time).toList() + ")");
        out.println("    model state: " + tagNames.getOrDefault(Long.toHexString(h.stateTag()),
                "tag " + Long.toHexString(h.stateTag())) + ", " + h.stateSize() + " floats");
        List<String> types = spec.vocabulary();
        if (h.vocabulary() == types.size()) {
            Lifetime life = Lifetime.forSpec(spec);
            life.readFrom(e.value, UserState.HEADER_BYTES);
            StringBuilder counts = new StringBuilder();
            for (int t = 1; t <= types.size(); t++) {
                counts.append(t == 1 ? "" : ", ").append(types.get(t - 1)).append(' ').append(life.count(t));
            }
            out.println("    lifetime: " + counts + "; first " + time(life.first()) + ", last " + time(life.last())
                    + ", last buy " + (life.hasBuy() ? time(life.lastBuy()) : "none") + ", active days "
                    + life.activeDays());
        }
        List<String> alertTypes = settings.alertPolicy.alertTypes;
        StringBuilder alerts = new StringBuilder();
        for (int a = 0; a < h.alertTypes(); a++) {
            long t = h.lastAlert(e.value, a);
            alerts.append(a == 0 ? "" : ", ").append(a < alertTypes.size() ? alertTypes.get(a) : "type " + a)
                    .append(' ').append(t == UserState.NO_ALERT ? "never" : time(t));
        }
        out.println("    last alert (cooldown): " + alerts);
        PackedWindow w = new PackedWindow(Math.max(1, h.maxEvents()), h.horizonMs(), h.vocabulary());
        w.wrap(e.value, h.windowAt());
        out.println("    window (N = " + h.maxEvents() + ", H = " + Duration.ofMillis(h.horizonMs()) + "): " + w.size()
                + " events");
        for (int i = 0; i < w.size(); i++) {
            int type = w.typeId(i);
            out.println("      " + time(w.eventTime(i)) + "  " + (type >= 1 && type <= types.size()
                    ? types.get(type - 1) : "type " + type) + "  item " + Long.toHexString(w.itemHash(i))
                    + "  category " + Long.toHexString(w.categoryHash(i)));
        }
    }

    private static String time(long t) {
        return t == Long.MIN_VALUE ? "none" : Timestamps.format(t);
    }

    static String json(Report r, Map<String, Long> models, String user) throws Exception {
        Map<String, Object> j = new LinkedHashMap<>();
        j.put("users", r.users());
        j.put("bytes_p50", r.quantiles()[0]);
        j.put("bytes_p90", r.quantiles()[1]);
        j.put("bytes_p99", r.quantiles()[2]);
        j.put("bytes_max", r.quantiles()[3]);
        j.put("bytes_total", r.totalBytes());
        j.put("models", models);
        j.put("window_rules", r.windowRules());
        r.manifest().ifPresent(m -> j.put("until_ms", m.untilMs()));
        if (user != null && !user.isBlank()) {
            Map<String, Object> u = new LinkedHashMap<>();
            u.put("id", user);
            u.put("has_state", r.user() != null);
            if (r.user() != null) {
                u.put("bytes", r.user().bytes);
                PackedWindow w = new PackedWindow(Math.max(1, r.user().maxEvents), r.user().horizonMs,
                        UserState.header(r.user().value).vocabulary());
                w.wrap(r.user().value, UserState.header(r.user().value).windowAt());
                u.put("window_events", w.size());
                u.put("timer_at", r.user().timerAt);
                u.put("registered_timers", new TreeSet<>(Arrays.stream(r.user().registeredTimers).boxed().toList()));
            }
            j.put("user", u);
        }
        return new ObjectMapper().writeValueAsString(j);
    }
}
