package dev.seqscore.tools.metrics;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

/**
 * A real Prometheus server in a child process, for tests: its own data directory, a loopback address on a free
 * port, and a config that scrapes the given targets every second. Queried through its HTTP API like Grafana does.
 * {@link #close()} kills the process.
 */
public final class PrometheusServer implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Process process;
    private final Path workDir;
    private final String baseUrl;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private PrometheusServer(Process process, Path workDir, String baseUrl) {
        this.process = process;
        this.workDir = workDir;
        this.baseUrl = baseUrl;
    }

    /**
     * The {@code prometheus} binary: {@code $PROMETHEUS_BIN}, else the first on the PATH; otherwise the calling
     * test is skipped with a message saying how to get one.
     */
    public static Path requireBinary() {
        Optional<Path> found = binary();
        String env = System.getenv("PROMETHEUS_BIN");
        assumeTrue(found.isPresent(), () -> "skipped: no prometheus binary "
                + (env == null || env.isBlank() ? "on the PATH" : "at PROMETHEUS_BIN=" + env)
                + " (Debian: apt-get install prometheus, as .ci/run does; or set PROMETHEUS_BIN)");
        return found.get();
    }

    static Optional<Path> binary() {
        String env = System.getenv("PROMETHEUS_BIN");
        if (env != null && !env.isBlank()) {
            return Optional.of(Path.of(env)).filter(Files::isExecutable);
        }
        return Stream.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
                .filter(d -> !d.isBlank())
                .map(d -> Path.of(d, "prometheus"))
                .filter(Files::isExecutable)
                .findFirst();
    }

    /** Starts Prometheus scraping {@code targets} (host:port) every second and waits until it is ready. */
    public static PrometheusServer start(Path binary, Path workDir, List<String> targets) throws IOException {
        Files.createDirectories(workDir.resolve("data"));
        Path config = workDir.resolve("prometheus.yml");
        StringBuilder yaml = new StringBuilder()
                .append("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n")
                .append("scrape_configs:\n  - job_name: flink\n    static_configs:\n      - targets:\n");
        targets.forEach(t -> yaml.append("          - '").append(t).append("'\n"));
        Files.writeString(config, yaml);

        int port = freePort();
        Process p = new ProcessBuilder(binary.toString(),
                "--config.file=" + config,
                "--storage.tsdb.path=" + workDir.resolve("data"),
                "--web.listen-address=127.0.0.1:" + port,
                "--log.level=warn")
                .redirectErrorStream(true)
                .redirectOutput(workDir.resolve("prometheus.log").toFile())
                .start();
        PrometheusServer server = new PrometheusServer(p, workDir, "http://127.0.0.1:" + port);
        try {
            server.awaitReady(Duration.ofSeconds(60));
        } catch (RuntimeException | Error e) {
            server.close();
            throw e;
        }
        return server;
    }

    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private void awaitReady(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            if (!process.isAlive()) {
                throw new IllegalStateException("prometheus exited with " + process.exitValue() + ":\n" + log());
            }
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(baseUrl + "/-/ready"))
                        .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() == 200) {
                    return;
                }
            } catch (IOException e) {
                // Not listening yet.
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted waiting for prometheus", e);
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("prometheus not ready after " + timeout + ":\n" + log());
            }
            LockSupport.parkNanos(Duration.ofMillis(200).toNanos());
        }
    }

    /** The result vector of an instant query ({@code data.result}); fails on a query Prometheus rejects. */
    public JsonNode query(String promql) throws IOException, InterruptedException {
        String url = baseUrl + "/api/v1/query?query=" + URLEncoder.encode(promql, StandardCharsets.UTF_8);
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10))
                .build(), HttpResponse.BodyHandlers.ofString());
        JsonNode body = JSON.readTree(r.body());
        if (r.statusCode() != 200 || !"success".equals(body.path("status").asText())) {
            throw new IllegalArgumentException("prometheus rejected " + promql + ": HTTP " + r.statusCode() + " "
                    + body.path("errorType").asText() + ": " + body.path("error").asText());
        }
        return body.path("data").path("result");
    }

    /** The health of every scrape target, as Prometheus reports it ({@code /api/v1/targets}). */
    public String targets() throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(baseUrl + "/api/v1/targets")).build(),
                HttpResponse.BodyHandlers.ofString()).body();
    }

    public String log() {
        try {
            return Files.readString(workDir.resolve("prometheus.log"));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
