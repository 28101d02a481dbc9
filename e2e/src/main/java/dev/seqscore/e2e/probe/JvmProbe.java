package dev.seqscore.e2e.probe;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

/**
 * Looks into a running JVM from outside, the way an operator would on the machine: resident memory from
 * {@code /proc/<pid>/status}, the ONNX Runtime native libraries mapped into it from {@code /proc/<pid>/maps}, and
 * the live Flink user-code class loaders after a full GC from {@code jcmd} (the JDK's diagnostic command, which
 * attaches to processes of the same user).
 *
 * <p>Why these: a job's user-code class loader that outlives the job pins all its classes and, with ONNX Runtime,
 * its own copy of the native library (a JNI library can belong to one class loader only, so each new class loader
 * extracts and maps another copy). Both show up here long before a TaskManager runs out of memory.
 */
public final class JvmProbe {
    /**
     * The classes of Flink's user-code class loaders (flink-core 2.2, {@code FlinkUserCodeClassLoaders}): one instance
     * per job per process, child-first or parent-first as {@code classloader.resolve-order} says. The
     * SafetyNetWrapperClassLoader around each is not counted: it defines no classes and dies with its inner loader.
     */
    public static final Set<String> USER_CODE_LOADERS = Set.of(
            "org.apache.flink.util.ChildFirstClassLoader",
            "org.apache.flink.util.FlinkUserCodeClassLoaders$ParentFirstClassLoader");

    private static final Duration JCMD_TIMEOUT = Duration.ofSeconds(120);

    private JvmProbe() {}

    /** What one look at a process found. */
    public record Sample(long pid, long rssKb, int ortLibraries, int userCodeClassLoaders) {
        public double rssMb() {
            return rssKb / 1024.0;
        }
    }

    /** RSS, mapped ORT libraries and, after a full GC, live user-code class loaders of one process. */
    public static Sample sample(long pid) throws IOException, InterruptedException {
        int loaders = userCodeClassLoaders(pid);
        return new Sample(pid, rssKb(pid), ortLibraries(pid).size(), loaders);
    }

    /** Resident set size in kB ({@code VmRSS}). */
    public static long rssKb(long pid) throws IOException {
        return parseRssKb(Files.readString(Path.of("/proc", Long.toString(pid), "status")));
    }

    static long parseRssKb(String status) {
        for (String line : status.split("\n")) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.substring(6).trim().split("\\s+")[0]);
            }
        }
        throw new IllegalArgumentException("no VmRSS line in /proc/<pid>/status");
    }

    /** The distinct ONNX Runtime library files mapped into the process (deleted temp copies included). */
    public static Set<String> ortLibraries(long pid) throws IOException {
        return parseOrtLibraries(Files.readString(Path.of("/proc", Long.toString(pid), "maps")));
    }

    static Set<String> parseOrtLibraries(String maps) {
        Set<String> out = new TreeSet<>();
        for (String line : maps.split("\n")) {
            // address perms offset dev inode pathname: the path is everything from the sixth field on.
            String[] f = line.trim().split("\\s+", 6);
            if (f.length == 6) {
                String path = f[5];
                String file = path.substring(path.lastIndexOf('/') + 1);
                if (file.contains("onnxruntime") && file.contains(".so")) {
                    out.add(path);
                }
            }
        }
        return out;
    }

    /**
     * Live Flink user-code class loaders after full GCs: {@code jcmd <pid> GC.run}, then {@code jcmd <pid>
     * GC.class_histogram} (which collects again before counting), repeated until a round frees no loader. One round
     * is not enough: a job's cleanup runs in a {@code Cleaner} after the collection that finds its operators gone,
     * and only the next collection can take the loader that cleanup let go.
     */
    public static int userCodeClassLoaders(long pid) throws IOException, InterruptedException {
        int last = Integer.MAX_VALUE;
        for (int round = 0; round < MAX_GC_ROUNDS; round++) {
            jcmd(pid, "GC.run");
            int n = countUserCodeLoaders(jcmd(pid, "GC.class_histogram"));
            if (n >= last) {
                return n;
            }
            last = n;
        }
        return last;
    }

    private static final int MAX_GC_ROUNDS = 5;

    /** Live instances of some classes after a full GC, with the live user-code class loaders of the same look. */
    public record Census(int userCodeClassLoaders, Map<String, Integer> instances) {
        public int of(String className) {
            return instances.getOrDefault(className, 0);
        }
    }

    /**
     * Live user-code class loaders and instances of {@code classes} after full GCs, collected as {@link
     * #userCodeClassLoaders} does (until a round frees no loader), both counted from the last class histogram.
     */
    public static Census census(long pid, Set<String> classes) throws IOException, InterruptedException {
        int last = Integer.MAX_VALUE;
        String histogram = "";
        for (int round = 0; round < MAX_GC_ROUNDS; round++) {
            jcmd(pid, "GC.run");
            histogram = jcmd(pid, "GC.class_histogram");
            int n = countUserCodeLoaders(histogram);
            if (n >= last) {
                break;
            }
            last = n;
        }
        return new Census(countUserCodeLoaders(histogram), countInstances(histogram, classes));
    }

    /** The instances of each of {@code classes} in a class histogram (0 for the ones it does not list). */
    static Map<String, Integer> countInstances(String histogram, Set<String> classes) {
        Map<String, Integer> out = new TreeMap<>();
        classes.forEach(c -> out.put(c, 0));
        for (String line : histogram.split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 4 && f[0].endsWith(":") && classes.contains(f[3])) {
                out.merge(f[3], Integer.parseInt(f[1]), Integer::sum);
            }
        }
        return out;
    }

    /** Sums the instances of {@link #USER_CODE_LOADERS} in a class histogram. */
    static int countUserCodeLoaders(String histogram) {
        int n = 0;
        for (String line : histogram.split("\n")) {
            // "   12:             3            240  org.apache.flink.util.ChildFirstClassLoader (java.base@17)"
            String[] f = line.trim().split("\\s+");
            if (f.length >= 4 && f[0].endsWith(":") && USER_CODE_LOADERS.contains(f[3])) {
                n += Integer.parseInt(f[1]);
            }
        }
        return n;
    }

    /** Runs {@code jcmd <pid> <command...>} and returns its output; fails with it if jcmd fails. */
    public static String jcmd(long pid, String... command) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(jcmdBin(), Long.toString(pid)));
        cmd.addAll(List.of(command));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        byte[] out;
        try (var in = p.getInputStream()) {
            out = in.readAllBytes();
        }
        if (!p.waitFor(JCMD_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("jcmd " + pid + " " + String.join(" ", command) + " hung");
        }
        String text = new String(out, StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
            throw new IllegalStateException("jcmd " + pid + " " + String.join(" ", command) + " failed (exit "
                    + p.exitValue() + "): " + text);
        }
        return text;
    }

    /** The jcmd of the JDK this JVM runs on, so that it can attach to children started with the same java. */
    private static String jcmdBin() {
        Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
        return Files.isExecutable(jcmd) ? jcmd.toString() : "jcmd";
    }
}
