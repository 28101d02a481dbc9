package dev.seqscore.tools.demo;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.job.JobConfig;
import dev.seqscore.job.PipelineSettings;
import dev.seqscore.options.Option;
import dev.seqscore.job.KafkaIO;
import dev.seqscore.registry.RegistryEndpoint;
import dev.seqscore.registry.SubjectRegistration;
import dev.seqscore.schemaregistry.ApicurioRegistry;
import dev.seqscore.offline.Bootstrap;
import dev.seqscore.offline.LocalFlink;
import dev.seqscore.offline.files.EventFileReader;
import dev.seqscore.job.SeqScoreJob;
import dev.seqscore.kafka.EmbeddedKafka;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.options.OptionValues;
import dev.seqscore.tools.metrics.PrometheusReporting;
import dev.seqscore.tools.model.ModelCommand;
import dev.seqscore.tools.sim.TrafficSimulator;
import java.io.IOException;
import java.io.PrintStream;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.flink.api.common.JobID;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * Everything the demo runs, started in order and closed in reverse: the embedded broker and its topics, the Flink
 * MiniCluster, the job, and the producer streaming clicks. {@link Demo} adds the live report on top; tests start
 * this directly to check what the running demo does.
 */
final class DemoStack implements AutoCloseable {
    private static final Instant SIMULATION_START = Instant.parse("2017-11-26T01:00:00Z");
    private static final long SEED = 42L;

    final EmbeddedKafka kafka;
    final LocalFlink flink;
    final JobID job;
    final JobConfig config;
    final ModelBundle bundle;
    /** The shadow candidate (--shadow-model), or null. */
    final ModelBundle shadowBundle;
    final ClickFeed feed;
    final ClickProducer producer;
    private final Path checkpoints;
    private final ApicurioRegistry registry;
    private boolean closed;

    private DemoStack(EmbeddedKafka kafka, LocalFlink flink, JobID job, JobConfig config, ModelBundle bundle,
            ModelBundle shadowBundle, ClickFeed feed, ClickProducer producer, Path checkpoints, ApicurioRegistry registry) {
        this.registry = registry;
        this.kafka = kafka;
        this.flink = flink;
        this.job = job;
        this.config = config;
        this.bundle = bundle;
        this.shadowBundle = shadowBundle;
        this.feed = feed;
        this.producer = producer;
        this.checkpoints = checkpoints;
    }

