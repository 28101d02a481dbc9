package dev.seqscore.offline;

import dev.seqscore.options.CommandLine;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
import dev.seqscore.options.Timestamps;
import dev.seqscore.avro.Alert;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.offline.files.DuplicateFilter;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.offline.files.FileRecord;
import dev.seqscore.events.InputRecord;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.reasons.Reason;
import dev.seqscore.scoring.ScoredEvent;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.lifecycle.ModelControl;
import dev.seqscore.lifecycle.StateCompatibility;
import dev.seqscore.job.SavepointCheck;
import dev.seqscore.job.SavepointManifest;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.job.SeqScorePipeline;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.CloseableIterator;

/**
 * Scores a bounded data file with exactly the operators and model of the live job, and writes one CSV row per
 * scored event. This is how a model is judged on history, and how the job is checked against training: its scores
 * must equal {@code model-export}'s offline scores for the same events.
 *
 * <p>Rows are fed in event-time order (stable on file order), the order the live job converges to once the
 * watermark has passed; so a file grouped by user, like the Taobao sample, is scored as it would have been live.
 */
public final class Backtest {
    public static final Option<Path> INPUT = Option.path("input", "", "the data file to score (required)");
    public static final Option<EventFileReader.Format> FORMAT = Option.of("format", "taobao|rees46|canonical", "",
            "the file's format; canonical is CSV with header, or JSONL (required)", EventFileReader.Format::parse);
    public static final Option<Path> OUTPUT = Option.path("output", "",
            "CSV: user_id,timestamp,event_type,item_id,<one column per model output> (required)");
    public static final Option<Path> ALERTS_OUTPUT = Option.path("alerts-output", "",
            "optional: the alerts the job would emit, one JSON object per line");
    public static final Option<Boolean> REASONS_COLUMN = Option.flag("reasons-column",
            "add a reasons column to the CSV: for each output that reached its threshold, its reasons as "
                    + "'output: group +drop (text); ...'");
    public static final Option<String> FROM_SAVEPOINT = Option.string("from-savepoint", "",
            "start the job from this savepoint or retained checkpoint (path or URI), e.g. one bin/seqscore bootstrap "
                    + "wrote: then --input should hold what came after its T (rows before T are skipped and counted, "
                    + "the savepoint already holds them); --state-backend applies");
    public static final Option<List<ModelControl>> MODEL_SWAP = Option.of("model-swap",
            "TIME=DIR[:shadow],...", "", "model changes at event times, as a running job would apply them from its "
                    + "--model-control-topic: TIME=DIR serves the bundle DIR from TIME on, TIME=DIR:shadow shadows "
                    + "it, TIME=promote and TIME=withdraw act on the candidate; comma-separated, in time order ("
                    + Timestamps.FORMS + ")", Backtest::modelSwaps);
    public static final OptionSet OPTIONS = new OptionSet()
            .add(INPUT, FORMAT, OUTPUT, ALERTS_OUTPUT, REASONS_COLUMN, FROM_SAVEPOINT, MODEL_SWAP, OptionSet.HELP)
            .addAll("The job's model, window and alert options apply too", JobConfig.OPTIONS);

    private Backtest() {}

    /** {@code TIME=DIR[:shadow|:serve]} or {@code TIME=promote|withdraw}, comma-separated. */
    static List<ModelControl> modelSwaps(String text) {
        List<ModelControl> out = new java.util.ArrayList<>();
        int i = 0;
        for (String entry : text.split(",")) {
            String e = entry.trim();
            if (e.isEmpty()) {
                continue;
            }
            int eq = e.indexOf('=');
            if (eq <= 0 || eq == e.length() - 1) {
                throw new IllegalArgumentException("'" + e + "' is not TIME=DIR[:shadow], TIME=promote or "
                        + "TIME=withdraw");
            }
            long at = Timestamps.parse(e.substring(0, eq));
            String what = e.substring(eq + 1);
            String id = "backtest-" + (i++);
            if (what.equals("promote") || what.equals("withdraw")) {
                out.add(ModelControl.of(id, ModelControl.Action.valueOf(what.toUpperCase(java.util.Locale.ROOT)),
                        at));
                continue;
            }
            ModelControl.Role role = ModelControl.Role.SERVE;
            for (ModelControl.Role r : ModelControl.Role.values()) {
                String suffix = ":" + ModelControl.name(r);
                if (what.endsWith(suffix)) {
                    role = r;
                    what = what.substring(0, what.length() - suffix.length());
                }
            }
            out.add(ModelControl.publish(id, role, what, at));
        }
        return out;
    }

