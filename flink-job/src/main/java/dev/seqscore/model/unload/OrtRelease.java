package dev.seqscore.model.unload;

import ai.onnxruntime.OrtEnvironment;
import dev.seqscore.model.OrtRuntime;
import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What ONNX Runtime leaves in a JVM that outlives the job. {@code OrtEnvironment}'s constructor registers a JVM
 * shutdown hook ({@code OrtEnvCloser}) and never removes it; its {@code close()} does nothing. The hook's class keeps
 * the class loader that loaded ORT alive until the JVM exits. When ORT came inside the job jar, that loader is the
 * job's, so a session cluster would keep every cancelled job's classes (and another copy of ORT's native library)
 * forever. {@link #release} removes the hook, frees the native environment and deletes the native library files ORT
 * extracted. It does so only for a private copy: when ORT is on the application class path (the demo, the backtest,
 * tests, or a cluster with ORT in {@code lib/}), all jobs of the JVM share one environment, which stays. Its hook
 * then pins no class of ORT that could be unloaded, but as a thread created under the first job's code it would keep
 * that job's loader; so it is made to forget it ({@link #detachSharedHook}).
 */
final class OrtRelease {
    private static final Logger LOG = LoggerFactory.getLogger(OrtRelease.class);

    private OrtRelease() {}

    /**
     * True if ORT's classes were loaded by the same class loader as the job's and that loader is not the application
     * class loader (or one of its parents): ORT came in the job jar and goes away with the job.
     */
    static boolean isPrivateCopy() {
        ClassLoader ort = OrtEnvironment.class.getClassLoader();
        return ort == OrtRuntime.class.getClassLoader() && !JvmInternals.isApplicationLoader(ort);
    }

    /** Whether a just created environment is the shared one of a copy in lib/ that a job's code created. */
    static boolean isSharedFromJob() {
        return !isPrivateCopy() && !JvmInternals.isApplicationLoader(OrtRuntime.class.getClassLoader());
    }

    /**
     * A shared ORT's shutdown hook stays for the JVM's life, and as a thread created under this job's code (from a
     * job's class loader, ORT from {@code lib/}) it would keep this job's class loader with it: its context class
     * loader and its inherited access-control context (measured: one loader per JobManager and TaskManager).
     */
    static void detachSharedHook() {
        try {
            ClassLoader ort = OrtEnvironment.class.getClassLoader();
            for (Thread hook : ortHooks()) {
                JvmInternals.forgetCreator(hook, ort);
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            LOG.warn("cannot detach ONNX Runtime's shutdown hook from this job ({}); this job's class loader stays in "
                    + "memory until the JVM exits", e.toString());
        }
    }

    /**
     * Lets go of everything a private copy of ORT holds in the JVM, if no session is open: removes its shutdown hook,
     * frees its native environment and deletes its extracted native libraries. ORT stays usable: the next session
     * creates a new environment.
     *
     * @param warnIfInUse log a warning (a leak rather than a crash) when sessions are still open; quietly nothing
     *                    otherwise, for callers that may share the copy with running tasks
     * @return whether an environment or its hook was released
     */
    static boolean release(boolean warnIfInUse) {
        if (!isPrivateCopy()) {
            return false;
        }
        Freed[] outcome = {Freed.STOPPED};
        int open = OrtRuntime.releaseIfNoSessions(created -> (outcome[0] = freeEnvironment(created)) != Freed.STOPPED);
        if (open > 0) {
            if (warnIfInUse) {
                LOG.warn("{} ONNX Runtime session(s) of this job are still open; keeping ORT's environment and its "
                        + "shutdown hook, which keep this job's class loader in memory", open);
            }
            return false;
        }
        if (outcome[0] == Freed.STOPPED) {
            return false;
        }
        deleteExtractedLibraries();
        return outcome[0] == Freed.ENVIRONMENT;
    }

    /** What {@link #freeEnvironment} did. */
    private enum Freed {
        /** ran ORT's hook and reset its singleton */
        ENVIRONMENT,
        /** found no hook of this copy to run */
        NOTHING,
        /** failed, or the JVM is shutting down: everything is kept */
        STOPPED
    }

    /**
     * Runs ORT's own hook to free the native environment ({@code OrtEnvironment.close()} does nothing) and resets
     * ORT's singleton; called with no session open, under {@link OrtRuntime}'s lock.
     *
     * @param created whether this copy created an environment at all
     */
    private static Freed freeEnvironment(boolean created) {
        boolean released = false;
        try {
            synchronized (OrtEnvironment.class) {
                for (Thread hook : ortHooks()) {
                    try {
                        if (!Runtime.getRuntime().removeShutdownHook(hook)) {
                            continue;
                        }
                    } catch (IllegalStateException shuttingDown) {
                        return Freed.STOPPED; // the hook is about to run anyway
                    }
                    OrtRuntime.onLargeStack("onnxruntime-release", "free ONNX Runtime's environment", () -> {
                        hook.run();
                        return null;
                    });
                    released = true;
                }
                if (released || created) {
                    // Or the next getEnvironment() of this copy would hand out the freed environment. Skipped when no
                    // environment was made: writing the field initialises the class, which loads the native library.
                    Field instance = OrtEnvironment.class.getDeclaredField("INSTANCE");
                    instance.setAccessible(true);
                    instance.set(null, null);
                }
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            LOG.warn("cannot release ONNX Runtime's environment ({}); this job's class loader stays in memory until "
                    + "the JVM exits", e.toString());
            return Freed.STOPPED;
        }
        return released ? Freed.ENVIRONMENT : Freed.NOTHING;
    }

    /** The shutdown hooks that this copy of ORT registered. */
    private static List<Thread> ortHooks() throws ClassNotFoundException {
        Class<?> closer = Class.forName(OrtEnvironment.class.getName() + "$OrtEnvCloser", false,
                OrtEnvironment.class.getClassLoader());
        List<Thread> out = new ArrayList<>();
        for (Thread hook : JvmInternals.shutdownHooks()) {
            Runnable task = JvmInternals.task(hook);
            if (task != null && task.getClass() == closer) {
                out.add(hook);
            }
        }
        return out;
    }

    /**
     * ORT extracts its native libraries into a fresh temporary directory per copy and only deletes it at JVM exit:
     * about 28 MB of disk per job and JVM. The files are still mapped until the loader is collected; deleting a
     * mapped file is fine on Linux, and no other copy loads from this directory.
     */
    private static void deleteExtractedLibraries() {
        try {
            Class<?> runtime = Class.forName("ai.onnxruntime.OnnxRuntime", false,
                    OrtEnvironment.class.getClassLoader());
            Field dirField = runtime.getDeclaredField("tempDirectory");
            dirField.setAccessible(true);
            Path dir = (Path) dirField.get(null);
            if (dir == null || !Files.isDirectory(dir)) {
                return;
            }
            List<Path> files;
            try (Stream<Path> s = Files.list(dir)) {
                files = s.toList();
            }
            for (Path f : files) {
                Files.deleteIfExists(f);
            }
            Files.deleteIfExists(dir);
        } catch (ReflectiveOperationException | IOException | RuntimeException e) {
            LOG.info("ONNX Runtime's extracted libraries stay on disk until the JVM exits: {}", e.toString());
        }
    }
}
