package dev.seqscore.e2e.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.e2e.os.ChildProcess;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * A real Flink standalone session cluster: one JobManager and N TaskManagers, each its own {@code java} OS process
 * started from the Flink jars in the local Maven repository, the way {@code jobmanager.sh} and
 * {@code taskmanager.sh} of a Flink distribution start them (flink-dist is not on Maven Central). Jobs reach it only
 * as the jar: through {@code flink run} (Flink's own CLI, {@code CliFrontend}, in a process of its own, where
 * {@code main()} runs) or through the REST API's jar upload and run (where {@code main()} runs inside the
 * JobManager, as from the web UI). Nothing of the job is on the cluster's classpath.
 *
 * <pre>{@code
 * try (StandaloneCluster cluster = StandaloneCluster.start(workDir, classpath, 2, Map.of())) {
 *     String job = cluster.submitWithCli(jar, null, List.of("--flag", "value"));
 *     cluster.waitForRunning(job, Duration.ofSeconds(60));
 *     cluster.killTaskManager(cluster.taskManagers().get(0));   // kill -9
 *     cluster.startTaskManager();
 *     String savepoint = cluster.stopWithSavepoint(job, savepointDir);
 *     ...
 * }
 * }</pre>
 *
 * <p>Every process's output and Flink log go to files under the work directory; {@link #logs(int)} returns their
 * tails for a failure message. All listeners are on 127.0.0.1, on free ports.
 */
public final class StandaloneCluster implements AutoCloseable {
    /**
     * The JVM flags Flink's own config.yaml sets in {@code env.java.opts.all} for Java 17: Flink's serializers, RPC
     * and network stack reflect into these JDK packages. {@code flink run} needs them as well.
     */
    public static final List<String> JAVA17_OPENS = List.of(
            "--add-exports=java.base/sun.net.util=ALL-UNNAMED",
            "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
            "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
            "--add-opens=java.base/java.lang=ALL-UNNAMED",
            "--add-opens=java.base/java.net=ALL-UNNAMED",
            "--add-opens=java.base/java.io=ALL-UNNAMED",
            "--add-opens=java.base/java.nio=ALL-UNNAMED",
            "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
            "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
            "--add-opens=java.base/java.text=ALL-UNNAMED",
            "--add-opens=java.base/java.time=ALL-UNNAMED",
            "--add-opens=java.base/java.util=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED");

    private static final String JM_MAIN = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint";
    private static final String TM_MAIN = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner";
    private static final String CLI_MAIN = "org.apache.flink.client.cli.CliFrontend";
    private static final String BASH_JAVA_UTILS = "org.apache.flink.runtime.util.bash.BashJavaUtils";
    private static final String RESULT_PREFIX = "BASH_JAVA_UTILS_EXEC_RESULT:";
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(120);
    /** {@code flink run} runs main(): loading the model and building the graph on a busy machine take a while. */
    private static final Duration CLI_TIMEOUT = Duration.ofMinutes(4);
    private static final Pattern JOB_ID = Pattern.compile("JobID ([0-9a-f]{32})");
    private static final Pattern SAVEPOINT_PATH = Pattern.compile("Savepoint completed\\. Path: (\\S+)");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A TaskManager process and the resource id it registered with. */
    public record TaskManager(String resourceId, ChildProcess process) {
        public long pid() {
            return process.pid();
        }
    }

    private final Path workDir;
    private final Path confDir;
    private final String classpath;
    private final int restPort;
    private final Map<String, String> processEnv;
    private final Map<String, String> conf = new LinkedHashMap<>();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final List<Path> logFiles = new CopyOnWriteArrayList<>();
    private final List<TaskManager> taskManagers = new CopyOnWriteArrayList<>();
    private final AtomicInteger taskManagerCount = new AtomicInteger();
    private final AtomicInteger cliCount = new AtomicInteger();
    private ChildProcess jobManager;
    private List<String> tmResources;

    private StandaloneCluster(Path workDir, List<Path> classpath, int restPort, Map<String, String> processEnv) {
        this.workDir = workDir;
        this.processEnv = Map.copyOf(processEnv);
        this.confDir = workDir.resolve("conf");
        this.classpath = classpath.stream().map(Path::toString).collect(Collectors.joining(java.io.File.pathSeparator));
        this.restPort = restPort;
    }