    /** Starts it all from the demo's options, saying what it does on {@code log}; fails before starting on bad input. */
    static DemoStack start(OptionValues options, PrintStream log) throws Exception {
        Path taobao = dataDir(options).resolve("taobao");
        Path sampleFile = taobao.resolve("UserBehavior_sample.csv");
        Path extraFile = taobao.resolve("UserBehavior_extra_95users.csv");
        Path streamFile = taobao.resolve("UserBehavior_timeordered_110k.csv");
        String source = options.get(Demo.SOURCE);
        if (source.equals("auto")) {
            source = Files.isReadable(sampleFile) ? "sample" : "simulator";
        }
        for (Path required : switch (source) {
            case "sample" -> List.of(sampleFile);
            case "stream" -> List.of(streamFile);
            default -> List.<Path>of();
        }) {
            if (!Files.isReadable(required)) {
                throw new IllegalArgumentException("--source " + source + ": cannot read " + required
                        + " (set --data-dir or SEQSCORE_DATA_DIR, or use --source simulator)");
            }
        }
        Boolean warmFlag = options.get(Demo.WARM_START);
        if (Boolean.TRUE.equals(warmFlag) && !source.equals("sample")) {
            throw new IllegalArgumentException("--warm-start needs --source sample: the bootstrap reads the sample's "
                    + "first days");
        }
        boolean warm = source.equals("sample") && !Boolean.FALSE.equals(warmFlag);
        ClickFeed feed;
        String what;
        List<ClickEvent> history = List.of();
        Instant warmUntil = null;
        if (source.equals("sample")) {
            List<ClickEvent> round = new ArrayList<>(ClickFeed.readTaobao(sampleFile));
            if (Files.isReadable(extraFile)) {
                round.addAll(ClickFeed.readTaobao(extraFile));
            }
            if (warm) {
                warmUntil = warmStartCut(round);
                history = SampleReplay.before(round, warmUntil);
            }
            // Clicks from the future are dead letters: the replay ends a day before the wall clock.
            SampleReplay replay = new SampleReplay(round, warmUntil, Instant.now().minus(Duration.ofDays(1)));
            feed = ClickFeed.replayed(replay);
            what = String.format("the Taobao user sample (%,d clicks of %s%s over 9 days) in event-time order, "
                    + "replayed round after round with fresh user ids", replay.roundSize(), sampleFile.getFileName(),
                    Files.isReadable(extraFile) ? " and " + extraFile.getFileName() : "")
                    + (warm ? ", the first round from " + warmUntil + " on (the days before are the warm start's "
                            + "history)" : "");
        } else {
            List<ClickEvent> real = source.equals("stream") ? ClickFeed.readTaobao(streamFile) : List.of();
            Instant simStart = real.isEmpty() ? SIMULATION_START : real.get(0).getEventTime();
            TrafficSimulator sim = new TrafficSimulator(SEED, simStart, options.get(Demo.SIM_SESSIONS),
                    options.get(Demo.SIM_USERS), ClickFeed.SIMULATED_ID_BASE);
            feed = real.isEmpty() ? ClickFeed.simulated(sim) : ClickFeed.mixed(real, sim);
            what = (real.isEmpty() ? "simulated clicks"
                    : String.format("%,d real Taobao clicks from %s with simulated users interleaved by event time",
                            real.size(), streamFile))
                    + "; simulated users: " + options.get(Demo.SIM_USERS) + ", " + options.get(Demo.SIM_SESSIONS)
                    + " sessions per second of event time, ids from " + ClickFeed.SIMULATED_ID_BASE;
        }

        EmbeddedKafka kafka = null;
        LocalFlink flink = null;
        Path checkpoints = null;
        ApicurioRegistry apicurio = null;
        try {
            if (options.get(Demo.START_SCHEMA_REGISTRY)) {
                log.println("demo: starting Apicurio Registry (in-memory, loopback)...");
                apicurio = ApicurioRegistry.start();
                options = options.with(JobConfig.SCHEMA_REGISTRY, apicurio.url());
                log.println("demo: Apicurio Registry at " + apicurio.url());
            }
            log.println("demo: starting an embedded Kafka broker (KRaft)...");
            int kafkaPort = options.get(Demo.KAFKA_PORT);
            kafka = kafkaPort != 0 && portFree(kafkaPort, "the broker", log) ? EmbeddedKafka.start(kafkaPort)
                    : EmbeddedKafka.start();
            checkpoints = Files.createTempDirectory("seqscore-demo-checkpoints");
            JobConfig config = JobConfig.of(Demo.demoDefaults(options, kafka.bootstrapServers(), checkpoints));
            List<String> topics = Stream.of(config.get(JobConfig.INPUT_TOPIC), config.get(JobConfig.ALERTS_TOPIC), config.scoresTopic(),
                    config.get(JobConfig.DEAD_LETTER_TOPIC), config.modelControlTopic(), config.modelStatusTopic(),
                    config.shadowScoresTopic()).filter(t -> !t.isEmpty()).distinct().toList();
            kafka.createTopics(4, topics.toArray(String[]::new));
            log.println("demo: broker at " + kafka.bootstrapServers() + "; topics " + String.join(", ", topics)
                    + " (4 partitions each)");

            ModelBundle bundle = SeqScoreJob.loadModel(config);
            ModelSpec.Served served = PipelineSettings.from(config, bundle).served;
            log.println("demo: " + Option.cliName(served.scoring()) + " scoring, model " + served.modelVersion()
                    + " (" + bundle.onnxPath(served.scoring()) + "), window " + bundle.spec().maxEvents() + " events / "
                    + Duration.ofMillis(bundle.spec().horizonMs()));
            ModelBundle shadowBundle = null;
            String shadowUri = null;
            if (options.get(Demo.SHADOW_MODEL) != null) {
                shadowUri = ModelCommand.locate(options.get(Demo.SHADOW_MODEL).toString());
                shadowBundle = shadowCandidate(config, served, shadowUri);
                log.println("demo: shadow candidate " + shadowBundle.served(served.scoring()).modelVersion() + " ("
                        + shadowUri + ") scores every event beside the serving model, without alerting; its scores "
                        + "go to " + config.shadowScoresTopic()
                        + (warm && served.scoring() == dev.seqscore.features.Scoring.INCREMENTAL
                                ? "; for the warm-started users it starts its recurrent state from zeros, so part of "
                                        + "the difference is the serving model's head start" : ""));
            }

            String bind = options.get(Demo.BIND_ADDRESS);
            int webPort = options.get(Demo.WEB_PORT);
            if (webPort != 0 && !portFree(webPort, "the Flink web UI", log)) {
                webPort = 0;
            }
            int metricsPort = options.get(Demo.METRICS_PORT);
            if (metricsPort != 0 && !portFree(metricsPort, "the Prometheus metrics endpoint", log)) {
                metricsPort = freePort();
            }
            flink = LocalFlink.start(bind, webPort, config.get(JobConfig.PARALLELISM),
                    flinkOverrides(bind, metricsPort, options.get(Demo.FLINK)));
            String savepoint = null;
            if (warm) {
                savepoint = warmStart(flink, config, history, warmUntil, checkpoints, log);
            } else if (source.equals("sample")) {
                log.println("demo: cold start (--warm-start=false): every user's window starts empty");
            }
            StreamExecutionEnvironment env = flink.environment();
            SeqScoreJob.assemble(env, config, bundle);
            JobID job = flink.submit(env, "SeqScore demo", savepoint);
            String host = LocalFlink.clientAddress(bind);
            log.println("demo: job " + job + " submitted; Flink web UI and REST API: " + flink.restAddress()
                    + (metricsPort == 0 ? "" : "; Prometheus metrics: http://" + host + ":" + metricsPort + "/metrics"));
            log.println("demo: checkpoints in " + checkpoints + "; state backend " + (config.get(JobConfig.STATE_BACKEND) == null
                    ? "hashmap (--state-backend rocksdb for large state)"
                    : Option.cliName(config.get(JobConfig.STATE_BACKEND))));
            describeListeners(bind, log);

            Integer schemaId = null;
            RegistryEndpoint registry = KafkaIO.registry(config);
            if (registry != null) {
                // As a registry-aware producer would: register (or find) the schema, then frame with its id.
                schemaId = SubjectRegistration.register(registry, config.get(JobConfig.INPUT_TOPIC), ClickEvent.getClassSchema());
                log.println("demo: schema registry " + registry.url() + ": clicks are framed with ClickEvent's id "
                        + schemaId + " (subject " + SubjectRegistration.valueSubject(config.get(JobConfig.INPUT_TOPIC))
                        + "); alerts, scores and dead letters are framed with the ids of their own subjects");
            }
            if (shadowBundle != null) {
                publishShadow(config, shadowUri, registry != null, log);
            }
            ClickProducer producer = new ClickProducer(kafka.bootstrapServers(), config.get(JobConfig.INPUT_TOPIC), feed,
                    options.get(Demo.RATE), options.get(Demo.BAD_EVERY), schemaId).start();
            log.println("demo: streaming " + what + ", at " + options.get(Demo.RATE) + " clicks/s");
            return new DemoStack(kafka, flink, job, config, bundle, shadowBundle, feed, producer, checkpoints, apicurio);
        } catch (Exception | Error e) {
            closeQuietly(flink);
            closeQuietly(kafka);
            closeQuietly(apicurio);
            deleteQuietly(checkpoints);
            throw e;
        }
    }

