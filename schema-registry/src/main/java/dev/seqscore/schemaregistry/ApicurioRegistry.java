package dev.seqscore.schemaregistry;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * A real Apicurio Registry in a child JVM on a free loopback port, with in-memory storage: what the schema-registry
 * tests and the demo run against. The application is this module's build output ({@code target/*-runner.jar} and
 * {@code target/lib/}), found beside this class's own location, so the module must have been packaged (the
 * reactor does that before any module that depends on it).
 *
 * <p>{@link #url()} is the Confluent-compatible API ({@code .../apis/ccompat/v7}), which is what SeqScore speaks.
 * {@link #close()} kills the process; its storage goes with it.
 */
public final class ApicurioRegistry implements AutoCloseable {
    /** Set to the runner jar to use another build of the application. */
    public static final String RUNNER_PROPERTY = "seqscore.schema-registry.runner";

    private static final Duration START_TIMEOUT = Duration.ofSeconds(120);

    private final Process process;
    private final int port;
    private final Path log;

    private ApicurioRegistry(Process process, int port, Path log) {
        this.process = process;
        this.port = port;
        this.log = log;
    }

    /** Starts the registry and waits until its Confluent-compatible API answers. */
    public static ApicurioRegistry start() {
        Path runner = runnerJar();
        int port = freePort();
        try {
            Path log = Files.createTempFile("apicurio-registry-", ".log");
            List<String> cmd = new ArrayList<>(List.of(
                    Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                    // Loopback only; Quarkus serves the API, health and metrics on this one port.
                    "-Dquarkus.http.host=127.0.0.1", "-Dquarkus.http.port=" + port,
                    "-jar", runner.toString()));
            Process p = new ProcessBuilder(cmd)
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            ApicurioRegistry r = new ApicurioRegistry(p, port, log);
            try {
                r.awaitReady();
            } catch (RuntimeException e) {
                r.close();
                throw e;
            }
            return r;
        } catch (IOException e) {
            throw new IllegalStateException("cannot start Apicurio Registry from " + runner + ": " + e, e);
        }
    }

    /** The Confluent-compatible API's base URL, e.g. {@code http://127.0.0.1:41234/apis/ccompat/v7}. */
    public String url() {
        return "http://127.0.0.1:" + port + "/apis/ccompat/v7";
    }

    public int port() {
        return port;
    }

    /** The process's console output, for a test's failure message. */
    public Path log() {
        return log;
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** Kills the process (its in-memory storage is lost) and waits for it to end. */
    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(20, java.util.concurrent.TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    private void awaitReady() {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        HttpRequest probe = HttpRequest.newBuilder(URI.create(url() + "/subjects"))
                .timeout(Duration.ofSeconds(5)).GET().build();
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("Apicurio Registry exited with " + process.exitValue()
                        + " before it answered; its output: " + log + "\n" + tail());
            }
            try {
                if (http.send(probe, HttpResponse.BodyHandlers.discarding()).statusCode() == 200) {
                    return;
                }
            } catch (IOException e) {
                // Not listening yet.
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for Apicurio Registry", e);
            }
            sleep(250);
        }
        throw new IllegalStateException("Apicurio Registry did not answer on " + url() + " within " + START_TIMEOUT
                + "; its output: " + log + "\n" + tail());
    }

    private String tail() {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(cannot read " + log + ": " + e + ")";
        }
    }

    /** The runner jar: the system property, else the one this module's build left beside this class. */
    static Path runnerJar() {
        String configured = System.getProperty(RUNNER_PROPERTY);
        if (configured != null && !configured.isBlank()) {
            Path p = Path.of(configured.trim());
            if (!Files.isRegularFile(p)) {
                throw new IllegalStateException("-D" + RUNNER_PROPERTY + "=" + p + ": no such file");
            }
            return p;
        }
        Path target = targetDir();
        if (target != null) {
            try (Stream<Path> files = Files.list(target)) {
                var found = files.filter(f -> f.getFileName().toString().endsWith("-runner.jar")).findFirst();
                if (found.isPresent() && Files.isDirectory(target.resolve("lib"))) {
                    return found.get();
                }
            } catch (IOException e) {
                // Fall through to the message below.
            }
        }
        throw new IllegalStateException("the Apicurio Registry application is not built: run `mvn -B install "
                + "-DskipTests` from the repository root (module schema-registry builds it into schema-registry/"
                + "target/), or set -D" + RUNNER_PROPERTY + "=/path/to/*-runner.jar");
    }

    /** {@code .../schema-registry/target} when this class is loaded from target/classes or the module's jar. */
    private static Path targetDir() {
        try {
            var source = ApicurioRegistry.class.getProtectionDomain().getCodeSource();
            if (source == null) {
                return null;
            }
            Path loc = Path.of(source.getLocation().toURI());
            // target/classes (a reactor build) or target/seqscore-schema-registry-*.jar: either way its parent.
            Path target = loc.getParent();
            return target != null && target.getFileName() != null
                    && target.getFileName().toString().equals("target") ? target : null;
        } catch (URISyntaxException | RuntimeException e) {
            return null;
        }
    }

    private static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException("no free loopback port: " + e, e);
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /** Runs the registry until the process is stopped: {@code java -cp ... ApicurioRegistry}. */
    public static void main(String[] args) throws Exception {
        try (ApicurioRegistry r = start()) {
            System.out.println("Apicurio Registry on " + r.url() + " (output: " + r.log() + ")");
            Runtime.getRuntime().addShutdownHook(new Thread(r::close));
            r.process.waitFor();
        }
    }
}