    /** One JobManager and one TaskManager; see {@link #start(Path, List, int, Map)}. */
    public static StandaloneCluster start(Path workDir, List<Path> classpath, Map<String, String> confOverrides)
            throws IOException, InterruptedException {
        return start(workDir, classpath, 1, confOverrides);
    }

    /**
     * Starts a JobManager and {@code taskManagers} TaskManagers and returns once they have all registered; on any
     * failure the processes started so far are stopped and the exception carries the tails of their logs.
     *
     * @param workDir       fresh directory for configuration, logs, uploads and temporary files
     * @param classpath     the Flink runtime jars (and a logging backend); must not hold the job under test
     * @param confOverrides config.yaml entries that win over this class's defaults
     */
    public static StandaloneCluster start(Path workDir, List<Path> classpath, int taskManagers,
            Map<String, String> confOverrides) throws IOException, InterruptedException {
        return start(workDir, classpath, taskManagers, confOverrides, Map.of());
    }

    /**
     * As {@link #start(Path, List, int, Map)}, with environment variables for the JobManager and TaskManager
     * processes, as a container image or a service manager sets them: e.g. the C allocator of
     * {@link ClusterSetup.Allocator}.
     */
    public static StandaloneCluster start(Path workDir, List<Path> classpath, int taskManagers,
            Map<String, String> confOverrides, Map<String, String> processEnv)
            throws IOException, InterruptedException {
        Files.createDirectories(workDir);
        StandaloneCluster c = new StandaloneCluster(workDir.toAbsolutePath(), classpath, ChildProcess.freePort(),
                processEnv);
        try {
            c.writeConfig(confOverrides);
            List<String> jm = c.bashJavaUtils("jobmanager", "GET_JM_RESOURCE_PARAMS");
            c.jobManager = c.launch("jobmanager", JM_MAIN, jm, List.of(), "jobmanager");
            c.tmResources = c.bashJavaUtils("taskmanager", "GET_TM_RESOURCE_PARAMS");
            for (int i = 0; i < taskManagers; i++) {
                c.startTaskManager();
            }
            return c;
        } catch (IOException | InterruptedException | RuntimeException | Error e) {
            String logs = c.logs(60);
            c.close();
            throw new IllegalStateException("standalone Flink cluster did not start: " + e + "\n" + logs, e);
        }
    }

    /**
     * The Flink runtime classpath for a cluster: the entries of a Maven-built classpath file (such as the e2e
     * module's {@code target/classpath.txt}) minus everything that the job jar brings itself. Dropped: the seqscore
     * modules, so that the job can only arrive as the uploaded jar; and the Flink connector and format jars the job
     * shades, because {@code org.apache.flink.*} is loaded parent-first, so a copy on the cluster would silently
     * stand in for the job's own and hide a shading mistake.
     */
    public static List<Path> flinkClasspath(Path classpathFile) throws IOException {
        if (!Files.isRegularFile(classpathFile)) {
            throw new IllegalStateException(classpathFile + " is missing: it is written by `mvn package` of the "
                    + "e2e module (maven-dependency-plugin build-classpath)");
        }
        Set<String> jobBundled = Set.of("flink-connector-kafka", "flink-connector-base", "flink-avro");
        String text = Files.readString(classpathFile).trim();
        List<Path> out = new ArrayList<>();
        for (String entry : text.split(java.io.File.pathSeparator)) {
            Path p = Path.of(entry);
            String name = p.getFileName().toString();
            boolean seqscore = name.startsWith("seqscore-") || !name.endsWith(".jar");
            boolean bundled = jobBundled.stream().anyMatch(a -> name.startsWith(a + "-"));
            if (!seqscore && !bundled) {
                out.add(p);
            }
        }
        return out;
    }

    /** Base URL of the REST API, e.g. {@code http://127.0.0.1:40123}. */
    public String restUrl() {
        return "http://127.0.0.1:" + restPort;
    }

    public Path workDir() {
        return workDir;
    }

    public ChildProcess jobManager() {
        return jobManager;
    }

    /** The TaskManagers started here that are still alive, oldest first. */
    public List<TaskManager> taskManagers() {
        return taskManagers.stream().filter(t -> t.process().isAlive()).toList();
    }