    /**
     * The candidate as the job will load it, refused here when the job would refuse it for its outputs: the report
     * compares the two models output by output.
     */
    static ModelBundle shadowCandidate(JobConfig config, ModelSpec.Served served, String uri) {
        ModelBundle candidate = ModelBundle.locate(uri);
        ModelSpec.Served theirs;
        try {
            theirs = PipelineSettings.from(config, candidate).served;
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--" + Demo.SHADOW_MODEL.name() + " " + uri + " cannot shadow here: "
                    + e.getMessage(), e);
        }
        if (!theirs.outputNames().equals(served.outputNames())) {
            throw new IllegalArgumentException("--" + Demo.SHADOW_MODEL.name() + " " + uri + " has the outputs "
                    + theirs.outputNames() + ", the serving model " + served.outputNames() + ": a candidate must "
                    + "have the serving model's outputs");
        }
        return candidate;
    }

    /**
     * Publishes the candidate on the job's control topic, as {@code bin/seqscore model publish --role shadow} does,
     * and waits for every scorer subtask to accept it, before any click is sent: the scorers' watermark is still at
     * its minimum, so a change effective from event time 0 (before every click the demo sends) cannot be late, and
     * every click is scored by both models.
     */
    private static void publishShadow(JobConfig config, String uri, boolean framed, PrintStream log) {
        List<String> args = new ArrayList<>(List.of("publish", uri, "--role", "shadow", "--skip-check", "true",
                "--effective-at", "0", "--timeout", "2m",
                "--bootstrap-servers", config.get(JobConfig.BOOTSTRAP_SERVERS),
                "--model-control-topic", config.modelControlTopic(),
                "--model-status-topic", config.modelStatusTopic()));
        if (framed) {
            args.addAll(List.of("--registry-framed", "true"));
        }
        log.println("demo: publishing the shadow candidate on " + config.modelControlTopic() + " and waiting for "
                + "every scorer subtask's answer on " + config.modelStatusTopic() + " before the first click...");
        int code = ModelCommand.run(args.toArray(String[]::new), log, log);
        if (code != 0) {
            throw new IllegalStateException("the job did not accept the shadow candidate " + uri + " (bin/seqscore "
                    + "model publish exit code " + code + ", the answers are above)");
        }
    }

    /** T of the demo's warm start: midnight (China time, the data's) after the sample's first 7 days. */
    static Instant warmStartCut(List<ClickEvent> round) {
        Instant first = round.stream().map(ClickEvent::getEventTime).min(Instant::compareTo).orElseThrow();
        Duration china = Duration.ofHours(8);
        Instant firstMidnight = first.plus(china).truncatedTo(java.time.temporal.ChronoUnit.DAYS).minus(china);
        return firstMidnight.plus(Duration.ofDays(7));
    }

    /**
     * Writes the history as a canonical CSV and bootstraps the job's state from it on the demo's cluster, exactly as
     * {@code bin/seqscore bootstrap} does; returns the savepoint to start the job from.
     */
    private static String warmStart(LocalFlink flink, JobConfig config, List<ClickEvent> history, Instant until,
            Path work, PrintStream log) throws Exception {
        Path file = work.resolve("warm-start-history.csv");
        try (java.io.BufferedWriter w = Files.newBufferedWriter(file)) {
            w.write("user_id,item_id,category_id,event_type,event_time\n");
            for (ClickEvent c : history) {
                w.write(c.getUserId() + "," + c.getItemId() + "," + c.getCategoryId() + "," + c.getEventType() + ","
                        + c.getEventTime().toEpochMilli() + "\n");
            }
        }
        Path savepoint = work.resolve("warm-start-savepoint");
        log.println(String.format("demo: warm start: bootstrapping the job's state from the sample's %,d clicks before "
                + "%s (bin/seqscore bootstrap)...", history.size(), until));
        Bootstrap.Result r = Bootstrap.run(flink.environment(config.get(JobConfig.PARALLELISM)), config,
                Bootstrap.Request.file(file.toString(), EventFileReader.Format.CANONICAL, until.toEpochMilli(),
                        savepoint.toString()), log);
        log.println(String.format("demo: warm start: %,d users with state from %,d events in %.1f s; the job starts "
                + "from %s", r.users(), r.events(), r.seconds(), savepoint));
        return savepoint.toString();
    }

    /** What the producer has sent so far. */
    DemoReport.Input input() {
        return new DemoReport.Input(producer.sent(), producer.malformed(), feed.realSent(), feed.realUsers(),
                feed.simulatedSent(), feed.simulatedUsers());
    }

    /** Stops the producer, cancels the job, then stops the cluster and the broker. Safe to call twice. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            producer.close();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        flink.cancel(job);
        closeQuietly(flink);
        closeQuietly(kafka);
        closeQuietly(registry);
        deleteQuietly(checkpoints);
    }

    /**
     * The demo cluster's Flink options beyond addresses and ports: the metrics reporter (Flink's Prometheus mapping
     * served on the bind address, as the stock reporter would listen on every interface; none for port 0), then the
     * user's {@code --flink.<key>} entries, which win.
     */
    static Map<String, String> flinkOverrides(String bindAddress, int metricsPort, Map<String, String> user) {
        Map<String, String> out = new LinkedHashMap<>();
        if (metricsPort > 0) {
            out.putAll(PrometheusReporting.configuration(bindAddress, metricsPort).toMap());
        }
        out.putAll(user);
        return out;
    }

    private static Path dataDir(OptionValues options) {
        Path given = options.get(Demo.DATA_DIR);
        return given != null ? given
                : Path.of(System.getenv().getOrDefault("SEQSCORE_DATA_DIR", "../shared/data"));
    }

    private static void describeListeners(String bind, PrintStream log) throws IOException {
        if (!ListeningSockets.supported()) {
            return;
        }
        List<ListeningSockets.Listener> all = ListeningSockets.ofThisProcess();
        List<ListeningSockets.Listener> open = ListeningSockets.beyondLoopback(all);
        log.println("demo: this JVM listens on " + all.stream().map(Object::toString).toList()
                + (open.isEmpty() ? ": loopback only (--bind-address opens Flink's ports to the network)"
                        : "; reachable from the network: " + open + (bind.equals(LocalFlink.LOOPBACK) ? ""
                                : " (--bind-address " + bind + ")")));
    }

    private static boolean portFree(int port, String what, PrintStream log) {
        try (ServerSocket s = new ServerSocket(port, 1, java.net.InetAddress.getLoopbackAddress())) {
            return true;
        } catch (IOException e) {
            log.println("demo: port " + port + " is taken; " + what + " gets a free port instead");
            return false;
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (Exception e) {
            System.err.println("demo: while stopping: " + e);
        }
    }

    private static void deleteQuietly(Path dir) {
        if (dir == null) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // A temp directory: the OS cleans it up eventually.
        }
    }
}
