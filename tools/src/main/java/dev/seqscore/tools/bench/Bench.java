package dev.seqscore.tools.bench;

import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

import dev.seqscore.job.JobConfig;
import dev.seqscore.kafka.EmbeddedKafka;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.options.CommandLine;
import dev.seqscore.features.Scoring;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;

/**
 * {@code bin/seqscore bench}: runs {@link ScoringBenchmark} with JMH and prints the encoder's and ONNX Runtime's
 * cost per event at batch sizes 1 and 64.
 */
public final class Bench {
    private Bench() {}

    static final Option<String> BUNDLE = Option.string("bundle", "models/default",
            "model bundle directory with golden.jsonl (its golden windows are the benchmark's input)");
    static final Option<String> BATCH = Option.string("batch", "1,64", "batch sizes, comma-separated");
    static final Option<String> THREADS = Option.string("threads", "1", "ONNX Runtime intra-op threads, comma-separated");
    static final Option<Boolean> QUICK = Option.flag("quick",
            "shorter runs (under 10 minutes on 2 cores): JMH 1 s iterations, 2 warm-up + 3 measured; smaller pipeline runs");
    static final Option<Boolean> SMOKE = Option.flag("smoke",
            "under 2 minutes: no JMH, tiny pipeline runs; checks that every figure can be produced, not what it is");
    static final Option<Boolean> JMH_ONLY = Option.flag("jmh-only", "only the JMH encoder and scorer figures");
    static final Option<Boolean> STATE_LAYOUTS = Option.flag("state-layouts",
            "only compare window state layouts (ValueState ring buffer, ListState, MapState) on heap and RocksDB: "
                    + "events/s with full windows and savepoint bytes per user (users: smoke 2k, quick 20k, full 100k), "
                    + "then the job's own state per user on RocksDB");
    static final Option<Boolean> LATENCY_ONLY = Option.flag("latency-only",
            "only the end-to-end maximum and the latency figures, for both models");
    static final Option<Path> KV_CACHE_PROBE = Option.path("kv-cache-probe", "",
            "only time the bundle's step graph against the K/V-cache probe graph in this directory "
                    + "(probe-kvcache.onnx, made by: cd model-export && python3 -m seqscore_export.kv_probe --out DIR), "
                    + "JMH, batch 1 and 64");
    static final Option<Boolean> SHADOW = Option.flag("shadow",
            "only the cost of shadow scoring: the operator benchmark (RocksDB, batch 64, parallelism 1) without and "
                    + "with a shadow candidate (a copy of the bundle under another model_version: the same weights), "
                    + "runs alternating, per scoring path; prints us/event for both, shadow_cost_ratio (with / "
                    + "without) and the extra cost in model calls (raw ONNX Runtime, batch 64)");
    static final OptionSet OPTIONS = new OptionSet().add(BUNDLE, BATCH, THREADS, QUICK, SMOKE, JMH_ONLY, STATE_LAYOUTS,
            KV_CACHE_PROBE, LATENCY_ONLY, SHADOW,
            OptionSet.HELP);

    public static void main(String[] args) throws Exception {
        OptionValues v = new CommandLine(OPTIONS, OPTIONS.usage("bin/seqscore bench [options]",
                "JMH (1 fork) over the bundle's golden windows: FeatureEncoder and OnnxScorer cost per event."))
                .usageOnError(false).parseOrExit(args);
        if (v == null) {
            return;
        }
        String bundle = v.get(BUNDLE);
        String batches = v.get(BATCH);
        String threads = v.get(THREADS);
        boolean quick = v.get(QUICK);
        if (!Files.isRegularFile(Path.of(bundle, "golden.jsonl"))) {
            System.err.println("error: " + bundle + " is not a model bundle with golden.jsonl");
            System.exit(2);
        }
        if (v.get(KV_CACHE_PROBE) != null) {
            kvCacheProbe(Path.of(bundle), v.get(KV_CACHE_PROBE), quick);
            return;
        }
        if (v.get(SHADOW)) {
            shadowCost(Path.of(bundle), v.get(SMOKE) ? "smoke" : quick ? "quick" : "full");
            return;
        }
        if (v.get(STATE_LAYOUTS)) {
            String mode = v.get(SMOKE) ? "smoke" : quick ? "quick" : "full";
            stateLayouts(ModelBundle.load(Path.of(bundle)), mode);
            return;
        }
        if (!v.get(SMOKE) && !v.get(LATENCY_ONLY)) {
            jmh(bundle, batches, threads, quick);
        }
        if (!v.get(JMH_ONLY)) {
            String mode = v.get(SMOKE) ? "smoke" : quick ? "quick" : "full";
            pipeline(ModelBundle.load(Path.of(bundle)), mode, v.get(LATENCY_ONLY));
        }
    }

