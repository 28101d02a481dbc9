package dev.seqscore.model.unload;

import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.Serializable;
import java.lang.ref.Cleaner;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.flink.api.common.functions.RuntimeContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one way in to undoing what the job's own copies of its libraries (ONNX Runtime, Avro, Jackson) leave registered
 * in a JVM that outlives the job, so that a Flink session cluster can unload the job's class loader after cancel
 * (docs/design.md, "Class loaders and redeploys"). It reflects into JDK and library internals, which is why it lives
 * apart from the model code. Copies on the application class path are shared by every job of the JVM and left alone.
 *
 * <p>Who calls what: operators register {@link #release()} for their TaskManager ({@link #releaseWhenJobEnds});
 * {@code ModelBundle.validate()} (main(), and model swaps to come) ends with {@link #releaseIfIdle()}; a
 * JobManager, which has no release hook, sweeps through the {@link OnJobManagerDrop} that every bundle carries.
 */
public final class JobUnload {
    /** The name under which operators register {@link #release()} with Flink, once per class loader. */
    public static final String HOOK_NAME = "seqscore-release-onnxruntime-and-thread-locals";

    private static final Logger LOG = LoggerFactory.getLogger(JobUnload.class);

    /** Sweeps registered by {@link OnJobManagerDrop}s, which {@link #release()} runs at once. */
    private static final Set<Cleaner.Cleanable> PENDING = ConcurrentHashMap.newKeySet();

    private JobUnload() {}

    /** Registers {@link #release()} to run when the job's last task in this TaskManager has ended. */
    public static void releaseWhenJobEnds(RuntimeContext context) {
        context.registerUserCodeClassLoaderReleaseHookIfAbsent(HOOK_NAME, JobUnload::release);
    }

    /**
     * Releases ONNX Runtime's environment (unless a session is still open: then a warning, and a leak rather than a
     * crash) and the thread-local caches, if they are this job's own copies.
     */
    public static void release() {
        try {
            OrtRelease.release(true);
        } catch (RuntimeException e) {
            LOG.warn("cannot release ONNX Runtime; this job's class loader stays in memory: {}", e.toString());
        }
        ThreadLocalSweep.clearCaches();
        // The pending sweeps have nothing left to do, and while registered their actions (classes of this loader)
        // would keep the loader until a GC had found their owners dead and the cleaner had run: one GC too many.
        for (Cleaner.Cleanable pending : PENDING) {
            pending.clean();
        }
        PENDING.clear();
    }

    /** Releases ONNX Runtime's private environment if no session of it is open; quietly nothing otherwise. */
    public static boolean releaseIfIdle() {
        return OrtRelease.release(false);
    }

    /** Called by the runtime once it created the environment: a shared one must not keep the creating job. */
    public static void ortEnvironmentCreated() {
        if (OrtRelease.isSharedFromJob()) {
            OrtRelease.detachSharedHook();
        }
    }

    /** Whether ONNX Runtime came in the job jar, so that {@link #release()} frees it. */
    public static boolean ortIsPrivateCopy() {
        return OrtRelease.isPrivateCopy();
    }

    /** Thread-local caches of the job's own Avro and Jackson cleared on every thread (for tests). */
    public static int clearThreadLocalCaches() {
        return ThreadLocalSweep.clearCaches();
    }

    /**
     * A field of {@code ModelBundle}, and so of every operator that carries a model. Flink's JobMaster deserializes
     * the operators on its long-lived threads, where Flink's AvroSerializer leaves Avro's and Jackson's thread locals;
     * once Flink drops the operators, those are the last references to the job's loader. So, when deserialized, this
     * arranges the thread-local sweep for when it is unreachable: the first GC after the drop finds it dead, the
     * cleaner sweeps, the second GC takes the loader. On a TaskManager {@link #release()} sweeps at once. Nothing for
     * a job whose libraries are shared.
     */
    public static final class OnJobManagerDrop implements Serializable {
        private static final long serialVersionUID = 1L;

        private void readObject(ObjectInputStream in) throws IOException, ClassNotFoundException {
            in.defaultReadObject();
            if (!JvmInternals.isApplicationLoader(JobUnload.class.getClassLoader())) {
                // A static method reference: the action must not capture this, or it would never be unreachable.
                PENDING.add(Sweeper.CLEANER.register(this, ThreadLocalSweep::clearQuietly));
            }
        }
    }

    /** Holds the cleaner, so that a JVM whose libraries are shared never starts its thread. */
    private static final class Sweeper {
        static final Cleaner CLEANER = Cleaner.create();
    }
}
