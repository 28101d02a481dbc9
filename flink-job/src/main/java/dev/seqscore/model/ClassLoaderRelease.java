package dev.seqscore.model;

import java.lang.ref.Cleaner;
import java.lang.reflect.Field;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Lets go of what this job's own copies of its libraries leave registered in a JVM that outlives the job, so that a
 * Flink session cluster can unload the job's class loader after cancel. Found in heap dumps of a JobManager and a
 * TaskManager after resubmissions of the shaded jar:
 * <ul>
 *   <li>ONNX Runtime's JVM shutdown hook, in every JVM that opened a session ({@link OrtRuntime#release()});</li>
 *   <li>thread locals that Avro and Jackson fill on whichever thread parses a schema and never empty
 *       ({@link #clearThreadLocalCaches()}). On a JobManager those threads are its long-lived
 *       {@code jobmanager-future-thread}s, where Flink's {@code AvroSerializer} parses the schemas of the Avro-typed
 *       streams while it deserializes the job's stream graph.</li>
 * </ul>
 * Only copies that came in the job jar are touched; copies on the application class path (the demo, the backtest,
 * tests, a cluster with the library in {@code lib/}) are shared by every job of the JVM and left alone.
 *
 * <p>When. On a TaskManager the scorer registers {@link #release()} as Flink's user-code class loader release hook
 * ({@link #HOOK_NAME}), which runs once all of the job's tasks there have ended. A JobManager offers no such hook for
 * the class loader it deserializes the job with, so every deserialized {@link ModelBundle} asks for the thread-local
 * sweep once it is garbage ({@link #clearThreadLocalsOnceUnreachable}): the bundle is part of the job's operators,
 * so by then Flink has dropped them, and the thread locals are the last references left. The job's main() needs
 * neither: Flink runs it on a thread of its own that ends, and {@link ModelBundle#validate()} releases ORT itself.
 */
public final class ClassLoaderRelease {
    /** The name under which the scorer registers {@link #release()} with Flink, once per class loader. */
    public static final String HOOK_NAME = "seqscore-release-onnxruntime-and-thread-locals";

    private static final Logger LOG = LoggerFactory.getLogger(ClassLoaderRelease.class);

    /** Sweeps registered by {@link #clearThreadLocalsOnceUnreachable}, which {@link #release()} runs at once. */
    private static final Set<Cleaner.Cleanable> PENDING = ConcurrentHashMap.newKeySet();

    /**
     * Thread locals (class, static field) that libraries fill on whichever thread uses them and never empty, with
     * values of the library's own classes: on a JVM's long-lived threads they keep the job's class loader alive.
     */
    private static final String[][] THREAD_LOCAL_CACHES = {
        // Avro's default name validator: every Schema.Parser.parse() leaves it behind.
        {"org.apache.avro.Schema", "VALIDATE_NAMES"},
        // Jackson's buffer recycler (Avro's parser uses Jackson), behind a SoftReference: full GCs keep it for as long
        // as the heap has room, so the job's classes outlive it by an unbounded time.
        {"com.fasterxml.jackson.core.util.BufferRecyclers", "_recyclerRef"},
    };

    private ClassLoaderRelease() {}

    /** Releases ONNX Runtime's environment and the thread-local caches, if they are this job's own copies. */
    public static void release() {
        try {
            OrtRuntime.release();
        } catch (RuntimeException e) {
            LOG.warn("cannot release ONNX Runtime; this job's class loader stays in memory: {}", e.toString());
        }
        clearThreadLocalCaches();
        // The pending sweeps have nothing left to do, and while registered their actions (classes of this loader)
        // would keep the loader until a GC had found their bundles dead and the cleaner had run: one GC too many.
        for (Cleaner.Cleanable pending : PENDING) {
            pending.clean();
        }
        PENDING.clear();
    }

    /**
     * Empties, on every thread, the thread locals in which this job's own copies of Avro and Jackson cache instances
     * of their classes ({@link #THREAD_LOCAL_CACHES}). Nothing for copies shared through the application class path.
     *
     * @return the number of entries cleared
     */
    public static int clearThreadLocalCaches() {
        ClassLoader own = ClassLoaderRelease.class.getClassLoader();
        if (JvmInternals.isApplicationLoader(own)) {
            return 0;
        }
        int cleared = 0;
        for (String[] cache : THREAD_LOCAL_CACHES) {
            try {
                Class<?> holder = Class.forName(cache[0], false, own);
                if (holder.getClassLoader() != own) {
                    continue; // from a parent loader: shared with other jobs
                }
                Field field = holder.getDeclaredField(cache[1]);
                field.setAccessible(true);
                cleared += JvmInternals.clearEverywhere((ThreadLocal<?>) field.get(null));
            } catch (ClassNotFoundException e) {
                // not in this job
            } catch (ReflectiveOperationException | RuntimeException e) {
                LOG.warn("cannot clear the thread locals of {}; this job's class loader stays in memory until those "
                        + "threads end: {}", cache[0], e.toString());
            }
        }
        return cleared;
    }

    /**
     * Runs {@link #clearThreadLocalCaches()} once {@code owner} is unreachable, if this class belongs to a job's own
     * class loader; otherwise nothing. The cleaner's thread holds nothing of the loader once the action has run, and
     * ends after the loader is collected. So on a JobManager a finished job's loader goes at the second GC after
     * Flink drops the job (the first finds the bundle dead, the cleaner sweeps, the second takes the loader); on a
     * TaskManager {@link #release()} sweeps at once.
     */
    static void clearThreadLocalsOnceUnreachable(Object owner) {
        if (!JvmInternals.isApplicationLoader(ClassLoaderRelease.class.getClassLoader())) {
            // A static method reference: the action must not capture the owner, or it would never be unreachable.
            PENDING.add(Sweeper.CLEANER.register(owner, ClassLoaderRelease::clearQuietly));
        }
    }

    private static void clearQuietly() {
        int cleared = clearThreadLocalCaches();
        if (cleared > 0) {
            LOG.debug("cleared {} thread-local caches of a finished job", cleared);
        }
    }

    /** Holds the cleaner, so that a JVM whose libraries are shared never starts its thread. */
    private static final class Sweeper {
        static final Cleaner CLEANER = Cleaner.create();
    }
}