    /** What a backtest produced. Rejected rows are the file's lines that were not even a click. */
    public record Result(
            List<FileRecord> rows,
            List<ScoredEvent> scores,
            List<Alert> alerts,
            List<DeadLetter> deadLetters,
            Map<String, Long> rejectedRows) {

        public long validRows() {
            return rows.stream().filter(FileRecord::isValid).count();
        }
    }

    public static void main(String[] args) throws Exception {
        OptionValues options = new CommandLine(OPTIONS, usage()).check(JobConfig::of).parseOrExit(args);
        if (options == null) {
            return;
        }
        JobConfig config = JobConfig.of(options);
        for (Option<?> required : List.of(INPUT, FORMAT, OUTPUT)) {
            if (options.get(required) == null) {
                fail("--" + required.name() + " is required");
            }
        }
        Path input = options.get(INPUT);
        if (!Files.isReadable(input)) {
            fail("--" + INPUT.name() + ": cannot read " + input);
        }
        ModelBundle bundle;
        PipelineSettings settings;
        try {
            bundle = SeqScoreJob.loadModel(config);
            List<ModelControl> swaps = options.get(MODEL_SWAP) == null ? List.of() : options.get(MODEL_SWAP);
            settings = PipelineSettings.from(config, bundle, swaps);
            for (ModelControl c : swaps) {
                if (c.action() == ModelControl.Action.PUBLISH) {
                    ModelBundle published = ModelBundle.locate(c.uri());
                    String refusal = StateCompatibility.refusal(published.spec(), bundle.spec(), settings.scoring,
                            settings.maxEvents, settings.horizonMs);
                    if (refusal != null) {
                        throw new IllegalArgumentException("--" + MODEL_SWAP.name() + " " + c.uri() + ": " + refusal);
                    }
                    published.validate();
                }
            }
        } catch (IllegalArgumentException e) {
            fail(e.getMessage());
            return;
        }

        List<FileRecord> rows;
        try (java.util.stream.Stream<FileRecord> lines = EventFileReader.lines(input, options.get(FORMAT))) {
            rows = lines.toList();
        }
        Configuration job = new Configuration();
        String savepoint = options.get(FROM_SAVEPOINT);
        if (savepoint != null && !savepoint.isBlank()) {
            try {
                SavepointCheck.check(savepoint, settings, System.err);
            } catch (ConfigException e) {
                fail(e.getMessage());
            }
            job = fromSavepoint(savepoint, config.get(JobConfig.STATE_BACKEND));
            long until = SavepointManifest.read(savepoint).map(SavepointManifest::untilMs).orElse(Long.MIN_VALUE);
            List<FileRecord> after = rows.stream().filter(row -> !row.isValid()
                    || row.event().getEventTime().toEpochMilli() >= until).toList();
            if (after.size() < rows.size()) {
                System.err.println("backtest: skipped " + (rows.size() - after.size()) + " rows before the savepoint's"
                        + " T " + Timestamps.format(until) + ": the savepoint already holds them");
            }
            rows = after;
        }
        Result r;
        try (LocalFlink flink = LocalFlink.start(Runtime.getRuntime().availableProcessors())) {
            r = run(flink.environment(Runtime.getRuntime().availableProcessors()), rows,
                    input.getFileName().toString(), settings, job);
        }
        writeCsv(r, settings, options.get(OUTPUT), options.get(REASONS_COLUMN));
        if (options.get(ALERTS_OUTPUT) != null) {
            writeAlerts(r, options.get(ALERTS_OUTPUT));
        }
        System.err.println(summary(r));
    }

    private static void fail(String message) {
        System.err.println("error: " + message);
        System.err.println();
        System.err.println(usage());
        System.exit(2);
    }

