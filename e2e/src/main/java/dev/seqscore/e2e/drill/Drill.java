package dev.seqscore.e2e.drill;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.seqscore.e2e.cluster.ClusterSetup;
import dev.seqscore.e2e.cluster.StandaloneCluster;
import dev.seqscore.e2e.kafka.BrokerProcess;
import dev.seqscore.avro.ModelEvent;
import dev.seqscore.e2e.probe.JvmProbe;
import dev.seqscore.lifecycle.ModelControl;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.options.CommandLine;
import dev.seqscore.features.Scoring;
import dev.seqscore.options.ConfigException;
import dev.seqscore.options.Option;
import dev.seqscore.options.OptionSet;
import dev.seqscore.options.OptionValues;
import dev.seqscore.options.PrefixOption;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.ToIntFunction;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * {@code bin/seqscore drill}: the failover drill. It builds a real cluster on this machine (a Kafka broker process,
 * a Flink JobManager and two TaskManagers as OS processes, set up as the README recommends: by default the slim
 * job jar with ONNX Runtime in the cluster's {@code lib/}, parent-first, jemalloc as the processes' allocator and a
 * pre-touched TaskManager heap; see {@link ClusterSetup}), submits the job jar with {@code flink run} (exactly-once,
 * RocksDB, durable checkpoints), streams real clicks through it and, while they flow, injects the
 * failures and operations a production job lives through: {@code kill -9} of TaskManagers, a broker crash and
 * restart, a stop-with-savepoint and resume, and cancel-and-resubmit through the REST API from the retained
 * checkpoint. Then it compares what a read_committed consumer saw with the backtest of the same events, and reports
 * lost and duplicated outputs, recovery times, output stalls, TaskManager memory and leaked class loaders.
 *
 * <p>With {@code --model-swaps N} (default 1) the job also runs with a model control topic, and in the middle of the
 * injections the drill swaps its model N times, a TaskManager kill right after; each output's model version is
 * checked against the backtest with the same schedule, and with 2 or more swaps TaskManager RSS and live ORT
 * sessions are looked at after each.
 *
 * <p>The exit code is 0 only if nothing was lost or duplicated, every output carries the model version its event's
 * schedule assigns and no class loader or session leaked; resubmission memory growth is reported, not judged, swap
 * memory growth is judged from 5 swaps on (at most 5 MB per swap per TaskManager). The last line of output is the
 * result as one JSON object.
 */
public final class Drill {
    static final Option<Boolean> QUICK = Option.flag("quick",
            "the short drill for CI: fewer users, 1 model swap, 1 TaskManager kill, 1 broker restart, 1 savepoint "
                    + "resume, 2 resubmissions");
    static final Option<Integer> USERS = Option.integer("users", "",
            "stream the first N users of the data file (0 = all); default: all (600), --quick: 100", 0,
            Integer.MAX_VALUE);
    static final Option<Integer> TM_KILLS = Option.integer("tm-kills", "",
            "kill -9s of a TaskManager, each followed by a fresh one; default 3, --quick 1", 0, 20);
    static final Option<Integer> BROKER_RESTARTS = Option.integer("broker-restarts", "",
            "kill -9s of the Kafka broker, each followed by a restart on the same data and port; default 1", 0, 10);
    static final Option<Integer> SAVEPOINT_RESUMES = Option.integer("savepoint-resumes", "",
            "stop-with-savepoint (flink stop) and resubmission from it (flink run -s); default 1", 0, 10);
    static final Option<Integer> RESUBMISSIONS = Option.integer("resubmissions", "",
            "cancel and resubmit through the REST API (jar run, main() inside the JobManager) from the retained "
                    + "checkpoint, measuring TaskManager memory after each; default 3, --quick 2", 0, 20);
    static final Option<Integer> MODEL_SWAPS = Option.integer("model-swaps", "",
            "model swaps in the middle of the injections, each published on the job's model control topic with an "
                    + "effective time just ahead of the input, alternating between two copies of models/default with "
                    + "other versions; a TaskManager kill follows the last one at once when the plan has kills. With "
                    + "2 or more, TaskManager RSS and live ONNX Runtime sessions are sampled after each swap; "
                    + "default 1, --quick 1", 0, 100);
    static final Option<Double> RATE = Option.number("rate", "",
            "input events per second until the last injection, then 20x; default: the events spread over "
                    + "60 s + 60 s per injection + 15 s per model swap", 1, 1e6);
    static final Option<Scoring> SCORING = Option.enumOf("scoring", "incremental",
            "which model of the bundle the job serves (the job's --scoring): incremental (the streaming model's step) "
                    + "or windowed", Scoring.class);
    static final Option<Duration> CHECKPOINT_INTERVAL = Option.positiveDuration("checkpoint-interval", "3s",
            "the job's checkpoint interval: exactly-once output becomes visible at each checkpoint");
    static final Option<Duration> GAP = Option.duration("gap", "10s",
            "normal running between the recovery of one injection and the next injection");
    static final Option<Duration> RECOVERY_TIMEOUT = Option.positiveDuration("recovery-timeout", "5m",
            "an injection after which the job does not run with output flowing within this fails the drill");
    static final Option<Duration> DRAIN_TIMEOUT = Option.positiveDuration("drain-timeout", "3m",
            "after the input is in, how long committed output may stand still before what is missing counts as "
                    + "lost");
    static final Option<Duration> SETTLE = Option.positiveDuration("settle", "10s",
            "keep reading this long once the expected output is complete, so that late duplicates show");
    static final Option<Path> WORK_DIR = Option.path("work-dir", "",
            "where the logs, checkpoints and savepoints go (kept); default e2e/target/drill-<time>");
    static final Option<Path> DATA_DIR = Option.path("data-dir", "",
            "where taobao/UserBehavior_sample.csv is; default $SEQSCORE_DATA_DIR, else ../shared/data");
    static final Option<String> JAR = Option.nonBlank("jar", "slim",
            "slim: the slim jar on a cluster with ONNX Runtime in lib/, parent-first (the README's recommended "
                    + "setup); shaded: the jar that carries ONNX Runtime, nothing in lib/; or a jar's path");
    static final Option<String> ALLOCATOR = Option.oneOf("allocator", "",
            "the C allocator of the Flink processes; default jemalloc (LD_PRELOAD) when installed, else "
                    + "glibc-arenas2 (MALLOC_ARENA_MAX=2), as the README recommends", "jemalloc", "glibc-arenas2",
            "glibc");
    static final Option<Boolean> HEAP_PRE_TOUCH = Option.bool("heap-pre-touch", "true",
            "start the TaskManagers with -XX:+AlwaysPreTouch (env.java.opts.taskmanager), as the README recommends: "
                    + "their fixed heap is resident from the start, so RSS growth across jobs is native memory");
    static final Option<Boolean> HEAP_DUMPS = Option.flag("heap-dumps",
            "when a class loader leaked, also write a heap dump of each leaking process into the work dir "
                    + "(hundreds of MB each), to find what holds it");
    static final PrefixOption<String> FLINK_CONF = new PrefixOption<>("flink", "<key>", Option.string("flink", "",
            "a config.yaml entry for the cluster, e.g. --flink.heartbeat.interval 2s (default: Flink's own, "
                    + "except a fixed-delay restart strategy and RETAIN_ON_CANCELLATION)"));
    static final OptionSet OPTIONS = new OptionSet().add(QUICK, USERS, TM_KILLS, BROKER_RESTARTS, SAVEPOINT_RESUMES,
            RESUBMISSIONS, MODEL_SWAPS, RATE, SCORING, CHECKPOINT_INTERVAL, GAP, RECOVERY_TIMEOUT, DRAIN_TIMEOUT,
            SETTLE, WORK_DIR, DATA_DIR, JAR, ALLOCATOR, HEAP_PRE_TOUCH, HEAP_DUMPS, OptionSet.HELP).add(FLINK_CONF);

