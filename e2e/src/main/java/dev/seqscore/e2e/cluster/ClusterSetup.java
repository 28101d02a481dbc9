package dev.seqscore.e2e.cluster;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * How a session cluster is set up for one of the two job jars, as the README's "Running on a Flink cluster" tells
 * users to: the jar to submit, the jars that go into Flink's {@code lib/}, the config.yaml entries (including the
 * TaskManagers' JVM options), and the environment of the JobManager and TaskManager processes (which C allocator they
 * run with).
 *
 * <ul>
 *   <li>{@link JarKind#SLIM} (recommended for session clusters): ONNX Runtime's jar in {@code lib/}, loaded
 *       parent-first ({@code classloader.parent-first-patterns.additional: ai.onnxruntime.}), and the job jar without
 *       it: one copy of ORT's classes and native library per JVM instead of one per job.</li>
 *   <li>{@link JarKind#SHADED}: the jar that carries ORT, on a cluster as it comes.</li>
 * </ul>
 */
public record ClusterSetup(JarKind jarKind, Path jar, List<Path> libJars, Map<String, String> conf,
        Allocator allocator) {

    /** Which job jar a cluster runs. */
    public enum JarKind {
        SLIM, SHADED;

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * The C allocator of the Flink processes. ONNX Runtime and RocksDB allocate natively from many threads; glibc's
     * malloc gives each new thread contention its own arena of up to 64 MB and rarely returns their memory, so a
     * long-lived TaskManager's RSS creeps up with every job it runs (docs/design.md, "Native memory across
     * redeploys").
     */
    public enum Allocator {
        /** jemalloc through {@code LD_PRELOAD}, as Flink's official docker images run every Flink process. */
        JEMALLOC,
        /** glibc's malloc with at most 2 arenas ({@code MALLOC_ARENA_MAX=2}). */
        ARENAS2,
        /** glibc's malloc as it comes. */
        GLIBC;

        public String label() {
            return switch (this) {
                case JEMALLOC -> "jemalloc";
                case ARENAS2 -> "glibc-arenas2";
                case GLIBC -> "glibc";
            };
        }

        public static Allocator parse(String text) {
            for (Allocator a : values()) {
                if (a.label().equals(text)) {
                    return a;
                }
            }
            throw new IllegalArgumentException("unknown allocator '" + text + "'; one of jemalloc, glibc-arenas2, "
                    + "glibc");
        }

        /** jemalloc when it is installed (Debian: {@code apt-get install libjemalloc2}), else 2 glibc arenas. */
        public static Allocator recommended() {
            return jemallocLibrary().isPresent() ? JEMALLOC : ARENAS2;
        }

        /**
         * The environment a Flink process needs for this allocator.
         *
         * @throws IllegalStateException for jemalloc when its library is not installed
         */
        public Map<String, String> environment() {
            return switch (this) {
                case JEMALLOC -> Map.of("LD_PRELOAD", jemallocLibrary().orElseThrow(() -> new IllegalStateException(
                        "jemalloc is not installed (Debian: apt-get install libjemalloc2)")).toString());
                case ARENAS2 -> Map.of("MALLOC_ARENA_MAX", "2");
                case GLIBC -> Map.of();
            };
        }
    }

    /** The shared library of jemalloc, where Debian's {@code libjemalloc2} (or {@code -dev}) puts it. */
    public static Optional<Path> jemallocLibrary() {
        for (String dir : List.of("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
                "/usr/lib")) {
            for (String name : List.of("libjemalloc.so.2", "libjemalloc.so")) {
                Path p = Path.of(dir, name);
                if (Files.isReadable(p)) {
                    return Optional.of(p);
                }
            }
        }
        return Optional.empty();
    }

    /** The config.yaml entry that loads ONNX Runtime from {@code lib/} even for a job jar that carries a copy. */
    public static final Map<String, String> ORT_PARENT_FIRST = Map.of(
            "classloader.parent-first-patterns.additional", "ai.onnxruntime.");

    /**
     * The setup for a jar built in the repository ({@code flink-job/target}).
     *
     * @throws IllegalStateException when the jar (or for slim, ORT's jar in {@code target/flink-lib/}) is not built
     */
    public static ClusterSetup of(JarKind kind, Path repoRoot, Allocator allocator) throws IOException {
        Path target = repoRoot.resolve("flink-job/target");
        Path jar = find(target, "seqscore-flink-job-.*-" + kind.label() + "\\.jar");
        if (kind == JarKind.SHADED) {
            return new ClusterSetup(kind, jar, List.of(), Map.of(), allocator);
        }
        Path ort = find(target.resolve("flink-lib"), "onnxruntime-.*\\.jar");
        return new ClusterSetup(kind, jar, List.of(ort), ORT_PARENT_FIRST, allocator);
    }

    /** A given job jar: slim if it carries no ONNX Runtime (then ORT's jar comes from the repository's build). */
    public static ClusterSetup ofJar(Path jar, Path repoRoot, Allocator allocator) throws IOException {
        boolean carriesOrt;
        try (var zip = new java.util.zip.ZipFile(jar.toFile())) {
            carriesOrt = zip.getEntry("ai/onnxruntime/OrtEnvironment.class") != null;
        }
        if (carriesOrt) {
            return new ClusterSetup(JarKind.SHADED, jar, List.of(), Map.of(), allocator);
        }
        Path ort = find(repoRoot.resolve("flink-job/target/flink-lib"), "onnxruntime-.*\\.jar");
        return new ClusterSetup(JarKind.SLIM, jar, List.of(ort), ORT_PARENT_FIRST, allocator);
    }

    /** The TaskManager JVM option that commits and touches the whole heap at start. */
    public static final String HEAP_PRE_TOUCH = "-XX:+AlwaysPreTouch";

    /**
     * This setup with the TaskManagers' heap touched at start ({@code env.java.opts.taskmanager:
     * -XX:+AlwaysPreTouch}): the RSS a TaskManager will reach anyway (its heap is fixed, {@code -Xms} = {@code -Xmx})
     * is there from the start, so that RSS growth across jobs shows native memory rather than heap pages touched
     * for the first time.
     */
    public ClusterSetup withHeapPreTouch() {
        Map<String, String> c = new LinkedHashMap<>(conf);
        c.merge("env.java.opts.taskmanager", HEAP_PRE_TOUCH, (a, b) -> a + " " + b);
        return new ClusterSetup(jarKind, jar, libJars, c, allocator);
    }

    /** Whether {@link #withHeapPreTouch()} applies. */
    public boolean heapPreTouched() {
        return conf.getOrDefault("env.java.opts.taskmanager", "").contains(HEAP_PRE_TOUCH);
    }

    /** The Flink runtime classpath plus this setup's {@code lib/} jars. */
    public List<Path> classpath(List<Path> flinkClasspath) {
        List<Path> out = new ArrayList<>(flinkClasspath);
        out.addAll(libJars);
        return out;
    }

    /** This setup's config.yaml entries over {@code base}. */
    public Map<String, String> conf(Map<String, String> base) {
        Map<String, String> out = new LinkedHashMap<>(base);
        out.putAll(conf);
        return out;
    }

    /** The JobManager's and TaskManagers' process environment. */
    public Map<String, String> environment() {
        return allocator.environment();
    }

    /** One line for a report: {@code slim jar, ORT in lib/ parent-first, jemalloc (LD_PRELOAD=...)}. */
    public String describe() {
        String env = environment().entrySet().stream().map(e -> e.getKey() + "=" + e.getValue())
                .reduce((a, b) -> a + " " + b).map(e -> " (" + e + ")").orElse("");
        return kind() + " jar " + jar.getFileName() + (libJars.isEmpty() ? "" : ", "
                + libJars.stream().map(p -> p.getFileName().toString()).toList() + " in lib/ parent-first")
                + ", allocator " + allocator.label() + env
                + (heapPreTouched() ? ", TaskManager heap pre-touched (" + HEAP_PRE_TOUCH + ")" : "");
    }

    private String kind() {
        return jarKind.label();
    }

    private static Path find(Path dir, String regex) throws IOException {
        try (Stream<Path> files = Files.exists(dir) ? Files.list(dir) : Stream.empty()) {
            return files.filter(f -> f.getFileName().toString().matches(regex)).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no " + regex.replace("\\.", ".").replace(".*", "*")
                            + " in " + dir + ": build it (bin/seqscore build, or mvn -DskipTests package)"));
        }
    }
}
