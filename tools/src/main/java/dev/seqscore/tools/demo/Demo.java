package dev.seqscore.tools.demo;

import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.job.JobConfig;
import dev.seqscore.offline.LocalFlink;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.options.CommandLine;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
import dev.seqscore.options.PrefixOption;
import dev.seqscore.tools.model.ModelCommand;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * {@code bin/seqscore demo}: the real job on embedded defaults. A real KRaft broker in this JVM, real time-ordered
 * Taobao clicks with simulated users interleaved (or the simulator alone when the data is absent) streamed into it,
 * the job on a local MiniCluster with the Flink web UI, and a live summary read back from the output topics the way a
 * dashboard would read them, with the job's health from Flink's REST API. Everything listens on loopback only unless
 * {@code --bind-address} says otherwise.
 */
public final class Demo {
    static final Option<Path> DATA_DIR = Option.path("data-dir", "",
            "where the taobao/ files are; empty = $SEQSCORE_DATA_DIR, else ../shared/data");
    static final Option<String> SOURCE = Option.oneOf("source", "auto",
            "sample: the 695 users' 9 days (taobao/UserBehavior_sample.csv and _extra_95users.csv) in event-time "
                    + "order, replayed round after round with fresh user ids; stream: the 2-hour time-ordered file "
                    + "(taobao/UserBehavior_timeordered_110k.csv) with simulated users mixed in; simulator: simulated "
                    + "users only; auto: sample if present, else the simulator",
            "auto", "sample", "stream", "simulator");
    static final Option<Boolean> WARM_START = Option.flag("warm-start", "",
            "with the sample: bootstrap the job's per-user state from its first 7 days (bin/seqscore bootstrap, in "
                    + "this JVM) and stream the rest, so windows are warm from the first report, as after a deploy "
                    + "with history; default on with --source sample, --warm-start=false starts cold");
    static final Option<Integer> RATE = Option.positiveInt("rate", "1000",
            "clicks per second streamed into Kafka: the accelerated clock (the sample's 9 days take about 70 s at "
                    + "1000/s)");
    static final Option<Duration> DURATION = Option.duration("duration", "0",
            "stop after this long, e.g. 90s or 5m; 0 runs until Ctrl-C");
    static final Option<Integer> SIM_USERS = Option.positiveInt("sim-users", "1000000",
            "simulated users (--source stream|simulator); each rests 30 min to hours between sessions, so S sessions "
                    + "per second need ~10,000 x S");
    static final Option<Double> SIM_SESSIONS = Option.number("sim-sessions", "50",
            "simulated sessions per second of event time (about 6 clicks each), next to the file's ~14 clicks/s",
            0.001, 1_000_000);
    static final Option<Integer> KAFKA_PORT = Option.integer("kafka-port", "9092",
            "the embedded broker's port on localhost for outside clients (a free one if taken; 0 = any)", 0, 65535);
    static final Option<Integer> WEB_PORT = Option.integer("web-port", "8081",
            "Flink REST API and web UI port (a free one if taken; 0 = any)", 0, 65535);
    static final Option<Integer> METRICS_PORT = Option.integer("metrics-port", "9249",
            "Prometheus metrics of the cluster and the job at http://<bind-address>:PORT/metrics (a free one if taken; "
                    + "0 = off)", 0, 65535);
    static final Option<String> BIND_ADDRESS = Option.of("bind-address", "ADDRESS", LocalFlink.LOOPBACK,
            "address Flink's REST API, web UI and other ports bind to; 0.0.0.0 opens them to the network, where "
                    + "anyone who reaches the REST API can run jobs (the broker stays on localhost)",
            Demo::checkAddress);
    static final Option<Integer> BAD_EVERY = Option.integer("bad-every", "500",
            "inject one malformed record every N clicks to show the dead-letter path; 0 = never", 0, Integer.MAX_VALUE);
    static final Option<Duration> REPORT_EVERY = Option.positiveDuration("report-every", "5s",
            "how often the summary prints");
    static final Option<Boolean> START_SCHEMA_REGISTRY = Option.flag("start-schema-registry",
            "start a real Apicurio Registry (in-memory, on a free loopback port, about 10 s; built into "
                    + "schema-registry/target/) and run everything against it: framed clicks in, framed output out "
                    + "(instead of --schema-registry URL)");
    static final Option<Path> SHADOW_MODEL = Option.path("shadow-model", "",
            "a model bundle directory to score every event beside the serving model as a shadow candidate (same "
                    + "batches, no alerts): checked here first, published on the job's model control topic before "
                    + "the first click, its scores written to the shadow scores topic; the reports print serving "
                    + "against candidate per output");
    static final PrefixOption<String> FLINK = new PrefixOption<>("flink", "<key>", Option.string("flink", "",
            "a Flink configuration option for the local cluster and job, e.g. "
                    + "--flink.execution.checkpointing.unaligned.enabled true"));
    static final OptionSet OPTIONS = new OptionSet()
            .add(DATA_DIR, SOURCE, WARM_START, RATE, DURATION, SIM_USERS, SIM_SESSIONS, KAFKA_PORT, WEB_PORT,
                    METRICS_PORT, BIND_ADDRESS, BAD_EVERY, REPORT_EVERY, START_SCHEMA_REGISTRY, SHADOW_MODEL,
                    OptionSet.HELP)
            .add(FLINK)
            .addAll("The job's options (bin/seqscore job --help)", JobConfig.OPTIONS);

