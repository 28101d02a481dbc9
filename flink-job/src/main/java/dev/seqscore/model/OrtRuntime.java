package dev.seqscore.model;

import ai.onnxruntime.OrtEnvironment;
import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ONNX Runtime environment of this copy of ORT's classes: created on a thread with a large stack, shared by every
 * session, and released when the copy is thrown away with a job's class loader.
 *
 * <p>Stack. Measured on the 2-core AMD EPYC build machine with ORT 1.29.0: {@code OrtEnvironment.getEnvironment()}
 * kills the JVM with SIGSEGV (no hs_err file) when the calling thread has a stack of 2 MB or less (the JVM default is
 * 1 MB), and succeeds with 4 MB; once the environment exists, sessions open and run fine on default-stack threads.
 * Flink task threads and the client's main thread have default stacks, so the first call goes through here instead.
 *
 * <p>Release. {@code OrtEnvironment}'s constructor registers a JVM shutdown hook ({@code OrtEnvCloser}) and never
 * removes it; its {@code close()} does nothing. The hook's class keeps the class loader that loaded ORT alive until the
 * JVM exits. When ORT came inside the job jar, that loader is the job's, so a session cluster would keep every
 * cancelled job's classes (and another copy of ORT's native library) forever. {@link #release()} removes the hook,
 * frees the native environment and deletes the native library files ORT extracted. It does so only for a private
 * copy: when ORT is on the application class path (the demo, the backtest, tests, or a cluster with ORT in
 * {@code lib/}), all jobs of the JVM share one environment, which stays. Its hook then pins no class of ORT that could
 * be unloaded, but as a thread created under the first job's code it would keep that job's loader; so it is made to
 * forget it.
 */
public final class OrtRuntime {
    private static final Logger LOG = LoggerFactory.getLogger(OrtRuntime.class);
    private static final long LARGE_STACK_BYTES = 16L << 20;

    // Guarded by OrtRuntime.class.
    private static OrtEnvironment environment;
    /** Sessions open on {@link #environment}: freeing it under them would crash the JVM. */
    private static int users;

    private OrtRuntime() {}

    /** The environment, created on first use; pair every call with {@link #unused()} once the session is closed. */
    static synchronized OrtEnvironment acquire() {
        if (environment == null) {
            environment = onLargeStack("onnxruntime-init", "initialise ONNX Runtime", OrtEnvironment::getEnvironment);
            if (!isPrivateCopy() && !JvmInternals.isApplicationLoader(OrtRuntime.class.getClassLoader())) {
                detachSharedHook();
            }
        }
        users++;
        return environment;
    }

    /**
     * A shared ORT's shutdown hook stays for the JVM's life, and as a thread created under this job's code (from a
     * job's class loader, ORT from {@code lib/}) it would keep this job's class loader with it: its context class
     * loader and its inherited access-control context (measured: one loader per JobManager and TaskManager).
     */
    private static void detachSharedHook() {
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

    static synchronized void unused() {
        if (users > 0) {
            users--;
        }
    }

    /**
     * True if ORT's classes were loaded by the same class loader as this class and that loader is not the
     * application class loader (or one of its parents): ORT came in the job jar and goes away with the job.
     */
    public static boolean isPrivateCopy() {
        ClassLoader ort = OrtEnvironment.class.getClassLoader();
        return ort == OrtRuntime.class.getClassLoader() && !JvmInternals.isApplicationLoader(ort);
    }

    /**
     * Lets go of everything this private copy of ORT holds in the JVM: removes its shutdown hook, frees its native
     * environment and deletes its extracted native libraries. Does nothing for a shared copy, and logs a warning and
     * keeps everything (a leak rather than a crash) while sessions are still open. ORT stays usable: the next
     * session creates a new environment.
     *
     * @return whether an environment or its hook was released
     */
    public static synchronized boolean release() {
        if (!isPrivateCopy()) {
            return false;
        }
        if (users > 0) {
            LOG.warn("{} ONNX Runtime session(s) of this job are still open; keeping ORT's environment and its "
                    + "shutdown hook, which keep this job's class loader in memory", users);
            return false;
        }
        return releaseUnused();
    }

    /** {@link #release()} when no session is open, and quietly nothing otherwise: for callers that may share. */
    static synchronized boolean releaseIfUnused() {
        return isPrivateCopy() && users == 0 && releaseUnused();
    }

    private static boolean releaseUnused() {
        boolean released = false;
        try {
            synchronized (OrtEnvironment.class) {
                for (Thread hook : ortHooks()) {
                    try {
                        if (!Runtime.getRuntime().removeShutdownHook(hook)) {
                            continue;
                        }
                    } catch (IllegalStateException shuttingDown) {
                        return false; // the hook is about to run anyway
                    }
                    // The hook's own task frees the native environment: OrtEnvironment.close() does nothing.
                    onLargeStack("onnxruntime-release", "free ONNX Runtime's environment", () -> {
                        hook.run();
                        return null;
                    });
                    released = true;
                }
                if (released || environment != null) {
                    // Or the next getEnvironment() of this copy would hand out the freed environment. Skipped when no
                    // environment was made: writing the field initialises the class, which loads the native library.
                    Field instance = OrtEnvironment.class.getDeclaredField("INSTANCE");
                    instance.setAccessible(true);
                    instance.set(null, null);
                    environment = null;
                }
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            LOG.warn("cannot release ONNX Runtime's environment ({}); this job's class loader stays in memory until "
                    + "the JVM exits", e.toString());
            return false;
        }
        deleteExtractedLibraries();
        return released;
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

    /** Runs ORT's environment calls on a thread whose stack ORT survives, waiting however long they take. */
    private static <T> T onLargeStack(String name, String what, Callable<T> call) {
        Object[] result = new Object[1];
        Thread thread = new Thread(null, () -> {
            try {
                result[0] = call.call();
            } catch (Throwable t) {
                result[0] = t;
            }
        }, name, LARGE_STACK_BYTES);
        thread.setDaemon(true);
        thread.start();
        boolean interrupted = false;
        while (true) {
            try {
                thread.join();
                break;
            } catch (InterruptedException e) {
                // Giving up half-way would leave the native environment in an unknown state; finish, then re-flag.
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (result[0] instanceof Throwable t) {
            throw new IllegalStateException("cannot " + what + ": " + t, t);
        }
        @SuppressWarnings("unchecked")
        T value = (T) result[0];
        return value;
    }
}