    /**
     * Starts one more TaskManager (resource id {@code tm-N}) and returns once the ResourceManager lists it.
     */
    public TaskManager startTaskManager() throws IOException, InterruptedException {
        String id = "tm-" + taskManagerCount.incrementAndGet();
        ChildProcess p = launch(id, TM_MAIN, tmResources, List.of("-D", "taskmanager.resource-id=" + id),
                "taskmanager");
        TaskManager tm = new TaskManager(id, p);
        taskManagers.add(tm);
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        String last = "no answer yet";
        while (System.nanoTime() < deadline) {
            if (!jobManager.isAlive()) {
                throw new IllegalStateException("the JobManager exited with " + jobManager.exitValue());
            }
            if (!p.isAlive()) {
                throw new IllegalStateException("TaskManager " + id + " exited with " + p.exitValue());
            }
            try {
                JsonNode tms = get("/taskmanagers");
                for (JsonNode t : tms.path("taskmanagers")) {
                    if (t.path("id").asText().equals(id)) {
                        return tm;
                    }
                }
                last = tms.toString();
            } catch (IOException | IllegalStateException e) {
                last = e.toString(); // REST endpoint not up yet
            }
            Thread.sleep(250); // poll interval of a deadline loop
        }
        throw new IllegalStateException("TaskManager " + id + " not registered within " + READY_TIMEOUT + "; last: "
                + last);
    }

    /** {@code kill -9} of a TaskManager: no deregistration; the JobManager finds out by heartbeat or RPC failure. */
    public void killTaskManager(TaskManager tm) {
        tm.process().kill();
    }

    /**
     * {@code flink run -d [-s savepoint] jar args}: Flink's CLI in a process of its own, with this cluster's conf
     * directory, as a user would submit. {@code main()} runs in the CLI process.
     *
     * @param savepoint a savepoint or retained checkpoint to restore, or null
     * @return the job id the CLI printed
     */
    public String submitWithCli(Path jar, String savepoint, List<String> args) throws IOException,
            InterruptedException {
        List<String> cli = new ArrayList<>(List.of("run", "-d"));
        if (savepoint != null) {
            cli.add("-s");
            cli.add(savepoint);
        }
        cli.add(jar.toAbsolutePath().toString());
        cli.addAll(args);
        String out = cli(cli);
        Matcher m = JOB_ID.matcher(out);
        if (!m.find()) {
            throw new IllegalStateException("flink run printed no JobID:\n" + out);
        }
        return m.group(1);
    }

    /**
     * {@code flink <args>} run attached from the CLI, e.g. {@code run -c dev.seqscore.offline.Bootstrap jar ...}:
     * {@code main()} runs in the CLI process and waits for its job. Returns what the CLI printed.
     *
     * @throws IllegalStateException with the output, if the CLI exits non-zero
     */
    public String runCli(List<String> args) throws IOException, InterruptedException {
        return cli(args);
    }

    /**
     * {@code flink stop -p dir jobId}: a stop-with-savepoint through the CLI. The sources stop, a savepoint is taken
     * and committed by the sinks, and the job finishes.
     *
     * @return the savepoint's path
     */
    public String stopWithSavepoint(String jobId, String targetDirectory) throws IOException, InterruptedException {
        String out = cli(List.of("stop", "-p", targetDirectory, jobId));
        Matcher m = SAVEPOINT_PATH.matcher(out);
        if (!m.find()) {
            throw new IllegalStateException("flink stop printed no savepoint path:\n" + out);
        }
        return m.group(1);
    }

    private String cli(List<String> args) throws IOException, InterruptedException {
        String name = "cli-" + cliCount.incrementAndGet();
        List<String> cmd = new ArrayList<>(List.of(ChildProcess.javaBin(), "-Xmx512m",
                // The job's main() validates the model with ONNX Runtime, whose first use needs a deep stack.
                "-Xss4m"));
        cmd.addAll(JAVA17_OPENS);
        Path log = workDir.resolve(name + ".log");
        logFiles.add(log);
        cmd.add("-Dlog.file=" + log);
        cmd.add("-Dlog4j.configurationFile=" + confDir.resolve("log4j.properties").toUri());
        cmd.add("-Djava.io.tmpdir=" + workDir.resolve("tmp"));
        cmd.add("-cp");
        cmd.add(classpath);
        cmd.add(CLI_MAIN);
        cmd.addAll(args);
        Path out = workDir.resolve(name + ".out");
        logFiles.add(out);
        ChildProcess p = ChildProcess.start(name, cmd, workDir, out, Map.of("FLINK_CONF_DIR", confDir.toString()));
        if (!p.awaitExit(CLI_TIMEOUT)) {
            p.kill();
            throw new IllegalStateException("flink " + args.get(0) + " did not finish in " + CLI_TIMEOUT + ":\n"
                    + p.tail(60));
        }
        String text = Files.readString(out);
        if (p.exitValue() != 0) {
            throw new IllegalStateException("flink " + String.join(" ", args) + " failed (exit " + p.exitValue()
                    + "):\n" + ChildProcess.tail(out, 60));
        }
        return text;
    }