    private Demo() {}

    public static void main(String[] args) throws Exception {
        OptionValues options = new CommandLine(OPTIONS, usage()).blankLineBeforeUsage(false)
                .check(v -> check(v, System.out)).parseOrExit(args);
        if (options == null) {
            return;
        }
        run(options);
    }

    /**
     * The demo's command line beyond the job's own checks; a {@code --shadow-model} bundle is checked here, before
     * anything starts, as {@code bin/seqscore model publish} checks it (its graphs against its spec, its golden
     * vectors through ONNX Runtime).
     */
    static void check(OptionValues v, PrintStream log) {
        JobConfig.of(v);
        if (v.get(START_SCHEMA_REGISTRY) && v.get(JobConfig.SCHEMA_REGISTRY) != null) {
            throw new ConfigException("--" + START_SCHEMA_REGISTRY.name() + " starts a registry of its own: "
                    + "not together with --" + JobConfig.SCHEMA_REGISTRY.name());
        }
        if (v.get(SHADOW_MODEL) != null) {
            for (Option<String> topic : List.of(JobConfig.SCORES_TOPIC, JobConfig.SHADOW_SCORES_TOPIC,
                    JobConfig.MODEL_CONTROL_TOPIC, JobConfig.MODEL_STATUS_TOPIC)) {
                if (v.given(topic) && (v.get(topic) == null || v.get(topic).isBlank())) {
                    throw new ConfigException("--" + SHADOW_MODEL.name() + " needs --" + topic.name() + ": the "
                            + "demo publishes the candidate on the control topic and compares the scores topic with "
                            + "the shadow scores topic; leave it out for the demo's default");
                }
            }
            checkShadowModel(v.get(SHADOW_MODEL), log);
        }
    }

    /**
     * The candidate bundle's location for the control record, once it proved servable here.
     *
     * @throws ConfigException saying what is wrong and what to give instead
     */
    static String checkShadowModel(Path dir, PrintStream log) {
        try {
            String uri = ModelCommand.locate(dir.toString());
            ModelCommand.check(uri, log);
            return uri;
        } catch (RuntimeException e) {
            String why = e.getMessage() == null ? e.toString() : e.getMessage();
            throw new ConfigException("--" + SHADOW_MODEL.name() + " " + dir + ": " + why + ". Give a model bundle "
                    + "directory as the export writes it (model-spec.json, its .onnx graphs and golden vectors), "
                    + "e.g. a retrained copy of models/default with its own model_version");
        }
    }

    static String usage() {
        return OPTIONS.usage("bin/seqscore demo [options]", "An embedded Kafka broker, real (or simulated) clicks "
                + "streamed into it, the job on a local Flink MiniCluster with its web UI, and a live summary with "
                + "the job's health. For large state add --state-backend rocksdb; a soak: --source stream --rate 50000 "
                + "--duration 5m. To compare a candidate model with the serving one: --shadow-model DIR.");
    }

