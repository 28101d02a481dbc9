package dev.seqscore.e2e.os;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * An OS process that this JVM started (a broker, a JobManager, a TaskManager, a Flink CLI call), with its output in
 * a file. Every live one is killed by a shutdown hook, so that neither a failure nor Ctrl-C leaves a cluster behind;
 * nothing else is ever killed: only processes started here, by their own handle.
 */
public final class ChildProcess {
    private static final Set<ChildProcess> LIVE = ConcurrentHashMap.newKeySet();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> LIVE.forEach(c -> c.process.destroyForcibly()),
                "kill-child-processes"));
    }

    private final String name;
    private final Process process;
    private final Path output;

    private ChildProcess(String name, Process process, Path output) {
        this.name = name;
        this.process = process;
        this.output = output;
    }

    /**
     * Starts {@code command} in {@code dir}, stdout and stderr appended to {@code output} (appended, so that a
     * restarted broker keeps one history).
     */
    public static ChildProcess start(String name, List<String> command, Path dir, Path output, Map<String, String> env)
            throws IOException {
        Files.createDirectories(output.getParent());
        Files.writeString(output, "\n===== " + java.time.Instant.now() + " " + String.join(" ", command) + "\n",
                StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.APPEND);
        ProcessBuilder pb = new ProcessBuilder(command)
                .directory(dir.toFile())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(output.toFile()));
        pb.environment().putAll(env);
        ChildProcess c = new ChildProcess(name, pb.start(), output);
        LIVE.add(c);
        c.process.onExit().thenRun(() -> LIVE.remove(c));
        return c;
    }

    public String name() {
        return name;
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public Path output() {
        return output;
    }

    /** The exit code; only valid once the process has ended. */
    public int exitValue() {
        return process.exitValue();
    }

    /** {@code kill -9}: no shutdown hook, no flush, no goodbye to peers. Returns once the process is gone. */
    public void kill() {
        process.destroyForcibly();
        awaitExit(Duration.ofSeconds(30));
    }

    /** SIGTERM, so that the process shuts down in order; {@code kill -9} if it is not gone within {@code grace}. */
    public void stop(Duration grace) {
        process.destroy();
        if (!awaitExit(grace)) {
            kill();
        }
    }

    /** Whether the process ended within the timeout. */
    public boolean awaitExit(Duration timeout) {
        try {
            return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return !process.isAlive();
        }
    }

    /** The last {@code lines} lines of the output file. */
    public String tail(int lines) {
        return tail(output, lines);
    }

    public static String tail(Path file, int lines) {
        try {
            if (!Files.exists(file)) {
                return "(no " + file + ")";
            }
            List<String> all = Files.readAllLines(file, StandardCharsets.UTF_8);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException | UncheckedIOException e) {
            return "(unreadable " + file + ": " + e + ")";
        }
    }

    /** A TCP port that is free on 127.0.0.1 right now. */
    public static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException("no free port", e);
        }
    }

    /** The java executable of this JVM, so that every child runs the same Java. */
    public static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /** Splits a whitespace-separated list of JVM flags or arguments. */
    public static List<String> split(String params) {
        List<String> out = new ArrayList<>();
        for (String s : params.trim().split("\\s+")) {
            if (!s.isEmpty()) {
                out.add(s);
            }
        }
        return out;
    }

    @Override
    public String toString() {
        return name + " (pid " + process.pid() + ")";
    }
}