    /**
     * Uploads the jar ({@code POST /jars/upload}), as the web UI does.
     *
     * @return the jar id for {@link #runJar}
     */
    public String uploadJar(Path jar) throws IOException, InterruptedException {
        String boundary = "----seqscore" + UUID.randomUUID();
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.write(("--" + boundary + "\r\n"
                + "Content-Disposition: form-data; name=\"jarfile\"; filename=\"" + jar.getFileName() + "\"\r\n"
                + "Content-Type: application/x-java-archive\r\n\r\n").getBytes(StandardCharsets.UTF_8));
        body.write(Files.readAllBytes(jar));
        body.write(("\r\n--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
        JsonNode uploaded = call(HttpRequest.newBuilder(URI.create(restUrl() + "/jars/upload"))
                .header("Content-Type", "multipart/form-data; boundary=" + boundary)
                .POST(HttpRequest.BodyPublishers.ofByteArray(body.toByteArray())), 200);
        return Path.of(uploaded.path("filename").asText()).getFileName().toString();
    }

    /**
     * Runs an uploaded jar's main class ({@code POST /jars/:id/run}). The JobManager runs {@code main()} itself, so
     * paths among the arguments must be valid on this machine (absolute).
     *
     * @param savepointPath a savepoint or retained checkpoint to restore, or null
     * @return the job id
     */
    public String runJar(String jarId, String savepointPath, List<String> args) throws IOException,
            InterruptedException {
        Map<String, Object> run = new LinkedHashMap<>();
        run.put("programArgsList", args);
        if (savepointPath != null) {
            run.put("savepointPath", savepointPath);
        }
        JsonNode started = call(HttpRequest.newBuilder(URI.create(restUrl() + "/jars/" + jarId + "/run"))
                .header("Content-Type", "application/json")
                // main() runs inside this request: loading the model and building the graph take a while.
                .timeout(CLI_TIMEOUT)
                .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(run))), 200);
        String jobId = started.path("jobid").asText();
        if (jobId.isEmpty()) {
            throw new IllegalStateException("jar run returned no job id: " + started);
        }
        return jobId;
    }

    /** Uploads the jar and runs it with these program arguments: {@link #uploadJar} then {@link #runJar}. */
    public String submit(Path jar, String... args) throws IOException, InterruptedException {
        return runJar(uploadJar(jar), null, List.of(args));
    }

    /** Waits until the job and every one of its tasks are RUNNING; fails at once if the job ends first. */
    public void waitForRunning(String jobId, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        JsonNode job = null;
        while (System.nanoTime() < deadline) {
            job = job(jobId);
            String state = job.path("state").asText();
            if (Set.of("FAILED", "CANCELED", "FINISHED").contains(state)) {
                throw new IllegalStateException("job " + jobId + " ended as " + state + ": " + exceptions(jobId));
            }
            if (allRunning(job)) {
                return;
            }
            Thread.sleep(200); // poll interval of a deadline loop
        }
        throw new IllegalStateException("job " + jobId + " not running within " + timeout + ": " + job);
    }

    /** Whether the job is RUNNING with every vertex RUNNING, in a {@link #job} answer. */
    public static boolean allRunning(JsonNode job) {
        boolean all = job.path("state").asText().equals("RUNNING") && job.path("vertices").size() > 0;
        for (JsonNode v : job.path("vertices")) {
            all &= v.path("status").asText().equals("RUNNING");
        }
        return all;
    }

    /** The job's details as the REST API reports them ({@code GET /jobs/:id}). */
    public JsonNode job(String jobId) throws IOException, InterruptedException {
        return get("/jobs/" + jobId);
    }