    static final int PARTITIONS = 2;
    static final int PARALLELISM = 2;
    static final int TASK_MANAGERS = 2;
    static final String DATA_FILE = "taobao/UserBehavior_sample.csv";
    /** How far ahead of the input sent so far a model swap takes effect, in seconds of input at the current rate. */
    static final double SWAP_LEAD_SECONDS = 5;
    static final String ORT_SESSION = "ai.onnxruntime.OrtSession";
    static final String ONNX_SCORER = "dev.seqscore.model.OnnxScorer";
    /** From this many swaps on, the RSS slope is judged (at most {@link #MAX_MB_PER_SWAP}): fewer make no slope. */
    static final int MEMORY_GATE_MIN_SWAPS = 5;
    static final double MAX_MB_PER_SWAP = 5.0;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The kinds of injection, in the words of the report. */
    enum Kind {
        TM_KILL("TaskManager kill -9"),
        BROKER_RESTART("broker kill -9 + restart"),
        SAVEPOINT_RESUME("stop-with-savepoint + resume"),
        RESUBMISSION("cancel + REST resubmit"),
        MODEL_SWAP("model swap");

        final String label;

        Kind(String label) {
            this.label = label;
        }
    }

    /** What one injection did and how long the job took to run again with output flowing. */
    static final class Injection {
        final int number;
        final Kind kind;
        String detail = "";
        long startNanos;
        long runningNanos = -1;
        long flowingNanos = -1;
        long restarts;
        String note = "";
        JvmProbe.Sample[] samples;

        Injection(int number, Kind kind) {
            this.number = number;
            this.kind = kind;
        }

        double toRunningSeconds() {
            return runningNanos < 0 ? Double.NaN : (runningNanos - startNanos) / 1e9;
        }

        double recoverySeconds() {
            return flowingNanos < 0 ? Double.NaN : (flowingNanos - startNanos) / 1e9;
        }

        long endNanos() {
            return Math.max(startNanos, Math.max(runningNanos, flowingNanos));
        }
    }

    private final OptionValues options;
    private final boolean quick;
    private final long t0 = System.nanoTime();

    private Drill(OptionValues options) {
        this.options = options;
        this.quick = options.get(QUICK);
    }

    public static void main(String[] args) {
        OptionValues options = new CommandLine(OPTIONS, usage()).parseOrExit(args);
        if (options == null) {
            return;
        }
        int code;
        try {
            code = new Drill(options).run();
        } catch (ConfigException e) {
            System.err.println("error: " + e.getMessage());
            code = 2;
        } catch (Exception e) {
            System.err.println("drill: failed: " + e);
            e.printStackTrace();
            // The last line stays one JSON object, for whoever reads the result by machine.
            ObjectNode result = json();
            result.put("error", e.toString());
            result.put("passed", false);
            System.out.println(result);
            code = 1;
        }
        System.exit(code);
    }

    static String usage() {
        return OPTIONS.usage("bin/seqscore drill [--quick] [options]", String.join("\n",
                "The failover drill: a Kafka broker process, a Flink JobManager and two TaskManagers on this machine,",
                "set up as the README recommends (slim jar, ONNX Runtime in lib/ parent-first, jemalloc, pre-touched",
                "TaskManager heaps; --jar, --allocator and --heap-pre-touch choose others), the job",
                "jar submitted with flink run, real clicks streamed through it and, while they flow,",
                "TaskManager kill -9s, a broker kill -9 and restart, a stop-with-savepoint and resume, cancel-and-",
                "resubmits through the REST API, and model swaps on the job's control topic (a kill right after).",
                "Then what a read_committed consumer saw is compared with the backtest of the same events and model",
                "schedule. Exit code 0 only if no alert or score was lost or duplicated, each carries the model",
                "version the schedule assigns, and no class loader or ORT session leaked (with 5+ swaps: and no",
                "TaskManager grew more than 5 MB RSS per swap); the last line is the result as JSON. Logs stay in",
                "the work directory."));
    }

    private int intOption(Option<Integer> o, int full, int quickValue) {
        Integer v = options.get(o);
        return v != null ? v : quick ? quickValue : full;
    }