    /**
     * The job against raw ONNX Runtime, for the windowed model (unprefixed keys, as before) and, when the bundle has
     * one, the streaming model (keys prefixed {@code incremental_}), then the ratios between the two; the last line
     * printed is one JSON object of the figures.
     */
    private static void pipeline(ModelBundle bundle, String mode, boolean latencyOnly) throws Exception {
        Path work = Files.createTempDirectory("seqscore-bench");
        PipelineBench b = new PipelineBench(bundle, PipelineBench.Sizes.of(mode), work);
        Map<String, Double> r = new LinkedHashMap<>();
        List<Scoring> paths = bundle.spec().streaming().isPresent()
                ? List.of(Scoring.WINDOWED, Scoring.INCREMENTAL) : List.of(Scoring.WINDOWED);
        for (Scoring scoring : latencyOnly ? List.<Scoring>of() : paths) {
            String k = scoring == Scoring.WINDOWED ? "" : "incremental_";
            String name = scoring.cliName() + " scoring";
            say(name + ": raw ONNX Runtime, batch 64 and 1, one thread");
            r.put(k + "raw_ort_events_per_s", b.rawOrt(64, scoring));
            r.put(k + "raw_ort_batch1_events_per_s", b.rawOrt(1, scoring));
            say(name + ": operator: RocksDB, heap, and per-record (batch 1)");
            r.put(k + "operator_events_per_s", b.operator("rocksdb", 64, scoring));
            r.put(k + "operator_heap_events_per_s", b.operator("hashmap", 64, scoring));
            r.put(k + "per_record_events_per_s", b.operator("rocksdb", 1, scoring));
        }
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            for (Scoring scoring : paths) {
                String k = scoring == Scoring.WINDOWED ? "" : "incremental_";
                String name = scoring.cliName() + " scoring";
                say(name + ": end to end, Kafka to Kafka, parallelism 1 and 2");
                double p1 = b.endToEnd(kafka, 1, scoring);
                r.put(k + "end_to_end_events_per_s", p1);
                r.put(k + "scaling_p2_over_p1", b.endToEnd(kafka, 2, scoring) / p1);
                // Half the measured maximum; a smoke run's maximum is too short a run to trust, so it uses a modest
                // rate.
                double rate = mode.equals("smoke") ? Math.min(200, p1 / 2) : p1 / 2;
                say(String.format(Locale.ROOT, "%s: latency at %.0f events/s (half the end-to-end maximum)", name,
                        rate));
                PipelineBench.Latency own = b.latency(kafka, rate, "0", "at-least-once", scoring);
                r.put(k + "latency_rate_events_per_s", rate);
                r.put(k + "latency_p50_ms", own.p50());
                r.put(k + "latency_p99_ms", own.p99());
                r.put(k + "latency_p999_ms", own.p999());
                r.put(k + "latency_p99_to_scored_ms", own.p99ToScored());
                r.put(k + "latency_p99_scored_to_written_ms", own.p99ScoredToWritten());
                r.put(k + "latency_p99_written_to_read_ms", own.p99WrittenToRead());
                PipelineBench.Latency bound = b.latency(kafka, rate, JobConfig.MAX_OUT_OF_ORDERNESS.defaultText(),
                        "at-least-once", scoring);
                r.put(k + "latency_default_bound_p99_ms", bound.p99());
                PipelineBench.Latency eo = b.latency(kafka, rate, "0", "exactly-once", scoring);
                r.put(k + "latency_exactly_once_p99_ms", eo.p99());
            }
        }
        for (Scoring scoring : latencyOnly ? List.<Scoring>of() : paths) {
            String k = scoring == Scoring.WINDOWED ? "" : "incremental_";
            say(scoring.cliName() + " scoring: state per user: full windows on RocksDB");
            double[] state = b.stateBytesPerUser(scoring);
            r.put(k + "state_bytes_per_user", state[0]);
            r.put(k + "state_native_bytes_per_user", state[1]);
        }
        r.put("state_users", (double) PipelineBench.Sizes.of(mode).stateUsers());
        if (latencyOnly) {
            printJson(r);
            return;
        }