    static String usage() {
        return OPTIONS.usage("bin/seqscore backtest --input FILE --format FORMAT --output scores.csv [options]",
                "Scores a data file with the job's operators and model, in event-time order.");
    }

    /**
     * Runs the pipeline over the rows on {@code env} and collects everything it emits. Exact duplicates are dropped
     * first, over the whole file, as training drops them (the cleaning contract); they count as rejected rows.
     */
    public static Result run(StreamExecutionEnvironment env, List<FileRecord> fileRows, String source,
            PipelineSettings settings) throws Exception {
        return run(env, fileRows, source, settings, new Configuration());
    }

    /**
     * The job's configuration to start from a savepoint (or retained checkpoint), optionally with a state backend;
     * for {@link #run(StreamExecutionEnvironment, List, String, PipelineSettings, Configuration)}.
     */
    public static Configuration fromSavepoint(String savepoint, JobConfig.StateBackend backend) {
        Configuration c = new Configuration();
        c.set(StateRecoveryOptions.SAVEPOINT_PATH, savepoint);
        if (backend != null) {
            c.set(StateBackendOptions.STATE_BACKEND, Option.cliName(backend));
        }
        return c;
    }

    /**
     * As {@link #run(StreamExecutionEnvironment, List, String, PipelineSettings)}, with options for the job (e.g.
     * {@link #fromSavepoint}) applied to {@code env} first.
     */
    public static Result run(StreamExecutionEnvironment env, List<FileRecord> fileRows, String source,
            PipelineSettings settings, Configuration jobOptions) throws Exception {
        env.configure(jobOptions);
        List<FileRecord> rows = DuplicateFilter.apply(fileRows);
        List<InputRecord> inputs = new ArrayList<>();
        Map<String, Long> rejected = new TreeMap<>();
        for (FileRecord row : rows) {
            if (row.isValid()) {
                inputs.add(InputRecord.decoded(row.event(), source, 0, row.lineNumber(), null));
            } else {
                rejected.merge(row.rejectionKind(), 1L, Long::sum);
            }
        }
        if (inputs.isEmpty()) {
            // Nothing to score (e.g. the wrong --format): Flink cannot read an empty collection, and need not.
            return new Result(rows, List.of(), List.of(), List.of(), rejected);
        }
        inputs.sort(Comparator.comparingLong((InputRecord r) -> r.eventTime == null ? Long.MIN_VALUE : r.eventTime)
                .thenComparingLong(r -> r.sourceOffset));

        // One reader keeps the sorted order that the watermark relies on.
        DataStream<InputRecord> clicks = env
                .fromData(inputs, TypeInformation.of(InputRecord.class))
                .name("File clicks").uid("file-clicks-source")
                .setParallelism(1)
                .assignTimestampsAndWatermarks(SeqScorePipeline.watermarks(settings))
                .name("Event time").uid("file-clicks-watermarks")
                .setParallelism(1);
        SeqScorePipeline.Outputs out = SeqScorePipeline.build(clicks, settings);
        CloseableIterator<ScoredEvent> scores = out.scores().collectAsync();
        CloseableIterator<Alert> alerts = out.alerts().collectAsync();
        CloseableIterator<DeadLetter> deadLetters = out.deadLetters().collectAsync();
        JobClient job = env.executeAsync("SeqScore backtest of " + source);
        // Drained together: a full collect buffer on one output would back-pressure the chained operators
        // and stall the others.
        CompletableFuture<List<ScoredEvent>> s = CompletableFuture.supplyAsync(() -> drain(scores));
        CompletableFuture<List<Alert>> a = CompletableFuture.supplyAsync(() -> drain(alerts));
        CompletableFuture<List<DeadLetter>> d = CompletableFuture.supplyAsync(() -> drain(deadLetters));
        try {
            Result r = new Result(rows, s.get(), a.get(), d.get(), rejected);
            job.getJobExecutionResult().get();
            return r;
        } catch (ExecutionException e) {
            throw new IllegalStateException("backtest of " + source + " failed", e.getCause());
        }
    }

