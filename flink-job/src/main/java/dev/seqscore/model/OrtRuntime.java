package dev.seqscore.model;

import ai.onnxruntime.OrtEnvironment;
import dev.seqscore.model.unload.JobUnload;
import java.util.concurrent.Callable;
import java.util.function.Predicate;

/**
 * The ONNX Runtime environment of this copy of ORT's classes: created on a thread with a large stack, shared by every
 * session, and counted, so that what the job must undo when it ends ({@link JobUnload}) never frees it under an open
 * session.
 *
 * <p>Stack. Measured on the 2-core AMD EPYC build machine with ORT 1.29.0: {@code OrtEnvironment.getEnvironment()}
 * kills the JVM with SIGSEGV (no hs_err file) when the calling thread has a stack of 2 MB or less (the JVM default is
 * 1 MB), and succeeds with 4 MB; once the environment exists, sessions open and run fine on default-stack threads.
 * Flink task threads and the client's main thread have default stacks, so the first call goes through here instead.
 */
public final class OrtRuntime {
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
            JobUnload.ortEnvironmentCreated();
        }
        users++;
        return environment;
    }

    static synchronized void unused() {
        if (users > 0) {
            users--;
        }
    }

    /**
     * Unless a session is open, runs {@code free} under this class's lock, given whether this copy created an
     * environment; when it returns true (the environment is gone, or there was none), the environment is forgotten,
     * so that the next session creates a new one.
     *
     * @return the number of open sessions, which kept the environment; 0 if {@code free} ran
     */
    public static synchronized int releaseIfNoSessions(Predicate<Boolean> free) {
        if (users > 0) {
            return users;
        }
        if (free.test(environment != null)) {
            environment = null;
        }
        return 0;
    }

    /** Runs ORT's environment calls on a thread whose stack ORT survives, waiting however long they take. */
    public static <T> T onLargeStack(String name, String what, Callable<T> call) {
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
