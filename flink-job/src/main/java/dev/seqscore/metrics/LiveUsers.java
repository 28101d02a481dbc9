package dev.seqscore.metrics;

import org.apache.flink.metrics.Gauge;

/**
 * Approximately how many users have a window on one scorer subtask: windows created minus windows cleared by their
 * horizon timer. Counting keys of the state backend would be exact but costs a scan; this costs an increment.
 *
 * <p>Approximate because a window that the processing-time TTL backstop expires (only when a user's watermark
 * stalls) stays counted, and is counted again if the user returns; users whose events are all still waiting for the
 * watermark are not counted. The count is checkpointed: a restart at the same parallelism restores each subtask's
 * own count; after rescaling, each subtask takes an equal share of the total.
 */
public final class LiveUsers implements Gauge<Long> {
    // Written by the task thread, read by the reporter's thread.
    private volatile long count;

    public LiveUsers(long initial) {
        this.count = Math.max(0, initial);
    }

    /** A user's window went from empty to non-empty. */
    public void windowCreated() {
        count = count + 1;
    }

    /** A user's window was cleared. Never below zero, whatever a restore got wrong. */
    public void windowCleared() {
        if (count > 0) {
            count = count - 1;
        }
    }

    public long count() {
        return count;
    }

    @Override
    public Long getValue() {
        return count;
    }

    /** This subtask's entry in the operator's union list state: (subtask, parallelism, count). */
    public long[] snapshot(int subtask, int parallelism) {
        return new long[] {subtask, parallelism, count};
    }

    /**
     * The count for {@code subtask} from every subtask's snapshot entry: its own when the parallelism is unchanged,
     * otherwise an equal share of the total (the lowest subtasks take the remainder, so the shares add up).
     */
    public static LiveUsers restore(Iterable<long[]> entries, int subtask, int parallelism) {
        long total = 0;
        long own = 0;
        boolean sameParallelism = true;
        boolean any = false;
        for (long[] e : entries) {
            any = true;
            total += e[2];
            if (e[1] != parallelism) {
                sameParallelism = false;
            } else if (e[0] == subtask) {
                own += e[2];
            }
        }
        if (!any) {
            return new LiveUsers(0);
        }
        if (sameParallelism) {
            return new LiveUsers(own);
        }
        return new LiveUsers(total / parallelism + (subtask < total % parallelism ? 1 : 0));
    }
}