    private static void run(OptionValues options) throws Exception {
        DemoStack stack = DemoStack.start(options, System.out);
        List<DemoReport.Rule> rules = alertRules(stack);
        Map<String, Double> thresholds = new HashMap<>();
        rules.forEach(r -> thresholds.put(r.output(), r.threshold()));
        OutputSummary summary = new OutputSummary(stack.kafka.bootstrapServers(), stack.config.scoresTopic(),
                stack.config.get(JobConfig.ALERTS_TOPIC), stack.config.get(JobConfig.DEAD_LETTER_TOPIC), thresholds,
                stack.config.shadowScoresTopic(), shadowComparison(stack));
        JobHealthReporter health = new JobHealthReporter(stack.flink.restAddress(), stack.job.toString());
        AtomicBoolean stopping = new AtomicBoolean();
        Thread hook = new Thread(() -> {
            if (stopping.getAndSet(true)) {
                return; // --duration already stopped everything in order
            }
            System.out.println("\ndemo: stopping: cancelling the job, then the cluster and the broker...");
            stack.close();
        }, "demo-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        AtomicBoolean stopRequested = new AtomicBoolean();
        onStopSignal(() -> {
            if (stopRequested.getAndSet(true)) {
                System.exit(130); // a second Ctrl-C: stop now, through the shutdown hook
            }
        });

        Duration duration = options.get(DURATION);
        long every = options.get(REPORT_EVERY).toNanos();
        long start = System.nanoTime();
        long nextReport = start + every;
        DemoReport report = new DemoReport(PipelineSettings.from(stack.config, stack.bundle).served.modelVersion(),
                rules, health, start);
        while (!stopping.get()) {
            summary.poll(Duration.ofMillis(200));
            long now = System.nanoTime();
            if (now >= nextReport) {
                System.out.println(report.render(Duration.ofNanos(now - start), now, stack.input(), summary.totals(),
                        health.poll()));
                if (stack.producer.failure() != null) {
                    System.out.println("demo: the producer stopped: " + stack.producer.failure());
                }
                nextReport += every;
            }
            boolean timeUp = !duration.isZero() && now - start >= duration.toNanos();
            if (timeUp || stopRequested.get()) {
                System.out.println("\ndemo: " + (timeUp ? "--duration " + duration + " reached" : "stop requested")
                        + "; " + health.verdict(health.poll(), report.reports(), report.reportsWithNewOutput(),
                        report.longestWithoutOutput()));
                summary.close();
                stopping.set(true);
                System.out.println("\ndemo: stopping: cancelling the job, then the cluster and the broker...");
                stack.close();
                System.exit(0);
            }
        }
    }

    /** The job's effective thresholds (flags over the spec) and the validation rate each one corresponds to. */
    static List<DemoReport.Rule> alertRules(DemoStack stack) {
        PipelineSettings settings = PipelineSettings.from(stack.config, stack.bundle);
        List<DemoReport.Rule> rules = new ArrayList<>();
        for (int o = 0; o < settings.alertPolicy.rules.size(); o++) {
            AlertPolicy.Rule rule = settings.alertPolicy.rules.get(o);
            ModelSpec.ScoreQuantiles q = settings.served.outputs().get(o).quantiles();
            rules.add(new DemoReport.Rule(rule.output, rule.alertType, rule.threshold,
                    q == null ? Double.NaN : q.rateFor(rule.threshold)));
        }
        return rules;
    }

    /** Per output, the serving model's threshold and the candidate's (flags over each one's spec); null without one. */
    static ShadowComparison shadowComparison(DemoStack stack) {
        if (stack.shadowBundle == null) {
            return null;
        }
        PipelineSettings serving = PipelineSettings.from(stack.config, stack.bundle);
        PipelineSettings candidate = PipelineSettings.from(stack.config, stack.shadowBundle);
        List<ShadowComparison.Rule> rules = new ArrayList<>();
        for (AlertPolicy.Rule r : serving.alertPolicy.rules) {
            AlertPolicy.Rule c = candidate.alertPolicy.rules.stream().filter(x -> x.output.equals(r.output))
                    .findFirst().orElseThrow();
            rules.add(new ShadowComparison.Rule(r.output, r.threshold, c.threshold));
        }
        return new ShadowComparison(rules, candidate.served.modelVersion());
    }

    /**
     * Ctrl-C and SIGTERM ask the main loop to stop in order (cancel the job, then stop the cluster and the broker)
     * instead of starting the JVM's shutdown: there, ONNX Runtime's own shutdown hook frees its native environment
     * while the job's tasks may still be scoring, which crashes the JVM (SIGSEGV in libonnxruntime, seen here).
     */
    private static void onStopSignal(Runnable handler) {
        for (String name : new String[] {"INT", "TERM"}) {
            try {
                sun.misc.Signal.handle(new sun.misc.Signal(name), signal -> handler.run());
            } catch (IllegalArgumentException e) {
                // This platform has no such signal: the JVM's default handling and the shutdown hook remain.
            }
        }
    }

    /** The demo's own broker, topics and durable checkpoints, unless the command line says otherwise. */
    static OptionValues demoDefaults(OptionValues given, String bootstrap, Path checkpoints) {
        return shadowDefaults(given).withDefault(JobConfig.BOOTSTRAP_SERVERS, bootstrap)
                .withDefault(JobConfig.INPUT_TOPIC, "clicks")
                .withDefault(JobConfig.ALERTS_TOPIC, "alerts")
                .withDefault(JobConfig.SCORES_TOPIC, "scores")
                .withDefault(JobConfig.DEAD_LETTER_TOPIC, "clicks-dlq")
                .withDefault(JobConfig.STARTING_OFFSETS, "earliest")
                .withDefault(JobConfig.CHECKPOINT_INTERVAL, "5s")
                .withDefault(JobConfig.CHECKPOINT_DIR, checkpoints.toUri().toString())
                .withDefault(JobConfig.PARALLELISM, "2");
    }

    /** With {@code --shadow-model}: the model control, status and shadow scores topics, unless given. */
    static OptionValues shadowDefaults(OptionValues given) {
        return given.get(SHADOW_MODEL) == null ? given
                : given.withDefault(JobConfig.MODEL_CONTROL_TOPIC, "model-control")
                        .withDefault(JobConfig.MODEL_STATUS_TOPIC, "model-status")
                        .withDefault(JobConfig.SHADOW_SCORES_TOPIC, "shadow-scores");
    }

    private static String checkAddress(String s) {
        try {
            InetAddress.getByName(s.trim());
            return s.trim();
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("'" + s + "' is not an address of this machine");
        }
    }
}