    private int run() throws Exception {
        int tmKills = intOption(TM_KILLS, 3, 1);
        int brokerRestarts = intOption(BROKER_RESTARTS, 1, 1);
        int savepointResumes = intOption(SAVEPOINT_RESUMES, 1, 1);
        int resubmissions = intOption(RESUBMISSIONS, 3, 2);
        int users = intOption(USERS, 0, 100);
        int modelSwaps = intOption(MODEL_SWAPS, 1, 1);
        List<Kind> plan = plan(tmKills, brokerRestarts, savepointResumes, resubmissions, modelSwaps);

        Path root = repoRoot();
        ClusterSetup setup = setup(root);
        Path jar = setup.jar();
        Path dataDir = options.get(DATA_DIR) != null ? options.get(DATA_DIR)
                : Path.of(System.getenv().getOrDefault("SEQSCORE_DATA_DIR", root.resolve("../shared/data").toString()));
        Path dataFile = dataDir.resolve(DATA_FILE);
        if (!Files.isReadable(dataFile)) {
            throw new ConfigException("no data file at " + dataFile + ": set SEQSCORE_DATA_DIR or --data-dir to the "
                    + "folder that holds " + DATA_FILE);
        }
        Path workDir = (options.get(WORK_DIR) != null ? options.get(WORK_DIR)
                : root.resolve("e2e/target/drill-" + LocalDateTime.now().format(
                        DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")))).toAbsolutePath();
        Files.createDirectories(workDir);
        Path e2eTarget = root.resolve("e2e/target");
        List<Path> flinkClasspath = setup.classpath(
                StandaloneCluster.flinkClasspath(e2eTarget.resolve("classpath.txt")));
        List<Path> brokerClasspath = BrokerProcess.classpath(e2eTarget.resolve("broker-classpath.txt"));

        say("work dir " + workDir + " (logs, checkpoints, savepoints; kept)");
        say("cluster setup: " + setup.describe());
        DrillInput input = DrillInput.load(dataFile, users, PARTITIONS);
        double rate = options.get(RATE) != null ? options.get(RATE)
                : Math.max(5, input.rows().size() / (60.0 + 60.0 * (plan.size() - (modelSwaps > 0 ? 1 : 0))
                        + swapSeconds(modelSwaps)));
        say(String.format(Locale.ROOT, "input: %,d events of %d users from %s (+%d flush events), %d partitions, "
                + "%.0f events/s; plan: %s", input.events(), input.users(), DATA_FILE, PARTITIONS, PARTITIONS, rate,
                plan.stream().map(k -> k.name().toLowerCase(Locale.ROOT)).toList()));

        String suffix = UUID.randomUUID().toString().substring(0, 8);
        String clicks = "drill-clicks-" + suffix;
        String alerts = "drill-alerts-" + suffix;
        String scores = "drill-scores-" + suffix;
        String dlq = "drill-dlq-" + suffix;
        String modelControl = "drill-model-control-" + suffix;
        String modelStatus = "drill-model-status-" + suffix;

        BrokerProcess broker = null;
        StandaloneCluster cluster = null;
        OutputWatcher watcher = null;
        InputFeeder feeder = null;
        ModelStatusWatcher status = null;
        try {
            broker = BrokerProcess.format(workDir.resolve("kafka"), brokerClasspath);
            // The broker, the cluster and the backtest each take a while on two busy cores: start the processes
            // while the backtest runs.
            BrokerProcess b = broker;
            CompletableFuture<StandaloneCluster> clusterUp = CompletableFuture.supplyAsync(() -> {
                try {
                    b.start();
                    Map<String, String> conf = setup.conf(clusterConfig());
                    conf.putAll(options.get(FLINK_CONF));
                    return StandaloneCluster.start(workDir.resolve("flink"), flinkClasspath, TASK_MANAGERS, conf,
                            setup.environment());
                } catch (Exception e) {
                    throw new IllegalStateException(e.getMessage(), e);
                }
            });
            List<String> jobArgs = new ArrayList<>(List.of(
                    "--bootstrap-servers", broker.bootstrapServers(),
                    "--input-topic", clicks,
                    "--alerts-topic", alerts,
                    "--scores-topic", scores,
                    "--dead-letter-topic", dlq,
                    "--group-id", "seqscore-drill-" + suffix,
                    "--transactional-id-prefix", "seqscore-drill-" + suffix,
                    "--starting-offsets", "earliest",
                    "--checkpoint-interval", options.get(CHECKPOINT_INTERVAL).toMillis() + "ms",
                    "--parallelism", Integer.toString(PARALLELISM),
                    "--state-backend", "rocksdb",
                    "--scoring", options.get(SCORING).cliName(),
                    "--checkpoint-dir", workDir.resolve("checkpoints").toUri().toString()));
            if (modelSwaps > 0) {
                jobArgs.addAll(List.of("--model-control-topic", modelControl, "--model-status-topic", modelStatus));
            }
            jobArgs = List.copyOf(jobArgs);
            JobConfig config = JobConfig.parse(jobArgs.toArray(String[]::new));
            ModelBundle bundle = SeqScoreJob.loadModel(config);
            PipelineSettings settings = PipelineSettings.from(config, bundle);
            List<Path> swapBundles = List.of();
            Expected expected = null;
            if (modelSwaps > 0) {
                // Published bundles every TaskManager process reads (same machine: absolute paths).
                Path models = root.resolve("models/default");
                swapBundles = List.of(dev.seqscore.offline.BundleCopies.retrained(models, workDir.resolve("models/a"), "-a"),
                        dev.seqscore.offline.BundleCopies.retrained(models, workDir.resolve("models/b"), "-b"));
                String copied = ModelBundle.locate(swapBundles.get(0).toString()).served(options.get(SCORING))
                        .modelVersion();
                if (!copied.equals(settings.served.modelVersion() + "-a")) {
                    throw new ConfigException("the job jar's model " + settings.served.modelVersion() + " is not "
                            + models + "'s (" + copied + " after the copy): rebuild (bin/seqscore build)");
                }
                say("model swaps: " + modelSwaps + ", alternating between " + swapBundles + "; the backtest runs "
                        + "once their effective times are known, after the injections");
            } else {
                say("backtest of the same events (in-process MiniCluster, model " + settings.served.modelVersion()
                        + "), while the broker and the cluster start...");
                expected = expected(input, settings);
            }

            try {
                cluster = clusterUp.join();
            } catch (CompletionException e) {
                throw new IllegalStateException("the broker or the cluster did not start: "
                        + e.getCause().getMessage(), e.getCause());
            }
            broker.createTopics(PARTITIONS, clicks, alerts, scores, dlq);
            if (modelSwaps > 0) {
                broker.createTopics(1, modelControl, modelStatus);
                status = new ModelStatusWatcher(broker.bootstrapServers(), modelStatus);
                status.start();
            }
            say("Kafka broker (KRaft, transaction.version=1) at " + broker.bootstrapServers() + ", pid "
                    + broker.pid());
            say("Flink cluster: JobManager pid " + cluster.jobManager().pid() + ", TaskManagers "
                    + describe(cluster.taskManagers()) + ", REST " + cluster.restUrl());

            watcher = new OutputWatcher(broker.bootstrapServers(), alerts, scores, dlq);
            watcher.start();
            feeder = new InputFeeder(input, broker.bootstrapServers(), clicks, rate);

            Run r = new Run(cluster, broker, watcher, feeder, setup, jobArgs, workDir, input, expected,
                    settings.outputNames());
            r.status = status;
            r.swapBundles = swapBundles;
            r.controlTopic = modelControl;
            r.swapsRequested = modelSwaps;
            r.requestPrefix = "drill-" + suffix + "-swap-";
            r.rate = rate;
            r.job = cluster.submitWithCli(jar, null, jobArgs);
            cluster.waitForRunning(r.job, options.get(RECOVERY_TIMEOUT));
            r.firstRunningNanos = System.nanoTime();
            say("job " + r.job + " submitted with flink run, RUNNING on " + cluster.taskManagersOf(r.job));
            feeder.start();
            long firstOutput = watcher.awaitProgressAfter(0, options.get(RECOVERY_TIMEOUT));
            if (firstOutput < 0) {
                throw new IllegalStateException("no committed output within " + options.get(RECOVERY_TIMEOUT)
                        + "; job exceptions: " + cluster.exceptions(r.job));
            }
            say("committed output flowing");

            int n = 0;
            long lastRecovered = System.nanoTime();
            Kind previous = null;
            for (Kind kind : plan) {
                if (previous != Kind.MODEL_SWAP) {
                    // A TaskManager kill follows a swap at once: the swap just took effect, the restore must keep it.
                    pauseUntil(lastRecovered + options.get(GAP).toNanos(), r);
                }
                previous = kind;
                Injection inj = new Injection(++n, kind);
                r.injections.add(inj);
                if (feeder.done()) {
                    inj.note = "input already all in Kafka; ";
                }
                switch (kind) {
                    case TM_KILL -> r.killTaskManager(inj);
                    case BROKER_RESTART -> r.restartBroker(inj);
                    case SAVEPOINT_RESUME -> r.savepointAndResume(inj);
                    case RESUBMISSION -> r.resubmit(inj);
                    case MODEL_SWAP -> r.swapModels(inj);
                }
                say(r.describe(inj));
                if (inj.flowingNanos < 0) {
                    r.failures.add("injection " + inj.number + " (" + kind.label + ") did not recover within "
                            + options.get(RECOVERY_TIMEOUT));
                    break;
                }
                lastRecovered = inj.endNanos();
            }
            feeder.speedUp(rate * 20);
            if (r.expected == null) {
                say("backtest of the same events with the job's model schedule (" + r.controls.size()
                        + " accepted swap(s)), in-process MiniCluster...");
                r.expected = expected(input, PipelineSettings.from(config, bundle, r.controls));
            }
            r.drain(options.get(DRAIN_TIMEOUT), options.get(SETTLE));
            r.measureLeaks();
            Report report = r.report(rate);
            System.out.println(report.text());
            System.out.println(report.json());
            return report.passed() ? 0 : 1;
        } catch (Exception e) {
            System.err.println("drill: " + e.getMessage());
            if (cluster != null) {
                Path logs = workDir.resolve("failure-logs.txt");
                Files.writeString(logs, cluster.logs(200));
                System.err.println("drill: cluster log tails in " + logs);
            }
            throw e;
        } finally {
            if (feeder != null) {
                feeder.close();
            }
            if (watcher != null) {
                watcher.close();
            }
            if (status != null) {
                status.close();
            }
            if (cluster != null) {
                cluster.close();
            }
            if (broker != null) {
                broker.close();
            }
        }
    }

    private Expected expected(DrillInput input, PipelineSettings settings) throws Exception {
        Expected expected = Expected.of(input, settings);
        say(String.format(Locale.ROOT, "expected: %,d scores, %,d alerts, %d dead letters",
                expected.scores().size(), expected.alerts().size(), expected.deadLetters().size()));
        return expected;
    }

    /**
     * Seconds of input the swaps get in the rate's spread: each waits for its effective time (5 s of input ahead) and
     * two checkpoints (ACCEPTED, ACTIVE), about 10 s, and with 2 or more a look at the TaskManagers.
     */
    static double swapSeconds(int modelSwaps) {
        return 15.0 * modelSwaps;
    }

    /**
     * The plan with {@code modelSwaps} model swaps as one step in its middle: right before its middle TaskManager
     * kill, so that a TaskManager is killed as soon as the swaps took effect; without kills, in the middle.
     */
    static List<Kind> plan(int tmKills, int brokerRestarts, int savepointResumes, int resubmissions,
            int modelSwaps) {
        List<Kind> out = new ArrayList<>(plan(tmKills, brokerRestarts, savepointResumes, resubmissions));
        if (modelSwaps > 0) {
            List<Integer> kills = new ArrayList<>();
            for (int i = 0; i < out.size(); i++) {
                if (out.get(i) == Kind.TM_KILL) {
                    kills.add(i);
                }
            }
            out.add(kills.isEmpty() ? out.size() / 2 : kills.get(kills.size() / 2), Kind.MODEL_SWAP);
        }
        return out;
    }

    /** The injections in order: kills, broker restarts and savepoint resumes interleaved, then resubmissions. */
    static List<Kind> plan(int tmKills, int brokerRestarts, int savepointResumes, int resubmissions) {
        List<Kind> out = new ArrayList<>();
        for (int round = 0; round < Math.max(tmKills, Math.max(brokerRestarts, savepointResumes)); round++) {
            if (round < tmKills) {
                out.add(Kind.TM_KILL);
            }
            if (round < brokerRestarts) {
                out.add(Kind.BROKER_RESTART);
            }
            if (round < savepointResumes) {
                out.add(Kind.SAVEPOINT_RESUME);
            }
        }
        for (int i = 0; i < resubmissions; i++) {
            out.add(Kind.RESUBMISSION);
        }
        return out;
    }

    /**
     * The cluster as the drill runs it: restarts without limit (a production job must come back from every
     * failure), a short restart delay, and the latest checkpoint kept on cancel, so that a cancelled job can be
     * resubmitted from it. Heartbeats are Flink's defaults: what a user's cluster does.
     */
    static Map<String, String> clusterConfig() {
        Map<String, String> c = new LinkedHashMap<>();
        c.put("restart-strategy.type", "fixed-delay");
        c.put("restart-strategy.fixed-delay.attempts", Integer.toString(Integer.MAX_VALUE));
        c.put("restart-strategy.fixed-delay.delay", "1 s");
        c.put("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION");
        c.put("taskmanager.numberOfTaskSlots", "2");
        return c;
    }

    private void pauseUntil(long nanos, Run r) throws InterruptedException {
        while (System.nanoTime() < nanos) {
            r.watcher.check();
            r.feeder.check();
            Thread.sleep(200); // poll interval of a deadline loop
        }
    }

    private String elapsed() {
        return String.format(Locale.ROOT, "+%5.1fs", (System.nanoTime() - t0) / 1e9);
    }

    void say(String message) {
        System.out.println("drill " + elapsed() + " " + message);
        System.out.flush();
    }

    static String describe(List<StandaloneCluster.TaskManager> tms) {
        return tms.stream().map(t -> t.resourceId() + " (pid " + t.pid() + ")").toList().toString();
    }

    /** The state of one drill run and the steps that act on it. */
    final class Run {
        final StandaloneCluster cluster;
        final BrokerProcess broker;
        final OutputWatcher watcher;
        final InputFeeder feeder;
        final ClusterSetup setup;
        final Path jar;
        final List<String> jobArgs;
        final Path workDir;
        final DrillInput input;
        Expected expected;
        final List<Injection> injections = new ArrayList<>();
        final List<String> failures = new ArrayList<>();
        final List<String> jobs = new ArrayList<>();
        final Map<Long, String> tmNames = new HashMap<>();
        final List<String> outputNames;
        final Duration checkpointInterval = options.get(CHECKPOINT_INTERVAL);
        String job;
        String jarId;
        long firstRunningNanos;
        long endNanos;
        JvmProbe.Sample[] baseline;
        List<String> baselineTms = List.of();
        LeakCount leaks;
        LeakCount leaksAfterCancel;
        // Model swaps.
        ModelStatusWatcher status;
        List<Path> swapBundles = List.of();
        String controlTopic;
        String requestPrefix;
        double rate;
        int swapsRequested;
        /** The control records every subtask accepted, in order: the job's schedule, and the backtest's. */
        final List<ModelControl> controls = new ArrayList<>();
        /** Per swap: seconds from the control record to every subtask's ACCEPTED, and to every ACTIVE. */
        final List<double[]> swapSeconds = new ArrayList<>();
        /** With 2 or more swaps: the TaskManagers before the first swap, then after each. */
        final List<List<TmLook>> swapLooks = new ArrayList<>();

        Run(StandaloneCluster cluster, BrokerProcess broker, OutputWatcher watcher, InputFeeder feeder,
                ClusterSetup setup, List<String> jobArgs, Path workDir, DrillInput input, Expected expected,
                List<String> outputNames) {
            this.cluster = cluster;
            this.outputNames = outputNames;
            this.broker = broker;
            this.watcher = watcher;
            this.feeder = feeder;
            this.setup = setup;
            this.jar = setup.jar();
            this.jobArgs = jobArgs;
            this.workDir = workDir;
            this.input = input;
            this.expected = expected;
        }

        private Duration timeout() {
            return options.get(RECOVERY_TIMEOUT);
        }

        /** kill -9 of a TaskManager that runs the job, a fresh one started at once; the job must restart. */
        void killTaskManager(Injection inj) throws Exception {
            Set<String> hosts = cluster.taskManagersOf(job);
            StandaloneCluster.TaskManager victim = cluster.taskManagers().stream()
                    .filter(t -> hosts.contains(t.resourceId())).findFirst()
                    .orElse(cluster.taskManagers().get(0));
            int attemptBefore = cluster.maxAttempt(job);
            inj.detail = victim.resourceId() + " (pid " + victim.pid() + ", running " + hosts + ")";
            LocalTime killedAt = LocalTime.now().truncatedTo(ChronoUnit.MILLIS);
            inj.startNanos = System.nanoTime();
            cluster.killTaskManager(victim);
            CompletableFuture<StandaloneCluster.TaskManager> fresh = CompletableFuture.supplyAsync(() -> {
                try {
                    return cluster.startTaskManager();
                } catch (Exception e) {
                    throw new IllegalStateException("a fresh TaskManager did not start: " + e, e);
                }
            });
            awaitRestartedAndRunning(inj, attemptBefore);
            StandaloneCluster.TaskManager started = fresh.join();
            inj.detail += ", fresh " + started.resourceId() + " (pid " + started.pid() + ")";
            LocalTime noticed = cluster.taskManagerLossNoticed(victim.resourceId(), killedAt);
            if (noticed != null) {
                inj.detail += String.format(Locale.ROOT, ", JobManager noticed the loss after %.1f s",
                        Duration.between(killedAt, noticed).toMillis() / 1000.0);
            }
            awaitFlowing(inj);
        }

        /** kill -9 of the broker and a restart on the same data and port. */
        void restartBroker(Injection inj) throws Exception {
            int attemptBefore = cluster.maxAttempt(job);
            long oldPid = broker.pid();
            inj.startNanos = System.nanoTime();
            broker.kill();
            broker.start();
            long up = System.nanoTime();
            inj.detail = "pid " + oldPid + " -> " + broker.pid() + ", back after "
                    + String.format(Locale.ROOT, "%.1f s", (up - inj.startNanos) / 1e9);
            awaitRunning(inj, up);
            inj.restarts = Math.max(0, cluster.maxAttempt(job) - attemptBefore);
            awaitFlowing(inj);
        }

        /** flink stop with a savepoint, then flink run -s from it. */
        void savepointAndResume(Injection inj) throws Exception {
            String old = job;
            inj.startNanos = System.nanoTime();
            String savepoint = cluster.stopWithSavepoint(job, workDir.resolve("savepoints").toUri().toString());
            job = cluster.submitWithCli(jar, savepoint, jobArgs);
            jobs.add(old);
            inj.detail = "job " + old + " -> " + job + " from " + savepoint;
            awaitRunning(inj, inj.startNanos);
            awaitFlowing(inj);
        }

        /**
         * Cancel, then a resubmission through the REST API from the retained checkpoint, as from the web UI; then
         * the memory, native libraries and class loaders of every process are sampled.
         */
        void resubmit(Injection inj) throws Exception {
            if (jarId == null) {
                baselineTms = cluster.taskManagers().stream().map(StandaloneCluster.TaskManager::resourceId)
                        .toList();
                baseline = sampleAll();
                jarId = cluster.uploadJar(jar);
            }
            String old = job;
            inj.startNanos = System.nanoTime();
            cluster.cancel(job);
            String checkpoint = cluster.latestCheckpoint(old);
            if (checkpoint == null) {
                throw new IllegalStateException("job " + old + " retained no checkpoint to resubmit from");
            }
            job = cluster.runJar(jarId, checkpoint, jobArgs);
            jobs.add(old);
            inj.detail = "job " + old + " -> " + job + " from " + checkpoint.substring(checkpoint.lastIndexOf('/',
                    checkpoint.lastIndexOf('/') - 1) + 1);
            awaitRunning(inj, inj.startNanos);
            awaitFlowing(inj);
            Set<String> hosts = cluster.taskManagersOf(job);
            inj.detail += " on " + hosts;
            // The previous job's loaders go a few seconds after it: sample once they have, so that a trend across
            // resubmissions is not a matter of timing.
            settledLoaders(tm -> hosts.contains(tm) ? 1 : 0, 2, Duration.ofSeconds(30));
            inj.samples = sampleAll();
        }

        /**
         * The model swaps: for each, a control record that publishes the other bundle copy as the serving model from
         * an event time just ahead of the input sent so far, then every scorer subtask's ACCEPTED (visible once the
         * checkpoint that holds the schedule completed) and ACTIVE (the scorer's watermark passed it, the old
         * model's session closed). With 2 or more swaps, the TaskManagers are looked at (after full GCs) before the
         * first and after each: RSS, user-code class loaders, live ORT sessions and scorers.
         */
        void swapModels(Injection inj) throws Exception {
            Set<String> hosts = cluster.taskManagersOf(job);
            boolean sample = swapsRequested > 1;
            inj.startNanos = System.nanoTime();
            if (sample) {
                swapLooks.add(lookAtTaskManagers());
            }
            List<String> versions = new ArrayList<>();
            try (KafkaProducer<String, String> producer = controlProducer()) {
                for (int i = 1; i <= swapsRequested; i++) {
                    Path bundle = swapBundles.get((i - 1) % swapBundles.size());
                    ModelControl c = ModelControl.publish(requestPrefix + i, ModelControl.Role.SERVE,
                            bundle.toString(), effectiveAt());
                    long sent = System.nanoTime();
                    producer.send(new ProducerRecord<>(controlTopic, c.requestId(), c.toJson())).get();
                    List<ModelEvent> accepted = awaitAnswers(c, "ACCEPTED", inj);
                    if (accepted == null) {
                        return;
                    }
                    controls.add(c);
                    long acceptedAt = System.nanoTime();
                    List<ModelEvent> active = awaitAnswers(c, "ACTIVE", inj);
                    if (active == null) {
                        return;
                    }
                    inj.runningNanos = System.nanoTime();
                    versions.add(active.get(0).getModelVersion());
                    swapSeconds.add(new double[] {(acceptedAt - sent) / 1e9, (inj.runningNanos - sent) / 1e9});
                    if (sample) {
                        swapLooks.add(i < swapsRequested ? lookAtTaskManagers() : settledLook());
                    }
                }
            } finally {
                inj.detail = String.format(Locale.ROOT, "%d of %d took effect on %s (%s); accepted by every subtask "
                        + "after %s s, active after %s s", swapSeconds.size(), swapsRequested, hosts,
                        versions.size() <= 4 ? String.join(" -> ", versions) : versions.get(0) + " -> ... -> "
                                + versions.get(versions.size() - 1), secondsRange(0), secondsRange(1));
            }
            awaitFlowing(inj);
        }

        private KafkaProducer<String, String> controlProducer() {
            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrapServers());
            p.put(ProducerConfig.ACKS_CONFIG, "all");
            return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
        }

        /**
         * The event time a swap takes effect at: that of the input row {@value #SWAP_LEAD_SECONDS} s of input after
         * the last one handed to the producer. Rows go out in event-time order, so the scorer's watermark (below the
         * newest event it has seen) is before it, and the record reaches every subtask before the watermark does.
         */
        long effectiveAt() {
            int at = feeder.sent() + (int) Math.ceil(Math.max(1, feeder.rate() * SWAP_LEAD_SECONDS));
            if (at >= input.events()) {
                throw new IllegalStateException("the input is (nearly) all sent: no event time is left for model "
                        + "swap " + (controls.size() + 1) + " to take effect at; give a lower --rate or fewer "
                        + "--model-swaps");
            }
            return input.rows().get(at).event().getEventTime().toEpochMilli();
        }

        /** Every scorer subtask's answer with {@code status} to {@code c}; null (and a failure) on a refusal. */
        private List<ModelEvent> awaitAnswers(ModelControl c, String want, Injection inj) throws Exception {
            long deadline = inj.startNanos + timeout().toNanos() * Math.max(1, swapsRequested);
            while (System.nanoTime() < deadline) {
                watcher.check();
                feeder.check();
                status.check();
                List<ModelEvent> refused = status.answers(c.requestId(), "REFUSED");
                if (!refused.isEmpty()) {
                    failures.add("model swap " + c.toJson() + " refused by subtask " + refused.get(0).getSubtask()
                            + ": " + refused.get(0).getReason());
                    inj.note += "refused; ";
                    return null;
                }
                List<ModelEvent> got = status.answers(c.requestId(), want);
                if (!got.isEmpty() && got.size() >= got.get(0).getParallelism()) {
                    return got;
                }
                Thread.sleep(200); // poll interval of a deadline loop
            }
            failures.add("model swap " + c.toJson() + ": not every scorer subtask answered " + want + " within "
                    + timeout());
            inj.note += "no " + want + "; ";
            return null;
        }

        private String secondsRange(int which) {
            if (swapSeconds.isEmpty()) {
                return "-";
            }
            double min = swapSeconds.stream().mapToDouble(v -> v[which]).min().orElse(0);
            double max = swapSeconds.stream().mapToDouble(v -> v[which]).max().orElse(0);
            return min == max || swapSeconds.size() == 1 ? String.format(Locale.ROOT, "%.1f", max)
                    : String.format(Locale.ROOT, "%.1f..%.1f", min, max);
        }

        /** Every live TaskManager after full GCs: RSS, user-code class loaders, live ORT sessions and scorers. */
        List<TmLook> lookAtTaskManagers() throws IOException, InterruptedException {
            List<TmLook> out = new ArrayList<>();
            for (StandaloneCluster.TaskManager tm : cluster.taskManagers()) {
                JvmProbe.Census c = JvmProbe.census(tm.pid(), Set.of(ORT_SESSION, ONNX_SCORER));
                out.add(new TmLook(tm.pid(), tm.resourceId(), JvmProbe.rssKb(tm.pid()), c.userCodeClassLoaders(),
                        c.of(ORT_SESSION), c.of(ONNX_SCORER)));
            }
            return out;
        }

        /**
         * The look after the last swap: again every 2 s for up to 30 s until the sessions, scorers and class loaders
         * are back to what they were before the first swap (a closed model may be released a moment late; one that
         * is still there after that leaked).
         */
        private List<TmLook> settledLook() throws IOException, InterruptedException {
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            List<TmLook> before = swapLooks.get(0);
            while (true) {
                List<TmLook> now = lookAtTaskManagers();
                if (TmLook.sum(now, TmLook::sessions) <= TmLook.sum(before, TmLook::sessions)
                        && TmLook.sum(now, TmLook::scorers) <= TmLook.sum(before, TmLook::scorers)
                        && TmLook.sum(now, TmLook::loaders) <= TmLook.sum(before, TmLook::loaders)
                        || System.nanoTime() > deadline) {
                    return now;
                }
                Thread.sleep(2000); // poll interval of a deadline loop
            }
        }

        /** JobManager first, then every live TaskManager, oldest first. */
        JvmProbe.Sample[] sampleAll() throws IOException, InterruptedException {
            List<JvmProbe.Sample> out = new ArrayList<>();
            out.add(JvmProbe.sample(cluster.jobManager().pid()));
            for (StandaloneCluster.TaskManager tm : cluster.taskManagers()) {
                tmNames.put(tm.pid(), tm.resourceId());
                out.add(JvmProbe.sample(tm.pid()));
            }
            return out.toArray(JvmProbe.Sample[]::new);
        }

        private void awaitRestartedAndRunning(Injection inj, int attemptBefore) throws Exception {
            long deadline = inj.startNanos + timeout().toNanos();
            while (System.nanoTime() < deadline) {
                int attempt = cluster.maxAttempt(job);
                if (attempt > attemptBefore && StandaloneCluster.allRunning(cluster.job(job))) {
                    inj.runningNanos = System.nanoTime();
                    inj.restarts = attempt - attemptBefore;
                    return;
                }
                watcher.check();
                Thread.sleep(200); // poll interval of a deadline loop
            }
            inj.note += "job not RUNNING again; ";
        }

        private void awaitRunning(Injection inj, long notBefore) throws Exception {
            long deadline = inj.startNanos + timeout().toNanos();
            while (System.nanoTime() < deadline) {
                String state = cluster.job(job).path("state").asText();
                if (Set.of("FAILED", "CANCELED", "FINISHED").contains(state)) {
                    throw new IllegalStateException("job " + job + " ended as " + state + ": "
                            + cluster.exceptions(job));
                }
                if (StandaloneCluster.allRunning(cluster.job(job))) {
                    inj.runningNanos = Math.max(System.nanoTime(), notBefore);
                    return;
                }
                Thread.sleep(200); // poll interval of a deadline loop
            }
            inj.note += "job not RUNNING again; ";
        }

        private void awaitFlowing(Injection inj) throws InterruptedException {
            if (inj.runningNanos < 0) {
                return;
            }
            long left = inj.startNanos + timeout().toNanos() - System.nanoTime();
            inj.flowingNanos = watcher.awaitProgressAfter(inj.runningNanos, Duration.ofNanos(Math.max(left, 0)));
            if (inj.flowingNanos < 0) {
                inj.note += "no committed output after it; ";
            }
        }

        String describe(Injection inj) {
            return String.format(Locale.ROOT, "injection %d: %s: %s; RUNNING after %.1f s, output after %.1f s%s%s",
                    inj.number, inj.kind.label, inj.detail, inj.toRunningSeconds(), inj.recoverySeconds(),
                    inj.restarts > 0 ? " (" + inj.restarts + " restart" + (inj.restarts > 1 ? "s" : "") + ")" : "",
                    inj.note.isEmpty() ? "" : " [" + inj.note.trim() + "]");
        }

        /**
         * Waits for the input to be in and the expected output complete, then reads on for {@code settle}; gives up
         * once committed output has stood still for {@code timeout}.
         */
        void drain(Duration timeout, Duration settle) throws Exception {
            long expectedDistinct = expected.scores().size() + expected.alerts().size();
            say(String.format(Locale.ROOT, "injections done; input %,d/%,d in Kafka, waiting for the output "
                    + "(%,d/%,d so far)", feeder.acked(), feeder.total(), watcher.distinct(), expectedDistinct));
            long lastReport = System.nanoTime();
            while (true) {
                watcher.check();
                feeder.check();
                long now = System.nanoTime();
                boolean complete = feeder.done() && watcher.distinct() >= expectedDistinct;
                if (complete) {
                    break;
                }
                long stillSince = Math.max(watcher.lastProgressNanos(), injections.isEmpty() ? 0
                        : injections.get(injections.size() - 1).endNanos());
                if (feeder.done() && now - stillSince > timeout.toNanos()) {
                    failures.add(String.format(Locale.ROOT, "committed output stood still for %s with %,d of "
                            + "%,d outputs; job %s: %s", timeout, watcher.distinct(), expectedDistinct, job,
                            cluster.job(job).path("state").asText()));
                    break;
                }
                if (now - lastReport > Duration.ofSeconds(15).toNanos()) {
                    say(String.format(Locale.ROOT, "input %,d/%,d, output %,d/%,d", feeder.acked(), feeder.total(),
                            watcher.distinct(), expectedDistinct));
                    lastReport = now;
                }
                Thread.sleep(200); // poll interval of a deadline loop
            }
            endNanos = System.nanoTime();
            long settleUntil = endNanos + settle.toNanos();
            while (System.nanoTime() < settleUntil) {
                watcher.check();
                Thread.sleep(200); // poll interval of a deadline loop
            }
            say(String.format(Locale.ROOT, "output %,d distinct of %,d expected (%,d records read)",
                    watcher.distinct(), expectedDistinct, watcher.records()));
        }

        /**
         * User-code class loaders alive after a full GC beyond the running job's own (one in the JobManager, one in
         * each TaskManager that runs its tasks); then, as a cross-check, after cancelling it, when none should be
         * left at all.
         */
        void measureLeaks() throws Exception {
            Set<String> hosts = cluster.taskManagersOf(job);
            // The running job's own: the JobMaster's loader, and for a REST submission the one main() ran in,
            // which the JobManager keeps while the job runs; one in each TaskManager that runs its tasks.
            int jobManagerOwn = 1 + (jarId != null ? 1 : 0);
            leaks = settledLoaders(tm -> hosts.contains(tm) ? 1 : 0, jobManagerOwn, Duration.ofSeconds(60));
            say("class loaders alive beyond the running job's: " + leaks);
            if (options.get(HEAP_DUMPS) && leaks.total() > 0) {
                heapDump("jobmanager", cluster.jobManager().pid());
                for (StandaloneCluster.TaskManager tm : cluster.taskManagers()) {
                    heapDump(tm.resourceId(), tm.pid());
                }
            }
            cluster.cancel(job);
            jobs.add(job);
            // A TaskManager releases a job's class loader once the job's last slot there is freed.
            cluster.awaitAllSlotsFree(Duration.ofSeconds(30));
            leaksAfterCancel = settledLoaders(tm -> 0, 0, Duration.ofSeconds(60));
            say("class loaders alive after cancelling the last job too: " + leaksAfterCancel);
        }

        /**
         * Counts live user-code class loaders after a full GC, again every 2 s for up to {@code patience} until none is
         * left beyond the allowed ones: Flink and the job release a finished job's loader shortly after it ends,
         * not at once, and a loader that is merely late is no leak.
         */
        private LeakCount settledLoaders(ToIntFunction<String> tmAllowed, int jobManagerAllowed, Duration patience)
                throws Exception {
            long deadline = System.nanoTime() + patience.toNanos();
            LeakCount count;
            while (true) {
                count = new LeakCount();
                count.add("JobManager", JvmProbe.userCodeClassLoaders(cluster.jobManager().pid()), jobManagerAllowed);
                for (StandaloneCluster.TaskManager tm : cluster.taskManagers()) {
                    count.add(tm.resourceId(), JvmProbe.userCodeClassLoaders(tm.pid()),
                            tmAllowed.applyAsInt(tm.resourceId()));
                }
                if (count.total() == 0 || System.nanoTime() > deadline) {
                    return count;
                }
                Thread.sleep(2000); // poll interval of a deadline loop
            }
        }

        private void heapDump(String name, long pid) throws IOException, InterruptedException {
            Path file = workDir.resolve("heap-" + name + ".hprof");
            JvmProbe.jcmd(pid, "GC.heap_dump", file.toString());
            say("heap dump of " + name + ": " + file);
        }

        Report report(double rate) {
            return Report.of(this, rate);
        }

        /** "JobManager" or the TaskManager's resource id, for each sample's pid. */
        List<String> processNames(JvmProbe.Sample[] samples) {
            List<String> names = new ArrayList<>();
            for (JvmProbe.Sample s : samples) {
                names.add(s.pid() == cluster.jobManager().pid() ? "JobManager" : tmNames.getOrDefault(s.pid(),
                        "pid " + s.pid()));
            }
            return names;
        }
    }

    /** One TaskManager after full GCs, as the swaps look at it. */
    record TmLook(long pid, String name, long rssKb, int loaders, int sessions, int scorers) {
        static int sum(List<TmLook> looks, ToIntFunction<TmLook> f) {
            return looks.stream().mapToInt(f).sum();
        }
    }

    /** Live user-code class loaders per process, beyond the ones a running job may hold. */
    static final class LeakCount {
        final Map<String, int[]> perProcess = new LinkedHashMap<>();

        void add(String process, int alive, int allowed) {
            perProcess.put(process, new int[] {alive, allowed});
        }

        int total() {
            return perProcess.values().stream().mapToInt(v -> Math.max(0, v[0] - v[1])).sum();
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder();
            perProcess.forEach((p, v) -> sb.append(sb.length() == 0 ? "" : ", ").append(p).append(' ')
                    .append(Math.max(0, v[0] - v[1])).append(" (").append(v[0]).append(" alive)"));
            return sb.append(" = ").append(total()).toString();
        }
    }

    /** The repository root: where bin/seqscore runs from, or -Dseqscore.repo.root. */
    static Path repoRoot() {
        String prop = System.getProperty("seqscore.repo.root");
        if (prop != null) {
            return Path.of(prop).toAbsolutePath();
        }
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isDirectory(p.resolve("e2e")) && Files.isDirectory(p.resolve("flink-job"))) {
                return p;
            }
        }
        throw new ConfigException("run from the repository (bin/seqscore drill) or set -Dseqscore.repo.root");
    }