        System.out.println();
        System.out.printf("%-44s %14s%n", "figure (" + mode + ", " + Runtime.getRuntime().availableProcessors()
                + " cores)", "value");
        r.forEach((k, val) -> System.out.printf(Locale.ROOT, "%-44s %14.1f%n", k, val));
        System.out.printf(Locale.ROOT, "%-44s %14.2f%n", "operator / raw ORT",
                r.get("operator_events_per_s") / r.get("raw_ort_events_per_s"));
        System.out.printf(Locale.ROOT, "%-44s %14.2f%n", "end-to-end / raw ORT",
                r.get("end_to_end_events_per_s") / r.get("raw_ort_events_per_s"));
        if (paths.contains(Scoring.INCREMENTAL)) {
            ratio(r, "incremental_vs_windowed_raw_ort", "raw_ort_events_per_s", 15);
            ratio(r, "incremental_vs_windowed_raw_ort_batch1", "raw_ort_batch1_events_per_s", 3);
            ratio(r, "incremental_vs_windowed_operator", "operator_events_per_s", 4);
            ratio(r, "incremental_vs_windowed_operator_heap", "operator_heap_events_per_s", 5);
            ratio(r, "incremental_vs_windowed_end_to_end", "end_to_end_events_per_s", 3);
        }
        StringBuilder json = new StringBuilder("{");
        r.forEach((k, val) -> json.append(json.length() > 1 ? ", " : "").append('"').append(k).append("\": ")
                .append(String.format(Locale.ROOT, "%.3f", val)));
        System.out.println(json.append('}'));
    }

    /**
     * The cost of a shadow candidate per event, as the ratio of the operator's time per event with and without one
     * in the same session, and the extra time in units of one model call per event (raw ONNX Runtime at the
     * operator's batch size): shadowing should cost about one more model call per batch. The last line is JSON.
     */
    private static void shadowCost(Path bundleDir, String mode) throws Exception {
        Path work = Files.createTempDirectory("seqscore-bench");
        ModelBundle bundle = ModelBundle.load(bundleDir);
        String candidate = dev.seqscore.offline.BundleCopies.retrained(bundleDir, work.resolve("shadow-candidate"), "-shadow").toString();
        PipelineBench b = new PipelineBench(bundle, PipelineBench.Sizes.of(mode), work);
        List<Scoring> paths = bundle.spec().streaming().isPresent()
                ? List.of(Scoring.WINDOWED, Scoring.INCREMENTAL) : List.of(Scoring.WINDOWED);
        Map<String, Double> r = new LinkedHashMap<>();
        for (Scoring scoring : paths) {
            String k = scoring == Scoring.WINDOWED ? "" : "incremental_";
            say(scoring.cliName() + " scoring: raw ONNX Runtime, batch 64, one thread (one model call)");
            double call = 1e6 / b.rawOrt(64, scoring);
            say(scoring.cliName() + " scoring: operator (RocksDB, batch 64) without and with a shadow candidate, "
                    + "alternating");
            double[] eps = b.shadowCost("rocksdb", 64, scoring, candidate);
            double without = 1e6 / eps[0];
            double with = 1e6 / eps[1];
            r.put(k + "raw_ort_us_per_event", call);
            r.put(k + "operator_us_per_event", without);
            r.put(k + "operator_shadow_us_per_event", with);
            r.put(k + "shadow_cost_ratio", with / without);
            r.put(k + "shadow_extra_in_model_calls", (with - without) / call);
        }
        System.out.println();
        System.out.printf("%-44s %14s%n", "figure (" + mode + ", " + Runtime.getRuntime().availableProcessors()
                + " cores)", "value");
        r.forEach((key, val) -> System.out.printf(Locale.ROOT, "%-44s %14.3f%n", key, val));
        StringBuilder json = new StringBuilder("{");
        r.forEach((key, val) -> json.append(json.length() > 1 ? ", " : "").append('"').append(key).append("\": ")
                .append(String.format(Locale.ROOT, "%.3f", val)));
        System.out.println(json.append('}'));
    }

    private static void printJson(Map<String, Double> r) {
        r.forEach((k, val) -> System.out.printf(Locale.ROOT, "%-44s %14.1f%n", k, val));
        StringBuilder json = new StringBuilder("{");
        r.forEach((k, val) -> json.append(json.length() > 1 ? ", " : "").append('"').append(k).append("\": ")
                .append(String.format(Locale.ROOT, "%.3f", val)));
        System.out.println(json.append('}'));
    }

    /** Adds and prints incremental / windowed for one figure, beside its target. */
    private static void ratio(Map<String, Double> r, String key, String figure, double target) {
        double v = r.get("incremental_" + figure) / r.get(figure);
        r.put(key, v);
        System.out.printf(Locale.ROOT, "%-44s %14.2f   (target >= %.0f)%n", key, v, target);
    }

    /** The window state layouts side by side, then the job's own state; the last line is one JSON object. */
    private static void stateLayouts(ModelBundle bundle, String mode) throws Exception {
        Path work = Files.createTempDirectory("seqscore-bench");
        int users = switch (mode) {
            case "smoke" -> 2_000;
            case "quick" -> 20_000;
            default -> 100_000;
        };
        StateLayoutBench b = new StateLayoutBench(work);
        Map<String, Double> r = new LinkedHashMap<>();
        System.out.printf("%-11s %-8s %8s %16s %16s %16s%n", "layout", "backend", "users", "events/s (full)",
                "canonical B/user", "native B/user");
        for (String backend : new String[] {"rocksdb", "hashmap"}) {
            for (StateLayoutBench.Layout layout : StateLayoutBench.Layout.values()) {
                say("state layout " + layout + " on " + backend + ", " + users + " users");
                StateLayoutBench.Result x = b.run(layout, backend, users);
                System.out.printf(Locale.ROOT, "%-11s %-8s %8d %16.0f %16.1f %16.1f%n", layout, backend, users,
                        x.eventsPerSecond(), x.canonicalBytesPerUser(), x.nativeBytesPerUser());
                String key = layout.name().toLowerCase(Locale.ROOT) + "_" + backend;
                r.put(key + "_events_per_s", x.eventsPerSecond());
                r.put(key + "_bytes_per_user", x.canonicalBytesPerUser());
                r.put(key + "_native_bytes_per_user", x.nativeBytesPerUser());
            }
        }
        say("the job's state per user: full windows on RocksDB, " + users + " users");
        double[] job = new PipelineBench(bundle, PipelineBench.Sizes.of(mode), work)
                .stateBytesPerUser(users, Scoring.WINDOWED);
        System.out.printf(Locale.ROOT, "%-36s %14.1f   (target <= 1024)%n", "job state_bytes_per_user", job[0]);
        System.out.printf(Locale.ROOT, "%-36s %14.1f%n", "job state_native_bytes_per_user", job[1]);
        r.put("state_bytes_per_user", job[0]);
        r.put("state_native_bytes_per_user", job[1]);
        r.put("state_users", (double) users);
        StringBuilder json = new StringBuilder("{");
        r.forEach((k, val) -> json.append(json.length() > 1 ? ", " : "").append('"').append(k).append("\": ")
                .append(String.format(Locale.ROOT, "%.3f", val)));
        System.out.println(json.append('}'));
    }

    /** The served step graph against the K/V-cache probe, per call and per event; the last line is JSON. */
    private static void kvCacheProbe(Path bundle, Path probeDir, boolean quick) throws RunnerException {
        ModelBundle b = ModelBundle.load(bundle);
        String step = bundle.resolve(b.spec().served(Scoring.INCREMENTAL).onnxFile()).toAbsolutePath().toString();
        String probe = probeDir.resolve("probe-kvcache.onnx").toAbsolutePath().toString();
        TimeValue iteration = TimeValue.seconds(quick ? 1 : 2);
        Collection<RunResult> results = new Runner(new OptionsBuilder()
                .include(GraphBenchmark.class.getName())
                .param("graph", step, probe)
                .param("batch", "1", "64")
                .forks(1)
                .warmupIterations(quick ? 2 : 3)
                .warmupTime(iteration)
                .measurementIterations(quick ? 3 : 5)
                .measurementTime(iteration)
                .shouldFailOnError(true)
                .build()).run();
        Map<String, Double> perEvent = new LinkedHashMap<>();
        System.out.printf("%n%-22s %6s %16s %16s%n", "graph", "batch", "us/call", "us/event");
        for (RunResult r : results) {
            String g = r.getParams().getParam("graph").equals(step) ? "step" : "kv_cache_probe";
            int batch = Integer.parseInt(r.getParams().getParam("batch"));
            double us = r.getPrimaryResult().getScore();
            double err = r.getPrimaryResult().getScoreError();
            System.out.printf(Locale.ROOT, "%-22s %6d %8.2f ± %5.2f %8.3f ± %5.3f%n", g, batch, us, err, us / batch,
                    err / batch);
            perEvent.put(g + "_batch" + batch + "_us_per_event", us / batch);
        }
        for (String batch : new String[] {"1", "64"}) {
            perEvent.put("step_over_kv_cache_batch" + batch, perEvent.get("step_batch" + batch + "_us_per_event")
                    / perEvent.get("kv_cache_probe_batch" + batch + "_us_per_event"));
        }
        StringBuilder json = new StringBuilder("{");
        perEvent.forEach((k, val) -> json.append(json.length() > 1 ? ", " : "").append('"').append(k).append("\": ")
                .append(String.format(Locale.ROOT, "%.3f", val)));
        System.out.println(json.append('}'));
    }

    private static void say(String s) {
        System.err.println("bench: " + s);
    }

    private static void jmh(String bundle, String batches, String threads, boolean quick) throws RunnerException {
        String[] scorings = ModelBundle.load(Path.of(bundle)).spec().streaming().isPresent()
                ? new String[] {"windowed", "incremental"} : new String[] {"windowed"};
        TimeValue iteration = TimeValue.seconds(quick ? 1 : 2);
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(ScoringBenchmark.class.getName())
                .param("bundle", Path.of(bundle).toAbsolutePath().toString())
                .param("batch", batches.split(","))
                .param("threads", threads.split(","))
                .param("scoring", scorings)
                .forks(1)
                .warmupIterations(quick ? 2 : 3)
                .warmupTime(iteration)
                .measurementIterations(quick ? 3 : 5)
                .measurementTime(iteration)
                .shouldFailOnError(true);
        Collection<RunResult> results = new Runner(options.build()).run();

        System.out.println();
        System.out.printf("%-8s %-12s %6s %8s %16s %16s%n", "method", "scoring", "batch", "threads", "us/batch",
                "us/event");
        Map<String, Double> perEvent = new LinkedHashMap<>();
        for (RunResult r : results) {
            String method = r.getParams().getBenchmark().replaceAll(".*\\.", "");
            // explain() handles one alerting event whatever the batch: its cost is per explained event.
            int batch = method.equals("explain") ? 1 : Integer.parseInt(r.getParams().getParam("batch"));
            double perBatch = r.getPrimaryResult().getScore();
            double error = r.getPrimaryResult().getScoreError();
            String scoring = r.getParams().getParam("scoring");
            System.out.printf(Locale.ROOT, "%-8s %-12s %6d %8s %8.2f ± %5.2f %8.3f ± %5.3f%n", method, scoring, batch,
                    r.getParams().getParam("threads"), perBatch, error, perBatch / batch, error / batch);
            perEvent.put(method + "/" + scoring + "/" + r.getParams().getParam("batch"), perBatch / batch);
        }
        for (String b : batches.split(",")) {
            Double w = perEvent.get("score/windowed/" + b);
            Double i = perEvent.get("score/incremental/" + b);
            if (w != null && i != null) {
                System.out.printf(Locale.ROOT, "model cost per event, windowed / step graph, batch %s: %.1fx%n", b,
                        w / i);
            }
        }
        System.out.println("cores available: " + Runtime.getRuntime().availableProcessors());
    }
}
