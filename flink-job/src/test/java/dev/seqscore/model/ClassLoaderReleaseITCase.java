package dev.seqscore.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.testing.RepoPaths;
import java.io.IOException;
import java.lang.ref.Reference;
import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.lang.reflect.Field;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.stream.Stream;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.util.FlinkUserCodeClassLoader;
import org.apache.flink.util.FlinkUserCodeClassLoaders;
import org.apache.flink.util.MutableURLClassLoader;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The shaded job jar in a fresh child-first class loader, made the way a Flink session cluster makes one per job, so
 * that ONNX Runtime and Avro are the job's own copies. After what a JobManager or a TaskManager does with the job and
 * then lets go of, the loader must be garbage: otherwise every cancel-and-resubmit leaves a copy of the job's classes
 * (and of ORT's native library) in the cluster until its JVMs die of metaspace exhaustion.
 *
 * <p>The JVM's own long-lived threads are played by one pool thread that outlives each test's loader, as a
 * JobManager's {@code jobmanager-future-thread}s do: the thread-local leak only shows on a thread that stays. Task
 * code and main() run on threads that end, as in Flink.
 */
class ClassLoaderReleaseITCase {
    /** Generous for a loaded 2-core machine; GC is polled, the deadline only bounds a failure. */
    private static final Duration COLLECTION_DEADLINE = Duration.ofSeconds(60);

    private final ReferenceQueue<ClassLoader> queue = new ReferenceQueue<>();
    private ExecutorService longLivedThread;
    private Thread poolThread;

    @BeforeEach
    void startThread() throws Exception {
        ClassLoader app = getClass().getClassLoader();
        longLivedThread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "long-lived-pool-thread");
            t.setDaemon(true);
            t.setContextClassLoader(app);
            return t;
        });
        poolThread = longLivedThread.submit(Thread::currentThread).get();
    }

    @AfterEach
    void stopThread() {
        longLivedThread.shutdownNow();
    }

    @Test
    void taskManagerReleaseHookLetsTheJobClassLoaderBeCollected() throws Exception {
        Reference<ClassLoader> jobLoader = runTaskManagerSideAndRelease();
        assertCollected(jobLoader, "after the TaskManager's release hook");
    }

    @Test
    void jobManagerValidationAndDeserializationLetTheJobClassLoaderBeCollected() throws Exception {
        Reference<ClassLoader> mainLoader = runJobManagerMain();
        assertCollected(mainLoader, "after main() validated the bundle");
        Reference<ClassLoader> jobMasterLoader = runJobMasterDeserialization();
        assertCollected(jobMasterLoader, "after the JobMaster dropped the job's deserialized operators");
    }

    /**
     * ONNX Runtime in Flink's {@code lib/} (here: on this JVM's class path) with {@code ai.onnxruntime.} loaded
     * parent-first, and the slim jar: the first job to open a session creates the JVM's one environment, whose
     * shutdown hook stays for the JVM's life and must not keep that job's class loader. In a fresh JVM, because in
     * this one another test may have created the shared environment already.
     */
    @Test
    void sharedOnnxRuntimeInLibDoesNotKeepTheJobThatCreatedIt() throws Exception {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process child = new ProcessBuilder(java.toString(), "--add-opens=java.base/java.lang=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), LibClusterJvm.class.getName(),
                RepoPaths.repoRoot().toString())
                .redirectErrorStream(true).start();
        String output = new String(child.getInputStream().readAllBytes());
        assertThat(child.waitFor()).as("child JVM exit code; output:%n%s", output).isZero();
        assertThat(output).contains("job class loader collected");
    }

    /** The JVM of a cluster with ORT in lib/: one job scores and validates, ends, and must leave no trace. */
    public static final class LibClusterJvm {
        public static void main(String[] args) throws Exception {
            System.setProperty("seqscore.repo.root", args[0]);
            assertThat(ortShutdownHooks(ClassLoader.getSystemClassLoader())).as("no environment yet").isEmpty();
            ReferenceQueue<ClassLoader> queue = new ReferenceQueue<>();
            Reference<ClassLoader> ref = runOneJob(queue);
            assertThat(ortShutdownHooks(ClassLoader.getSystemClassLoader())).as("the shared environment stays")
                    .hasSize(1);
            long deadline = System.nanoTime() + COLLECTION_DEADLINE.toNanos();
            Reference<?> collected = null;
            while (collected == null && System.nanoTime() < deadline) {
                System.gc();
                collected = queue.remove(200);
            }
            assertThat(collected).as("job class loader collected").isSameAs(ref);
            System.out.println("job class loader collected");
        }

        private static Reference<ClassLoader> runOneJob(ReferenceQueue<ClassLoader> queue) throws Exception {
            List<String> parentFirst = new ArrayList<>(List.of(
                    CoreOptions.getParentFirstLoaderPatterns(new Configuration())));
            parentFirst.add("ai.onnxruntime.");
            MutableURLClassLoader loader = jobClassLoader("slim", parentFirst.toArray(String[]::new));
            ClassLoader jobClasses = definingLoader(loader, ModelBundle.class.getName());
            assertThat(definingLoader(loader, "ai.onnxruntime.OrtEnvironment"))
                    .as("ORT from lib/").isSameAs(ClassLoader.getSystemClassLoader());
            try (AutoCloseable scorer = onTaskThread(callable(loader, "OpenScorer", model()))) {
                onTaskThread(callable(loader, "Validate", model()));
            }
            onTaskThread(callable(loader, "Release"));
            loader.close();
            return new WeakReference<>(jobClasses, queue);
        }
    }

    /**
     * A scorer task opens a session and ends; a long-lived thread parses an Avro schema with the job's Avro; then
     * Flink runs the release hook, as it does once the job's last task on a TaskManager has ended.
     */
    private Reference<ClassLoader> runTaskManagerSideAndRelease() throws Exception {
        MutableURLClassLoader loader = jobClassLoader();
        ClassLoader jobClasses = definingLoader(loader, "ai.onnxruntime.OrtEnvironment");
        assertThat(definingLoader(loader, ModelBundle.class.getName())).isSameAs(jobClasses);
        assertThat(jobClasses).as("ORT must be the job's own copy, else nothing is under test")
                .isInstanceOf(FlinkUserCodeClassLoader.class);
        Path extracted;

        try (AutoCloseable scorer = onTaskThread(callable(loader, "OpenScorer", model()))) {
            assertThat(ortShutdownHooks(jobClasses)).as("ORT registered its shutdown hook").hasSize(1);
            extracted = ortExtractionDirectory(jobClasses);
            assertThat(extracted).as("ORT extracted its native libraries").isDirectory();
            longLivedThread.submit(callable(loader, "ParseAvroSchema")).get();
            assertThat(threadLocalsPinning(poolThread, jobClasses)).as("Avro and Jackson left thread locals")
                    .isEqualTo(2);

            onTaskThread(callable(loader, "Release"));
            assertThat(ortShutdownHooks(jobClasses)).as("a release while a session is open keeps the environment")
                    .hasSize(1);
        }
        onTaskThread(callable(loader, "Release"));
        assertThat(ortShutdownHooks(jobClasses)).as("the release removed ORT's shutdown hook").isEmpty();

        // A restarted task in the same loader (Flink keeps it across a failover when other tasks still hold it) gets
        // a new environment, not the freed one, and releases that too.
        try (AutoCloseable again = onTaskThread(callable(loader, "OpenScorer", model()))) {
            assertThat(ortShutdownHooks(jobClasses)).as("a new environment after the release").hasSize(1);
        }
        onTaskThread(callable(loader, "Release"));

        assertThat(ortShutdownHooks(jobClasses)).as("the release removed ORT's shutdown hook").isEmpty();
        assertThat(threadLocalsPinning(poolThread, jobClasses)).as("the release cleared the thread locals").isZero();
        assertThat(extracted).as("the release deleted ORT's extracted libraries").doesNotExist();
        loader.close();
        return new WeakReference<>(jobClasses, queue);
    }

    /**
     * main() in the JobManager: the bundle is validated in the jar's class loader, on a thread of its own (Flink's
     * jar-run handler uses a SeparateThreadExecutor), then the loader is dropped.
     */
    private Reference<ClassLoader> runJobManagerMain() throws Exception {
        MutableURLClassLoader loader = jobClassLoader();
        ClassLoader jobClasses = definingLoader(loader, "ai.onnxruntime.OrtEnvironment");
        onTaskThread(callable(loader, "Validate", model()));
        assertThat(ortShutdownHooks(jobClasses)).as("validate() released ORT's environment again").isEmpty();
        loader.close();
        return new WeakReference<>(jobClasses, queue);
    }

    /**
     * The JobMaster deserializes the job's operators on a long-lived thread, and Flink's AvroSerializer parses its
     * schemas there; the deserialized operators live as long as the job, then Flink drops them.
     */
    private Reference<ClassLoader> runJobMasterDeserialization() throws Exception {
        MutableURLClassLoader loader = jobClassLoader();
        ClassLoader jobClasses = definingLoader(loader, ModelBundle.class.getName());
        Object deserializedOperators = longLivedThread.submit(callable(loader, "DeserializeBundle", model())).get();
        longLivedThread.submit(callable(loader, "ParseAvroSchema")).get();
        assertThat(deserializedOperators.getClass().getClassLoader()).isSameAs(jobClasses);
        assertThat(threadLocalsPinning(poolThread, jobClasses)).as("Avro and Jackson left thread locals")
                .isEqualTo(2);
        loader.close();
        return new WeakReference<>(jobClasses, queue);
    }

    private void assertCollected(Reference<ClassLoader> ref, String when) throws InterruptedException {
        long deadline = System.nanoTime() + COLLECTION_DEADLINE.toNanos();
        Reference<?> collected = null;
        while (collected == null && System.nanoTime() < deadline) {
            System.gc();
            collected = queue.remove(200);
        }
        assertThat(collected).as("the job's class loader is garbage %s (still held after %s of GCs)", when,
                COLLECTION_DEADLINE).isSameAs(ref);
    }

    /** A child-first loader over the shaded jar, with Flink's default parent-first patterns, as a cluster makes. */
    private static MutableURLClassLoader jobClassLoader() throws IOException {
        return jobClassLoader("shaded", CoreOptions.getParentFirstLoaderPatterns(new Configuration()));
    }

    private static MutableURLClassLoader jobClassLoader(String classifier, String[] parentFirst) throws IOException {
        URL driver = JobCodeInLoader.class.getProtectionDomain().getCodeSource().getLocation();
        URL[] urls = {jobJar(classifier).toUri().toURL(), driver};
        return FlinkUserCodeClassLoaders.childFirst(urls, ClassLoaderReleaseITCase.class.getClassLoader(),
                parentFirst, t -> { }, true);
    }

    /** The jar {@code mvn package} built with this classifier: shaded (everything) or slim (without ORT). */
    private static Path jobJar(String classifier) throws IOException {
        Path target = RepoPaths.repoRoot().resolve("flink-job/target");
        try (Stream<Path> files = Files.list(target)) {
            return files.filter(f -> f.getFileName().toString().matches("seqscore-flink-job-.*-" + classifier
                            + "\\.jar"))
                    .findFirst()
                    .orElseThrow(() -> new AssertionError("no " + classifier + " jar in " + target
                            + ": run `mvn package`"));
        }
    }

    private static Path model() {
        return RepoPaths.defaultModel();
    }

    private static ClassLoader definingLoader(ClassLoader loader, String className) throws ClassNotFoundException {
        return Class.forName(className, false, loader).getClassLoader();
    }

    @SuppressWarnings("unchecked")
    private static <T> Callable<T> callable(ClassLoader loader, String step, Object... args) throws Exception {
        Class<?> c = Class.forName(JobCodeInLoader.class.getName() + "$" + step, true, loader);
        Class<?>[] types = new Class<?>[args.length];
        for (int i = 0; i < args.length; i++) {
            types[i] = args[i] instanceof Path ? Path.class : args[i].getClass();
        }
        return (Callable<T>) c.getConstructor(types).newInstance(args);
    }

    /** Runs a step on a thread that ends with it, as a Flink task or main() runs; its thread locals end too. */
    private static <T> T onTaskThread(Callable<T> step) throws Exception {
        Object[] result = new Object[1];
        Thread task = new Thread(() -> {
            try {
                result[0] = step.call();
            } catch (Throwable t) {
                result[0] = t;
            }
        }, "short-lived-task-thread");
        task.setContextClassLoader(step.getClass().getClassLoader());
        task.start();
        task.join();
        if (result[0] instanceof Exception e) {
            throw e;
        }
        if (result[0] instanceof Error e) {
            throw e;
        }
        @SuppressWarnings("unchecked")
        T value = (T) result[0];
        return value;
    }

    /** The JVM's shutdown hooks whose task is ORT's environment closer from the given loader. */
    private static List<Thread> ortShutdownHooks(ClassLoader loader) throws Exception {
        Class<?> hooksClass = Class.forName("java.lang.ApplicationShutdownHooks");
        Field hooksField = hooksClass.getDeclaredField("hooks");
        hooksField.setAccessible(true);
        Field target = Thread.class.getDeclaredField("target");
        target.setAccessible(true);
        List<Thread> out = new ArrayList<>();
        synchronized (hooksClass) {
            for (Object h : ((Map<?, ?>) hooksField.get(null)).keySet()) {
                Object task = target.get(h);
                if (task != null && task.getClass().getName().equals("ai.onnxruntime.OrtEnvironment$OrtEnvCloser")
                        && task.getClass().getClassLoader() == loader) {
                    out.add((Thread) h);
                }
            }
        }
        return out;
    }

    /** Where this loader's copy of ORT extracted its native libraries. */
    private static Path ortExtractionDirectory(ClassLoader loader) throws Exception {
        Field dir = Class.forName("ai.onnxruntime.OnnxRuntime", false, loader).getDeclaredField("tempDirectory");
        dir.setAccessible(true);
        return (Path) dir.get(null);
    }

    /** Entries of a thread's thread-local map whose value is an instance of a class from the given loader. */
    private static int threadLocalsPinning(Thread thread, ClassLoader loader) throws Exception {
        Field threadLocals = Thread.class.getDeclaredField("threadLocals");
        threadLocals.setAccessible(true);
        Object map = threadLocals.get(thread);
        if (map == null) {
            return 0;
        }
        Field table = map.getClass().getDeclaredField("table");
        table.setAccessible(true);
        Field value = Class.forName("java.lang.ThreadLocal$ThreadLocalMap$Entry").getDeclaredField("value");
        value.setAccessible(true);
        int n = 0;
        for (Object e : (Object[]) table.get(map)) {
            Object v = e == null ? null : value.get(e);
            if (v instanceof Reference<?> r) {
                v = r.get(); // Jackson keeps its recycler behind a SoftReference
            }
            if (v != null && v.getClass().getClassLoader() == loader) {
                n++;
            }
        }
        return n;
    }
}
