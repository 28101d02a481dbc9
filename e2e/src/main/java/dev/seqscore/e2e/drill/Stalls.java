package dev.seqscore.e2e.drill;

import java.util.ArrayList;
import java.util.List;
import java.util.function.LongUnaryOperator;

/**
 * Finds the times when committed output stood still although input was waiting for it: between two moments at which
 * a read_committed consumer saw output grow (or from the last one to the end of the drill), while fewer distinct
 * outputs had been committed than the input already in Kafka called for. Recoveries are stalls too; a stall outside
 * every injection's window is one that nothing the drill did explains (such as an open transaction holding back the
 * last stable offset).
 */
final class Stalls {
    /** A stretch of time (nanoTime) in which committed output did not grow while input was waiting. */
    record Stall(long startNanos, long endNanos) {
        double seconds() {
            return (endNanos - startNanos) / 1e9;
        }

        boolean overlaps(long from, long to) {
            return startNanos < to && endNanos > from;
        }
    }

    /** A moment when committed output grew, with the distinct outputs committed by then. */
    record Point(long nanos, long distinct) {}

    private Stalls() {}

    /**
     * @param points    moments of output growth, in time order
     * @param fromNanos start of the observed period (the first job RUNNING)
     * @param toNanos   end of the observed period
     * @param expectedBy how many distinct outputs the input acknowledged by a moment calls for
     * @return the stalls, in time order
     */
    static List<Stall> find(List<Point> points, long fromNanos, long toNanos, LongUnaryOperator expectedBy) {
        List<Stall> out = new ArrayList<>();
        long since = fromNanos;
        long distinct = 0;
        for (Point p : points) {
            if (p.nanos() <= fromNanos) {
                distinct = p.distinct();
                continue;
            }
            if (p.nanos() > toNanos) {
                break;
            }
            if (distinct < expectedBy.applyAsLong(since)) {
                out.add(new Stall(since, p.nanos()));
            }
            since = p.nanos();
            distinct = p.distinct();
        }
        if (since < toNanos && distinct < expectedBy.applyAsLong(since)) {
            out.add(new Stall(since, toNanos));
        }
        return out;
    }

    /** The longest stall, or null if there is none. */
    static Stall longest(List<Stall> stalls) {
        Stall best = null;
        for (Stall s : stalls) {
            if (best == null || s.seconds() > best.seconds()) {
                best = s;
            }
        }
        return best;
    }
}
