package dev.seqscore.scoring;

import dev.seqscore.events.InputRecord;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * The scorer's events in operator memory: those waiting for the watermark, across all users of the subtask, and
 * those the watermark has passed that wait for a batch row (a user has at most one row per batch, because the step
 * for its next event needs the state the current one returns).
 *
 * <p>Waiting events are released in (event time, arrival) order, so each user's events reach the model in the order
 * the contract defines. Not thread-safe; the operator checkpoints {@link #waitingByUser()} itself.
 */
final class PendingEvents {
    private record Waiting(InputRecord record, long seq) {}

    private final PriorityQueue<Waiting> waiting = new PriorityQueue<>((a, b) -> {
        int c = Long.compare(a.record.eventTime, b.record.eventTime);
        return c != 0 ? c : Long.compare(a.seq, b.seq);
    });
    private long seq;
    private final Map<String, ArrayDeque<InputRecord>> ready = new HashMap<>();
    /** Users with ready events, each once, in the order their turn comes. */
    private final ArrayDeque<String> readyUsers = new ArrayDeque<>();

    /** Keeps an event until the watermark passes its time. */
    void add(InputRecord r) {
        waiting.add(new Waiting(r, seq++));
    }

    /** Makes every waiting event at or before {@code watermark} ready, in (time, arrival) order; returns how many. */
    int release(long watermark) {
        int n = 0;
        while (!waiting.isEmpty() && waiting.peek().record.eventTime <= watermark) {
            InputRecord r = waiting.poll().record;
            ArrayDeque<InputRecord> q = ready.get(r.userId);
            if (q == null) {
                q = new ArrayDeque<>(2);
                ready.put(r.userId, q);
                readyUsers.add(r.userId);
            }
            q.add(r);
            n++;
        }
        return n;
    }

    boolean hasReady() {
        return !readyUsers.isEmpty();
    }

    /** Users with ready events right now. */
    int readyUsers() {
        return readyUsers.size();
    }

    /** The user whose turn it is, moved to the back of the turn order; null if no event is ready. */
    String nextReadyUser() {
        String user = readyUsers.poll();
        if (user != null) {
            readyUsers.add(user);
        }
        return user;
    }

    /** Takes the user's next ready event; the user leaves the turn order with its last one. */
    InputRecord takeReady(String user) {
        ArrayDeque<InputRecord> q = ready.get(user);
        InputRecord r = q.poll();
        if (q.isEmpty()) {
            ready.remove(user);
            // Just moved to the back by nextReadyUser: found at once.
            readyUsers.removeLastOccurrence(user);
        }
        return r;
    }

    int waiting() {
        return waiting.size();
    }

    boolean isEmpty() {
        return waiting.isEmpty() && readyUsers.isEmpty();
    }

    /** The waiting events grouped by user, each user's in the order they will be released: what a checkpoint keeps. */
    Map<String, List<InputRecord>> waitingByUser() {
        List<Waiting> all = new ArrayList<>(waiting);
        all.sort(waiting.comparator());
        Map<String, List<InputRecord>> out = new LinkedHashMap<>();
        for (Waiting w : all) {
            out.computeIfAbsent(w.record.userId, u -> new ArrayList<>(2)).add(w.record);
        }
        return out;
    }

    /** Drops every event of one user, waiting or ready; returns how many there were. */
    int removeUser(String user) {
        int before = waiting.size();
        waiting.removeIf(w -> user.equals(w.record.userId));
        int n = before - waiting.size();
        ArrayDeque<InputRecord> q = ready.remove(user);
        if (q != null) {
            n += q.size();
            readyUsers.remove(user);
        }
        return n;
    }
}