    /**
     * The highest execution attempt number over the job's subtasks: every restart of a subtask deploys a new attempt,
     * so this grows with each failover. (The {@code numRestarts} metric is not a reliable signal over REST: the
     * metric fetcher went stale after a TaskManager was killed and kept reporting 0.)
     */
    public int maxAttempt(String jobId) throws IOException, InterruptedException {
        int max = -1;
        for (JsonNode v : job(jobId).path("vertices")) {
            for (JsonNode s : get("/jobs/" + jobId + "/vertices/" + v.path("id").asText()).path("subtasks")) {
                max = Math.max(max, s.path("attempt").asInt(-1));
            }
        }
        return max;
    }

    /** The resource ids of the TaskManagers that run at least one of the job's subtasks now. */
    public Set<String> taskManagersOf(String jobId) throws IOException, InterruptedException {
        Set<String> out = new LinkedHashSet<>();
        for (JsonNode v : job(jobId).path("vertices")) {
            for (JsonNode s : get("/jobs/" + jobId + "/vertices/" + v.path("id").asText()).path("subtasks")) {
                String tm = s.path("taskmanager-id").asText("");
                if (!tm.isEmpty() && !tm.equals("(unassigned)")) {
                    out.add(tm);
                }
            }
        }
        return out;
    }

    /**
     * The external path of the job's latest completed checkpoint (or savepoint), or null if none completed. With
     * {@code execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION} it survives a cancel
     * and can be restored like a savepoint.
     */
    public String latestCheckpoint(String jobId) throws IOException, InterruptedException {
        JsonNode latest = get("/jobs/" + jobId + "/checkpoints").path("latest").path("completed");
        String path = latest.path("external_path").asText("");
        return path.isEmpty() || path.equals("<checkpoint-not-externally-addressable>") ? null : path;
    }

    /** Counts of completed and failed checkpoints ({@code GET /jobs/:id/checkpoints}). */
    public JsonNode checkpointCounts(String jobId) throws IOException, InterruptedException {
        return get("/jobs/" + jobId + "/checkpoints").path("counts");
    }

    /** The job's root exception and its history, for failure messages. */
    public String exceptions(String jobId) {
        try {
            return get("/jobs/" + jobId + "/exceptions").toPrettyString();
        } catch (Exception e) {
            return "(exceptions unavailable: " + e + ")";
        }
    }