    private static <T> List<T> drain(CloseableIterator<T> it) {
        List<T> all = new ArrayList<>();
        try (it) {
            it.forEachRemaining(all::add);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        return all;
    }

    /** One row per scored event, in file order; timestamps exactly as the file wrote them. */
    public static void writeCsv(Result r, PipelineSettings settings, Path output) throws IOException {
        writeCsv(r, settings, output, false);
    }

    /** As {@link #writeCsv(Result, PipelineSettings, Path)}, with a last column of reasons if asked. */
    public static void writeCsv(Result r, PipelineSettings settings, Path output, boolean reasonsColumn)
            throws IOException {
        Map<Long, String> timestamps = new HashMap<>();
        for (FileRecord row : r.rows()) {
            timestamps.put(row.lineNumber(), row.rawTimestamp());
        }
        List<ScoredEvent> ordered = new ArrayList<>(r.scores());
        ordered.sort(Comparator.comparingLong(e -> e.sourceOffset));
        try (BufferedWriter w = Files.newBufferedWriter(output, StandardCharsets.UTF_8)) {
            StringBuilder header = new StringBuilder("user_id,timestamp,event_type,item_id");
            settings.outputNames().forEach(o -> header.append(',').append(o));
            if (reasonsColumn) {
                header.append(",reasons");
            }
            // With model changes, which model scored each row; without, the columns stay as they always were.
            boolean versions = !settings.modelSchedule.isEmpty();
            if (versions) {
                header.append(",model_version");
            }
            w.write(header.toString());
            w.newLine();
            for (ScoredEvent e : ordered) {
                StringBuilder line = new StringBuilder();
                line.append(csv(e.userId)).append(',').append(csv(timestamps.get(e.sourceOffset))).append(',')
                        .append(csv(e.eventType)).append(',').append(csv(e.itemId));
                for (float score : e.scores) {
                    line.append(',').append(score);
                }
                if (reasonsColumn) {
                    line.append(',').append(csv(reasonsCell(e, settings)));
                }
                if (versions) {
                    line.append(',').append(csv(e.modelVersion));
                }
                w.write(line.toString());
                w.newLine();
            }
        }
    }

    /** The reasons of every output whose score reached its alert threshold; empty when none did. */
    static String reasonsCell(ScoredEvent e, PipelineSettings settings) {
        if (e.reasons == null) {
            return "";
        }
        StringBuilder cell = new StringBuilder();
        List<AlertPolicy.Rule> rules = settings.alertPolicy.rules;
        for (int o = 0; o < rules.size(); o++) {
            if (!rules.get(o).crossedBy(e.scores[o])) {
                continue;
            }
            cell.append(cell.length() == 0 ? "" : " | ").append(rules.get(o).output).append(": ");
            String sep = "";
            for (Reason reason : e.reasons) {
                if (reason.output == o) {
                    cell.append(sep).append(reason);
                    sep = "; ";
                }
            }
        }
        return cell.toString();
    }

    private static void writeAlerts(Result r, Path output) throws IOException {
        try (BufferedWriter w = Files.newBufferedWriter(output, StandardCharsets.UTF_8)) {
            for (Alert a : r.alerts()) {
                w.write(a.toString());
                w.newLine();
            }
        }
    }

    private static String csv(String s) {
        if (s == null) {
            return "";
        }
        return s.contains(",") || s.contains("\"") ? '"' + s.replace("\"", "\"\"") + '"' : s;
    }

    public static String summary(Result r) {
        Map<String, Long> alertsByType = new TreeMap<>();
        r.alerts().forEach(a -> alertsByType.merge(a.getAlertType(), 1L, Long::sum));
        Map<String, Long> dlqByReason = new TreeMap<>();
        r.deadLetters().forEach(d -> dlqByReason.merge(d.getReason(), 1L, Long::sum));
        return "backtest: " + r.rows().size() + " rows, " + r.validRows() + " events, " + r.scores().size()
                + " scored\n"
                + "  rejected rows: " + (r.rejectedRows().isEmpty() ? "none" : r.rejectedRows()) + "\n"
                + "  dead letters:  " + (dlqByReason.isEmpty() ? "none" : dlqByReason) + "\n"
                + "  alerts:        " + (alertsByType.isEmpty() ? "none" : alertsByType
                        + ", " + r.alerts().stream().filter(a -> !a.getReasons().isEmpty()).count() + " with reasons");
    }
}