    /** The cluster setup of {@code --jar} and {@code --allocator}. */
    ClusterSetup setup(Path root) throws IOException {
        String allocatorText = options.get(ALLOCATOR);
        ClusterSetup.Allocator allocator = allocatorText == null || allocatorText.isEmpty()
                ? ClusterSetup.Allocator.recommended() : ClusterSetup.Allocator.parse(allocatorText);
        if (allocator == ClusterSetup.Allocator.JEMALLOC && ClusterSetup.jemallocLibrary().isEmpty()) {
            throw new ConfigException("--allocator jemalloc: jemalloc is not installed (Debian: apt-get install "
                    + "libjemalloc2)");
        }
        String jar = options.get(JAR);
        ClusterSetup setup;
        try {
            setup = switch (jar) {
                case "slim" -> ClusterSetup.of(ClusterSetup.JarKind.SLIM, root, allocator);
                case "shaded" -> ClusterSetup.of(ClusterSetup.JarKind.SHADED, root, allocator);
                default -> {
                    Path path = Path.of(jar);
                    if (!Files.isReadable(path)) {
                        throw new ConfigException("--jar: cannot read " + path + "; give slim, shaded or the path of "
                                + "a job jar (build them with: bin/seqscore build)");
                    }
                    yield ClusterSetup.ofJar(path, root, allocator);
                }
            };
        } catch (IllegalStateException e) {
            throw new ConfigException("--jar " + jar + ": " + e.getMessage());
        }
        return options.get(HEAP_PRE_TOUCH) ? setup.withHeapPreTouch() : setup;
    }

    static ObjectNode json() {
        return JSON.createObjectNode();
    }
}