    /** Waits until every slot of every TaskManager is free again (false if the timeout passed first). */
    public boolean awaitAllSlotsFree(Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            JsonNode o = get("/overview");
            if (o.path("slots-available").asInt(-1) == o.path("slots-total").asInt(-2)) {
                return true;
            }
            Thread.sleep(200); // poll interval of a deadline loop
        }
        return false;
    }

    /** Cancels the job and waits until it is CANCELED. */
    public void cancel(String jobId) throws IOException, InterruptedException {
        call(HttpRequest.newBuilder(URI.create(restUrl() + "/jobs/" + jobId + "?mode=cancel"))
                .method("PATCH", HttpRequest.BodyPublishers.noBody()), 202);
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        String state = "";
        while (System.nanoTime() < deadline) {
            state = job(jobId).path("state").asText();
            if (state.equals("CANCELED")) {
                return;
            }
            Thread.sleep(200); // poll interval of a deadline loop
        }
        throw new IllegalStateException("job " + jobId + " not CANCELED within 60 s, still " + state);
    }

    /** {@code GET path} on the REST API, expecting 200. */
    public JsonNode get(String path) throws IOException, InterruptedException {
        return call(HttpRequest.newBuilder(URI.create(restUrl() + path)).timeout(Duration.ofSeconds(30)).GET(), 200);
    }

    /**
     * When the JobManager first logged that it lost a TaskManager ({@code "TaskManager with id tm-N is no longer
     * reachable"} after failed heartbeat RPCs, or a heartbeat timeout), at or after {@code notBefore}; null if it has
     * not. Tells how much of a recovery was spent noticing the loss.
     */
    public LocalTime taskManagerLossNoticed(String resourceId, LocalTime notBefore)
            throws IOException {
        Path log = workDir.resolve("jobmanager.log");
        if (!Files.exists(log)) {
            return null;
        }
        // The JobMaster writes "Heartbeat of ...", the ResourceManager "The heartbeat of ...": match either.
        List<String> needles = List.of(("TaskManager with id " + resourceId + " is no longer reachable").toLowerCase(),
                ("heartbeat of TaskManager with id " + resourceId + " timed out").toLowerCase());
        try (var lines = Files.lines(log, StandardCharsets.UTF_8)) {
            return lines.filter(l -> needles.stream().anyMatch(l.toLowerCase()::contains))
                    .map(l -> parseLogTime(l))
                    .filter(t -> t != null && !t.isBefore(notBefore))
                    .findFirst().orElse(null);
        }
    }

    private static LocalTime parseLogTime(String line) {
        try {
            return LocalTime.parse(line.substring(0, 12),
                    DateTimeFormatter.ofPattern("HH:mm:ss,SSS"));
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** The last {@code lines} lines of every process's output and Flink log, each under a header. */
    public String logs(int lines) {
        StringBuilder sb = new StringBuilder();
        for (Path f : logFiles) {
            sb.append("===== ").append(f).append(" (last ").append(lines).append(" lines) =====\n");
            sb.append(ChildProcess.tail(f, lines)).append('\n');
        }
        return sb.toString();
    }

    /** Paths of every file this cluster logs to, for callers that keep them. */
    public List<Path> logFiles() {
        return List.copyOf(logFiles);
    }

    /** Stops every process: SIGTERM first, so Flink's shutdown hooks clean up; {@code kill -9} if they hang. */
    @Override
    public void close() {
        List<ChildProcess> all = new ArrayList<>();
        taskManagers.forEach(t -> all.add(t.process()));
        if (jobManager != null) {
            all.add(jobManager);
        }
        all.parallelStream().forEach(p -> p.stop(Duration.ofSeconds(20)));
        // The uploaded copies of the job jar are tens of MB per run; the logs, kept, are what a failure needs.
        deleteTree(workDir.resolve("uploads"));
        deleteTree(workDir.resolve("blobs"));
        deleteTree(workDir.resolve("tmp"));
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (var files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException e) {
            // Best effort: target/ is cleaned by mvn clean anyway.
        }
    }

    private void writeConfig(Map<String, String> overrides) throws IOException {
        Files.createDirectories(confDir);
        conf.put("jobmanager.rpc.address", "127.0.0.1");
        conf.put("jobmanager.rpc.port", Integer.toString(ChildProcess.freePort()));
        conf.put("jobmanager.bind-host", "127.0.0.1");
        conf.put("taskmanager.bind-host", "127.0.0.1");
        conf.put("taskmanager.host", "127.0.0.1");
        conf.put("rest.address", "127.0.0.1");
        conf.put("rest.bind-address", "127.0.0.1");
        conf.put("rest.port", Integer.toString(restPort));
        conf.put("jobmanager.memory.process.size", "1024m");
        conf.put("taskmanager.memory.process.size", "1280m");
        conf.put("taskmanager.numberOfTaskSlots", "2");
        conf.put("parallelism.default", "1");
        // Keep every file the cluster writes inside the work directory, never in the shared /tmp.
        conf.put("io.tmp.dirs", workDir.resolve("tmp").toString());
        conf.put("web.upload.dir", workDir.resolve("uploads").toString());
        conf.put("web.tmpdir", workDir.resolve("web").toString());
        conf.put("blob.storage.directory", workDir.resolve("blobs").toString());
        // A test has no second attempt to wait for: a failing job should show its error, not restart for minutes.
        conf.put("restart-strategy.type", "none");
        conf.putAll(overrides);
        StringBuilder yaml = new StringBuilder("# Written by StandaloneCluster for one run.\n");
        conf.forEach((k, v) -> yaml.append(k).append(": ").append(yamlValue(v)).append('\n'));
        Files.writeString(confDir.resolve("config.yaml"), yaml.toString());

        Files.writeString(confDir.resolve("log4j.properties"), String.join("\n",
                "rootLogger.level = INFO",
                "rootLogger.appenderRef.file.ref = file",
                "appender.file.type = File",
                "appender.file.name = file",
                "appender.file.fileName = ${sys:log.file}",
                "appender.file.layout.type = PatternLayout",
                "appender.file.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c{1} [%t] - %m%n",
                // The Kafka clients log every config dump at INFO: thousands of lines per checkpoint.
                "logger.kafka.name = org.apache.kafka",
                "logger.kafka.level = WARN",
                ""));
        Files.createDirectories(workDir.resolve("tmp"));
        Files.createDirectories(workDir.resolve("uploads"));
    }

    private static String yamlValue(String v) {
        // Quoted, so that values such as "localhost" or "1024m" stay strings and paths need no escaping rules.
        return "'" + v.replace("'", "''") + "'";
    }

    /**
     * Starts one Flink process as the distribution's scripts do: BashJavaUtils has derived the JVM memory flags and
     * the derived memory settings (as {@code -D key=value}) from config.yaml; the entry point runs with them.
     */
    private ChildProcess launch(String name, String mainClass, List<String> resources, List<String> extraArgs,
            String role) throws IOException {
        String jvmParams = resources.get(0);
        String dynamicConfigs = resources.size() > 1 ? resources.get(1) : "";
        Path log = workDir.resolve(name + ".log");
        Path out = workDir.resolve(name + ".out");
        logFiles.add(log);
        logFiles.add(out);
        List<String> cmd = new ArrayList<>();
        cmd.add(ChildProcess.javaBin());
        cmd.addAll(ChildProcess.split(jvmParams));
        cmd.addAll(JAVA17_OPENS);
        // What config.sh passes as FLINK_ENV_JAVA_OPTS: the JVM options of every process, then the role's own.
        cmd.addAll(ChildProcess.split(conf.getOrDefault("env.java.opts.all", "")));
        cmd.addAll(ChildProcess.split(conf.getOrDefault("env.java.opts." + role, "")));
        cmd.add("-Dlog.file=" + log);
        cmd.add("-Dlog4j.configurationFile=" + confDir.resolve("log4j.properties").toUri());
        cmd.add("-Djava.io.tmpdir=" + workDir.resolve("tmp"));
        cmd.add("-cp");
        cmd.add(classpath);
        cmd.add(mainClass);
        cmd.add("--configDir");
        cmd.add(confDir.toString());
        cmd.addAll(ChildProcess.split(dynamicConfigs));
        cmd.addAll(extraArgs);
        String env = processEnv.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue() + " ")
                .collect(Collectors.joining());
        Files.writeString(workDir.resolve(name + ".cmd"), env + String.join(" ", cmd) + "\n");
        return ChildProcess.start(name, cmd, workDir, out, processEnv);
    }

    private List<String> bashJavaUtils(String name, String command) throws IOException, InterruptedException {
        Path out = workDir.resolve(name + "-resources.out");
        List<String> cmd = new ArrayList<>(List.of(ChildProcess.javaBin(), "-Xmx128m", "-cp", classpath,
                "-Dlog4j.configurationFile=" + confDir.resolve("log4j.properties").toUri(),
                "-Dlog.file=" + workDir.resolve(name + "-resources.log"),
                BASH_JAVA_UTILS, command, "--configDir", confDir.toString()));
        ChildProcess p = ChildProcess.start(name + "-resources", cmd, workDir, out, Map.of());
        if (!p.awaitExit(Duration.ofSeconds(60))) {
            p.kill();
            throw new IllegalStateException("BashJavaUtils " + command + " did not finish in 60 s");
        }
        String text = Files.readString(out);
        List<String> results = text.lines()
                .filter(l -> l.startsWith(RESULT_PREFIX))
                .map(l -> l.substring(RESULT_PREFIX.length()))
                .toList();
        if (p.exitValue() != 0 || results.isEmpty()) {
            throw new IllegalStateException("BashJavaUtils " + command + " failed (exit " + p.exitValue() + "):\n"
                    + text);
        }
        return results;
    }

    private JsonNode call(HttpRequest.Builder request, int expectedStatus) throws IOException, InterruptedException {
        HttpRequest r = request.build();
        HttpResponse<String> response = http.send(r, HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != expectedStatus) {
            throw new IllegalStateException(r.method() + " " + r.uri() + " returned " + response.statusCode()
                    + ": " + errorText(response.body()));
        }
        String body = response.body();
        return body.isBlank() ? JSON.createObjectNode() : JSON.readTree(body);
    }

    /**
     * Flink's REST errors are {@code {"errors": [...]}} with whole stack traces inside JSON strings; unescaped,
     * the job's own message (e.g. why main() failed) is readable in a report.
     */
    private static String errorText(String body) {
        try {
            JsonNode errors = JSON.readTree(body).path("errors");
            if (errors.isArray() && errors.size() > 0) {
                List<String> texts = new ArrayList<>();
                errors.forEach(e -> texts.add(e.asText()));
                return String.join("\n", texts);
            }
        } catch (IOException e) {
            // Not JSON: the raw body is the best there is.
        }
        return body;
    }
}
