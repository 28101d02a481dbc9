package dev.seqscore.model.unload;

import java.lang.reflect.Field;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Thread locals that Avro and Jackson fill on whichever thread parses a schema and never empty, with values of the
 * library's own classes: on a JVM's long-lived threads they keep the job's class loader alive. On a JobManager those
 * threads are its {@code jobmanager-future-thread}s, where Flink's {@code AvroSerializer} parses the schemas of the
 * Avro-typed streams while it deserializes the job's stream graph.
 */
final class ThreadLocalSweep {
    private static final Logger LOG = LoggerFactory.getLogger(ThreadLocalSweep.class);

    /** (class, static field) of each cache. */
    private static final String[][] CACHES = {
        // Avro's default name validator: every Schema.Parser.parse() leaves it behind.
        {"org.apache.avro.Schema", "VALIDATE_NAMES"},
        // Jackson's buffer recycler (Avro's parser uses Jackson), behind a SoftReference: full GCs keep it for as long
        // as the heap has room, so the job's classes outlive it by an unbounded time.
        {"com.fasterxml.jackson.core.util.BufferRecyclers", "_recyclerRef"},
    };

    private ThreadLocalSweep() {}

    /**
     * Empties, on every thread, the caches of this job's own copies of Avro and Jackson. Nothing for copies shared
     * through the application class path.
     *
     * @return the number of entries cleared
     */
    static int clearCaches() {
        ClassLoader own = ThreadLocalSweep.class.getClassLoader();
        if (JvmInternals.isApplicationLoader(own)) {
            return 0;
        }
        int cleared = 0;
        for (String[] cache : CACHES) {
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

    /** {@link #clearCaches()}, for a cleaner's thread. */
    static void clearQuietly() {
        int cleared = clearCaches();
        if (cleared > 0) {
            LOG.debug("cleared {} thread-local caches of a finished job", cleared);
        }
    }
}
