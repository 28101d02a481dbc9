package dev.seqscore.model.unload;

import java.lang.ref.Reference;
import java.lang.reflect.Field;
import java.lang.reflect.InaccessibleObjectException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Reads and undoes JVM-wide registrations that libraries make and never undo: shutdown hooks and thread-local values.
 * The JDK offers no API to list either, so this reflects into {@code java.lang}, which needs
 * {@code --add-opens=java.base/java.lang=ALL-UNNAMED}: Flink's default {@code env.java.opts.all} for Java 17 has it,
 * and the failure message says so when it is missing.
 */
final class JvmInternals {
    private static final String OPENS_HINT =
            " (the JVM needs --add-opens=java.base/java.lang=ALL-UNNAMED, which Flink's default config sets)";

    private JvmInternals() {}

    /** True for the application class loader and its parents: loaders that live as long as the JVM. */
    static boolean isApplicationLoader(ClassLoader loader) {
        if (loader == null) {
            return true;
        }
        for (ClassLoader l = ClassLoader.getSystemClassLoader(); l != null; l = l.getParent()) {
            if (l == loader) {
                return true;
            }
        }
        return false;
    }

    /** The registered, not yet started shutdown hooks of this JVM. */
    static List<Thread> shutdownHooks() {
        try {
            Class<?> hooksClass = Class.forName("java.lang.ApplicationShutdownHooks");
            Field field = accessible(hooksClass.getDeclaredField("hooks"));
            // The JDK adds and removes hooks under the class's lock.
            synchronized (hooksClass) {
                Map<?, ?> hooks = (Map<?, ?>) field.get(null);
                if (hooks == null) {
                    return List.of(); // the JVM is shutting down
                }
                List<Thread> out = new ArrayList<>();
                for (Object h : hooks.keySet()) {
                    out.add((Thread) h);
                }
                return out;
            }
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot list the JVM's shutdown hooks: " + e, e);
        }
    }

    /** The Runnable a thread was created with: {@code Thread.target} up to Java 17, {@code holder.task} after. */
    static Runnable task(Thread thread) {
        try {
            Field target = accessible(Thread.class.getDeclaredField("target"));
            return (Runnable) target.get(thread);
        } catch (NoSuchFieldException e) {
            try {
                Field holderField = accessible(Thread.class.getDeclaredField("holder"));
                Object holder = holderField.get(thread);
                if (holder == null) {
                    return null;
                }
                return (Runnable) accessible(holder.getClass().getDeclaredField("task")).get(holder);
            } catch (ReflectiveOperationException e2) {
                throw new IllegalStateException("cannot read a thread's task: " + e2, e2);
            }
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot read a thread's task: " + e, e);
        }
    }

    /**
     * Makes an unstarted thread forget the code that created it: its context class loader becomes {@code loader},
     * and the access-control context it inherited (the protection domains of every frame on the creating stack,
     * which name their class loaders) is dropped; the JDK treats a missing one as "no restrictions inherited". Java
     * 24 and later no longer have that field.
     */
    static void forgetCreator(Thread thread, ClassLoader loader) {
        thread.setContextClassLoader(loader);
        Field inherited;
        try {
            inherited = Thread.class.getDeclaredField("inheritedAccessControlContext");
        } catch (NoSuchFieldException e) {
            return;
        }
        try {
            accessible(inherited).set(thread, null);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("cannot reset a thread's access-control context: " + e, e);
        }
    }

    /**
     * Empties every live thread's entry for this thread local, and returns how many there were.
     *
     * <p>Another thread's {@code ThreadLocalMap} is not thread-safe, so this never changes a map's structure: it
     * clears the entry's key and value in place, which turns it into the stale entry that the owning thread expunges
     * on its own later. Only meant for a thread local that no running code uses any more (the owner would then merely
     * see its initial value again).
     */
    static int clearEverywhere(ThreadLocal<?> key) {
        Objects.requireNonNull(key);
        try {
            Field threadLocals = accessible(Thread.class.getDeclaredField("threadLocals"));
            Class<?> mapClass = Class.forName("java.lang.ThreadLocal$ThreadLocalMap");
            Field table = accessible(mapClass.getDeclaredField("table"));
            Field value = accessible(Class.forName("java.lang.ThreadLocal$ThreadLocalMap$Entry")
                    .getDeclaredField("value"));
            int cleared = 0;
            for (Thread t : liveThreads()) {
                Object map = threadLocals.get(t);
                if (map == null) {
                    continue;
                }
                for (Object entry : (Object[]) table.get(map)) {
                    if (entry != null && ((Reference<?>) entry).get() == key) {
                        value.set(entry, null);
                        ((Reference<?>) entry).clear();
                        cleared++;
                    }
                }
            }
            return cleared;
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot clear a thread local on other threads: " + e, e);
        }
    }

    private static List<Thread> liveThreads() {
        ThreadGroup root = Thread.currentThread().getThreadGroup();
        while (root.getParent() != null) {
            root = root.getParent();
        }
        Thread[] threads = new Thread[root.activeCount() + 16];
        int n;
        while ((n = root.enumerate(threads, true)) == threads.length) {
            threads = new Thread[threads.length * 2];
        }
        return Arrays.asList(threads).subList(0, n);
    }

    private static Field accessible(Field f) {
        try {
            f.setAccessible(true);
            return f;
        } catch (InaccessibleObjectException e) {
            throw new IllegalStateException("cannot access " + f + OPENS_HINT, e);
        }
    }
}
