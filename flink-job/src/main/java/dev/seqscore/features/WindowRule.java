package dev.seqscore.features;

import java.util.ArrayList;
import java.util.List;

/**
 * The contract's window rule (docs/feature-contract.md, "Window"), in two forms: over a user's full history (for
 * backtests and golden-vector parity), and incrementally over a list window. {@link PackedWindow#append} applies the
 * same rule to the window the scorer keeps in Flink state, and is tested against this class.
 *
 * <p>For event {@code e} at {@code t_e}: of the user's events up to and including {@code e}, in (event time, arrival)
 * order and without exact duplicates, keep those with {@code t_e - t_i < horizonMs}, then the last {@code maxEvents}.
 * Both forms give the same window for the same events.
 */
public final class WindowRule {
    private WindowRule() {}

    /**
     * The window of the last event of {@code history}.
     *
     * @param history the user's events oldest first, in (event time, arrival) order, ending with the scored event
     * @return a new list, oldest first; its last element is the scored event, or the earlier event it duplicates
     */
    public static List<WindowEvent> windowEndingAt(List<WindowEvent> history, int maxEvents, long horizonMs) {
        checkLimits(maxEvents, horizonMs);
        if (history.isEmpty()) {
            throw new IllegalArgumentException("history is empty: there is no event to end the window at");
        }
        List<WindowEvent> window = new ArrayList<>(Math.min(history.size(), maxEvents + 1));
        for (WindowEvent e : history) {
            appendAndEvict(window, e, maxEvents, horizonMs);
        }
        return window;
    }

    /**
     * Appends {@code e} to a user's window kept in state and evicts what the rule no longer keeps, so that afterwards
     * {@code window} is exactly the window of {@code e}.
     *
     * @param window the current window, oldest first (mutable, random access; {@link ArrayList} is best)
     * @param e      the user's next event; not earlier than the window's last event
     * @return false, leaving the window unchanged, if {@code e} duplicates an event already in the window (the
     *         contract drops exact duplicates, so such an event must not be scored)
     * @throws IllegalArgumentException if {@code e} is earlier than the window's last event
     */
    public static boolean appendAndEvict(List<WindowEvent> window, WindowEvent e, int maxEvents, long horizonMs) {
        checkLimits(maxEvents, horizonMs);
        if (isDuplicate(window, e)) {
            return false;
        }
        int size = window.size();
        if (size > 0 && window.get(size - 1).eventTime > e.eventTime) {
            // Appending it would silently break the window's order and every time-based feature.
            throw new IllegalArgumentException("event " + e + " is earlier than the window's last event "
                    + window.get(size - 1) + "; events must be appended in event-time order");
        }
        window.add(e);
        size++;
        int drop = Math.max(0, size - maxEvents);
        while (drop < size - 1 && outsideHorizon(window.get(drop), e.eventTime, horizonMs)) {
            drop++;
        }
        if (drop > 0) {
            window.subList(0, drop).clear();
        }
        return true;
    }

    /**
     * Whether {@code e} is an exact duplicate (see {@link WindowEvent#sameAs}) of an event in the time-ordered
     * {@code window}; only the tail with {@code e}'s event time can hold one. (A duplicate whose original was
     * already evicted by the count limit, i.e. behind more than maxEvents events with the very same time stamp, is
     * not detected.)
     */
    public static boolean isDuplicate(List<WindowEvent> window, WindowEvent e) {
        for (int i = window.size() - 1; i >= 0; i--) {
            WindowEvent w = window.get(i);
            if (w.eventTime < e.eventTime) return false;
            if (w.sameAs(e)) return true;
        }
        return false;
    }

    /** Whether an event at {@code eventTime} falls out of the window of an event at {@code newestTime}. */
    public static boolean outsideHorizon(long eventTime, long newestTime, long horizonMs) {
        return newestTime - eventTime >= horizonMs;
    }

    private static boolean outsideHorizon(WindowEvent head, long newestTime, long horizonMs) {
        return outsideHorizon(head.eventTime, newestTime, horizonMs);
    }

    private static void checkLimits(int maxEvents, long horizonMs) {
        if (maxEvents <= 0 || horizonMs <= 0) {
            throw new IllegalArgumentException("maxEvents and horizonMs must be positive, got " + maxEvents + " and "
                    + horizonMs);
        }
    }
}
