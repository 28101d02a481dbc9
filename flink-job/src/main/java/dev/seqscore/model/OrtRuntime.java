package dev.seqscore.model;

import ai.onnxruntime.OrtEnvironment;

/**
 * The process-wide ONNX Runtime environment, created on a thread with a large stack.
 *
 * <p>Measured on the 2-core AMD EPYC build machine with ORT 1.29.0: {@code OrtEnvironment.getEnvironment()} kills
 * the JVM with SIGSEGV (no hs_err file) when the calling thread has a stack of 2 MB or less (the JVM default is 1 MB),
 * and succeeds with 4 MB; once the environment exists, sessions open and run fine on default-stack threads. Flink
 * task threads and the client's main thread have default stacks, so the first call goes through here instead.
 */
final class OrtRuntime {
    private static final long INIT_STACK_BYTES = 16L << 20;

    private static volatile OrtEnvironment environment;

    private OrtRuntime() {}

    static OrtEnvironment environment() {
        OrtEnvironment env = environment;
        if (env != null) {
            return env;
        }
        synchronized (OrtRuntime.class) {
            if (environment == null) {
                environment = createOnLargeStack();
            }
            return environment;
        }
    }

    private static OrtEnvironment createOnLargeStack() {
        Object[] result = new Object[1];
        Thread init = new Thread(null, () -> {
            try {
                result[0] = OrtEnvironment.getEnvironment();
            } catch (Throwable t) {
                result[0] = t;
            }
        }, "onnxruntime-init", INIT_STACK_BYTES);
        init.setDaemon(true);
        init.start();
        boolean interrupted = false;
        while (true) {
            try {
                init.join();
                break;
            } catch (InterruptedException e) {
                // Giving up half-way would leave the native environment in an unknown state; finish, then re-flag.
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (result[0] instanceof OrtEnvironment env) {
            return env;
        }
        throw new IllegalStateException("cannot initialise ONNX Runtime: " + result[0], (Throwable) result[0]);
    }
}
