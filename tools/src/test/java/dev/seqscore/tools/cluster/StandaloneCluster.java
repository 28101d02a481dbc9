package dev.seqscore.tools.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * A real Flink standalone session cluster for tests: one JobManager and one TaskManager, each its own {@code java}
 * OS process started from the Flink jars in the local Maven repository, the way {@code jobmanager.sh} and
 * {@code taskmanager.sh} of a Flink distribution start them (flink-dist is not on Maven Central). Jobs reach it
 * only through its REST API, as a jar upload: nothing of the job is on the cluster's classpath.
 *
 * <pre>{@code
 * try (StandaloneCluster cluster = StandaloneCluster.start(workDir, classpath, Map.of())) {
 *     String job = cluster.submit(jar, "--flag", "value");
 *     cluster.waitForRunning(job, Duration.ofSeconds(60));
 *     ...
 *     cluster.cancel(job);
 * }
 * }</pre>
 *
 * <p>Process output and Flink logs go to files under the work directory; {@link #logs(int)} returns their tails
 * for a failure message.
 */
public final class StandaloneCluster implements AutoCloseable {
    /**
     * The JVM flags Flink's own config.yaml sets in {@code env.java.opts.all} for Java 17: Flink's serializers, RPC
     * and network stack reflect into these JDK packages.
     */
    static final List<String> JAVA17_OPENS = List.of(
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
    private static final String BASH_JAVA_UTILS = "org.apache.flink.runtime.util.bash.BashJavaUtils";
    private static final String RESULT_PREFIX = "BASH_JAVA_UTILS_EXEC_RESULT:";
    private static final Duration READY_TIMEOUT = Duration.ofSeconds(90);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path workDir;
    private final Path confDir;
    private final String classpath;
    private final int restPort;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final List<Process> processes = new ArrayList<>();
    private final List<Path> logFiles = new ArrayList<>();
    /** Kills the processes if the test JVM exits without close(), e.g. when failsafe times out a fork. */
    private final Thread killOnExit = new Thread(this::killAll, "standalone-cluster-kill-on-exit");

    private StandaloneCluster(Path workDir, List<Path> classpath, int restPort) {
        this.workDir = workDir;
        this.confDir = workDir.resolve("conf");
        this.classpath = classpath.stream().map(Path::toString).collect(Collectors.joining(java.io.File.pathSeparator));
        this.restPort = restPort;
    }

    /**
     * Starts a JobManager and a TaskManager and returns once the TaskManager has registered its slots; on any
     * failure the processes started so far are stopped and the exception carries the tails of their logs.
     *
     * @param workDir       fresh directory for configuration, logs, uploads and temporary files
     * @param classpath     the Flink runtime jars (and a logging backend); must not hold the job under test
     * @param confOverrides config.yaml entries that win over this class's defaults
     */
    public static StandaloneCluster start(Path workDir, List<Path> classpath, Map<String, String> confOverrides)
            throws IOException, InterruptedException {
        Files.createDirectories(workDir);
        StandaloneCluster c = new StandaloneCluster(workDir.toAbsolutePath(), classpath, freePort());
        Runtime.getRuntime().addShutdownHook(c.killOnExit);
        try {
            c.writeConfig(confOverrides);
            c.launch("jobmanager", JM_MAIN, "GET_JM_RESOURCE_PARAMS");
            c.launch("taskmanager", TM_MAIN, "GET_TM_RESOURCE_PARAMS");
            c.awaitTaskManager();
            return c;
        } catch (IOException | InterruptedException | RuntimeException | Error e) {
            String logs = c.logs(60);
            c.close();
            throw new IllegalStateException("standalone Flink cluster did not start: " + e + "\n" + logs, e);
        }
    }

    /**
     * The Flink runtime classpath for a cluster: the entries of a Maven-built classpath file (such as the tools
     * module's {@code target/classpath.txt}) minus everything that the job jar brings itself. Dropped: the seqscore
     * modules, so that the job can only arrive as the uploaded jar; and the Flink connector and format jars the job
     * shades, because {@code org.apache.flink.*} is loaded parent-first, so a copy on the cluster would silently
     * stand in for the job's own and hide a shading mistake.
     */
    public static List<Path> flinkClasspath(Path classpathFile) throws IOException {
        if (!Files.isRegularFile(classpathFile)) {
            throw new IllegalStateException(classpathFile + " is missing: it is written by `mvn package` of the "
                    + "tools module (maven-dependency-plugin build-classpath)");
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

    /** Base URL of the REST API, e.g. {@code http://localhost:40123}. */
    public String restUrl() {
        return "http://localhost:" + restPort;
    }

    /**
     * Uploads the jar and runs its manifest's main class with these program arguments. The JobManager runs
     * {@code main()} itself, so paths among the arguments must be valid on this machine (absolute).
     *
     * @return the job id
     */
    public String submit(Path jar, String... args) throws IOException, InterruptedException {
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
        String jarId = Path.of(uploaded.path("filename").asText()).getFileName().toString();

        Map<String, Object> run = new LinkedHashMap<>();
        run.put("programArgsList", List.of(args));
        JsonNode started = call(HttpRequest.newBuilder(URI.create(restUrl() + "/jars/" + jarId + "/run"))
                .header("Content-Type", "application/json")
                // main() runs inside this request: loading the model and building the graph take a while.
                .timeout(Duration.ofSeconds(120))
                .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(run))), 200);
        String jobId = started.path("jobid").asText();
        if (jobId.isEmpty()) {
            throw new IllegalStateException("jar run returned no job id: " + started);
        }
        return jobId;
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
            boolean allRunning = state.equals("RUNNING") && job.path("vertices").size() > 0;
            for (JsonNode v : job.path("vertices")) {
                allRunning &= v.path("status").asText().equals("RUNNING");
            }
            if (allRunning) {
                return;
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException("job " + jobId + " not running within " + timeout + ": " + job);
    }

    /** The job's details as the REST API reports them ({@code GET /jobs/:id}). */
    public JsonNode job(String jobId) throws IOException, InterruptedException {
        return call(HttpRequest.newBuilder(URI.create(restUrl() + "/jobs/" + jobId)).GET(), 200);
    }

    /** The job's root exception and its history, for failure messages. */
    public String exceptions(String jobId) {
        try {
            return call(HttpRequest.newBuilder(URI.create(restUrl() + "/jobs/" + jobId + "/exceptions")).GET(), 200)
                    .toPrettyString();
        } catch (Exception e) {
            return "(exceptions unavailable: " + e + ")";
        }
    }

    /** Cancels the job and waits until it is CANCELED. */
    public void cancel(String jobId) throws IOException, InterruptedException {
        call(HttpRequest.newBuilder(URI.create(restUrl() + "/jobs/" + jobId + "?mode=cancel"))
                .method("PATCH", HttpRequest.BodyPublishers.noBody()), 202);
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        String state = "";
        while (System.nanoTime() < deadline) {
            state = job(jobId).path("state").asText();
            if (state.equals("CANCELED")) {
                return;
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException("job " + jobId + " not CANCELED within 30 s, still " + state);
    }

    /** The last {@code lines} lines of every process's output and Flink log, each under a header. */
    public String logs(int lines) {
        StringBuilder sb = new StringBuilder();
        for (Path f : logFiles) {
            sb.append("===== ").append(f).append(" (last ").append(lines).append(" lines) =====\n");
            try {
                if (Files.exists(f)) {
                    List<String> all = Files.readAllLines(f, StandardCharsets.UTF_8);
                    all.subList(Math.max(0, all.size() - lines), all.size()).forEach(l -> sb.append(l).append('\n'));
                }
            } catch (IOException | UncheckedIOException e) {
                sb.append("(unreadable: ").append(e).append(")\n");
            }
        }
        return sb.toString();
    }

    /** Stops both processes: SIGTERM first, so Flink's shutdown hooks clean up; a kill if they hang. */
    @Override
    public void close() {
        try {
            Runtime.getRuntime().removeShutdownHook(killOnExit);
        } catch (IllegalStateException e) {
            // The JVM is already shutting down; the hook does the same.
        }
        for (Process p : processes) {
            p.destroy();
        }
        for (Process p : processes) {
            try {
                if (!p.waitFor(20, TimeUnit.SECONDS)) {
                    p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        // The uploaded copy of the job jar is tens of MB per run; the logs, kept, are what a failure needs.
        deleteTree(workDir.resolve("uploads"));
        deleteTree(workDir.resolve("tmp"));
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException e) {
            // Best effort: target/ is cleaned by mvn clean anyway.
        }
    }

    private void killAll() {
        processes.forEach(Process::destroyForcibly);
    }

    private void writeConfig(Map<String, String> overrides) throws IOException {
        Files.createDirectories(confDir);
        Map<String, String> conf = new LinkedHashMap<>();
        conf.put("jobmanager.rpc.address", "localhost");
        conf.put("jobmanager.rpc.port", Integer.toString(freePort()));
        conf.put("jobmanager.bind-host", "localhost");
        conf.put("taskmanager.bind-host", "localhost");
        conf.put("taskmanager.host", "localhost");
        conf.put("rest.address", "localhost");
        conf.put("rest.bind-address", "localhost");
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
        StringBuilder yaml = new StringBuilder("# Written by StandaloneCluster for one test run.\n");
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
     * Starts one Flink process as the distribution's scripts do: BashJavaUtils derives the JVM memory flags and
     * the derived memory settings (as {@code -D key=value}) from config.yaml, then the entry point runs with them.
     */
    private void launch(String name, String mainClass, String resourceCommand)
            throws IOException, InterruptedException {
        List<String> resources = bashJavaUtils(name, resourceCommand);
        String jvmParams = resources.get(0);
        String dynamicConfigs = resources.size() > 1 ? resources.get(1) : "";

        Path log = workDir.resolve(name + ".log");
        Path out = workDir.resolve(name + ".out");
        logFiles.add(log);
        logFiles.add(out);
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBin());
        cmd.addAll(split(jvmParams));
        cmd.addAll(JAVA17_OPENS);
        cmd.add("-Dlog.file=" + log);
        cmd.add("-Dlog4j.configurationFile=" + confDir.resolve("log4j.properties").toUri());
        cmd.add("-Djava.io.tmpdir=" + workDir.resolve("tmp"));
        cmd.add("-cp");
        cmd.add(classpath);
        cmd.add(mainClass);
        cmd.add("--configDir");
        cmd.add(confDir.toString());
        cmd.addAll(split(dynamicConfigs));
        Files.writeString(workDir.resolve(name + ".cmd"), String.join(" ", cmd) + "\n");
        Process p = new ProcessBuilder(cmd)
                .directory(workDir.toFile())
                .redirectErrorStream(true)
                .redirectOutput(out.toFile())
                .start();
        processes.add(p);
    }

    private List<String> bashJavaUtils(String name, String command) throws IOException, InterruptedException {
        Path out = workDir.resolve(name + "-resources.out");
        List<String> cmd = new ArrayList<>(List.of(javaBin(), "-Xmx128m", "-cp", classpath,
                "-Dlog4j.configurationFile=" + confDir.resolve("log4j.properties").toUri(),
                "-Dlog.file=" + workDir.resolve(name + "-resources.log"),
                BASH_JAVA_UTILS, command, "--configDir", confDir.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
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

    /** Polls the REST API until a TaskManager with free slots has registered, watching that both processes live. */
    private void awaitTaskManager() throws InterruptedException {
        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        String last = "no answer yet";
        while (System.nanoTime() < deadline) {
            for (Process p : processes) {
                if (!p.isAlive()) {
                    throw new IllegalStateException("a cluster process exited with " + p.exitValue());
                }
            }
            try {
                JsonNode overview = call(HttpRequest.newBuilder(URI.create(restUrl() + "/overview")).GET(), 200);
                if (overview.path("taskmanagers").asInt() >= 1 && overview.path("slots-available").asInt() >= 1) {
                    return;
                }
                last = overview.toString();
            } catch (IOException | IllegalStateException e) {
                last = e.toString(); // REST endpoint not up yet
            }
            Thread.sleep(250);
        }
        throw new IllegalStateException("no TaskManager registered within " + READY_TIMEOUT + "; last: " + last);
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
     * the job's own message (e.g. why main() failed) is readable in a test report.
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

    private static List<String> split(String params) {
        return Arrays.stream(params.trim().split("\\s+")).filter(s -> !s.isEmpty()).toList();
    }

    private static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Paths of every file this cluster logs to, for callers that keep them. */
    public List<Path> logFiles() {
        return List.copyOf(logFiles);
    }
}
