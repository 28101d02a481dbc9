package dev.seqscore.offline;

import dev.seqscore.events.InputRecord;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.model.unload.JobUnload;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.scoring.ScoringSettings;
import dev.seqscore.scoring.UserStep;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * Computes, in a bounded BATCH-mode job, each user's {@link dev.seqscore.scoring.UserState} value as the job's
 * {@link dev.seqscore.scoring.ScoringOperator} would hold it at the cut-off time T after consuming the user's history:
 * the same {@link UserStep} (window, reset rule, lifetime record, model call, recurrent state, alert cooldowns,
 * cleanup timer), the same {@link FeatureBatch} and {@link OnnxScorer}.
 *
 * <p>BATCH mode hands a keyed operator its input sorted by key (and by timestamp within a key), so each user's events
 * arrive together. They are kept here, re-sorted stably by (event time, partition, offset): the job's order, since
 * Flink's sort leaves ties of equal timestamps in any order. Users are then scored in lockstep: up to
 * {@code maxBatch} users in flight (their events and their value as plain bytes, no Flink state), one row per user
 * per ONNX Runtime call, as in the job. Before each event the user's cleanup timer fires if it is due before the
 * event; after the last event it fires for as long as it is due before T, so a user whose state the job would have
 * forgotten by T is not written. Memory: the users in flight, never all users.
 *
 * <p>Output: one {@link UserValue} per user with state at T.
 */
final class BootstrapScorer extends AbstractStreamOperator<UserValue>
        implements OneInputStreamOperator<InputRecord, UserValue>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    static final String USERS = "bootstrap-users";
    static final String USERS_GONE = "bootstrap-users-gone-by-T";
    static final String EVENTS = "bootstrap-events";
    static final String DUPLICATES = "bootstrap-duplicates";
    static final String VALUE_BYTES = "bootstrap-value-bytes";

    /** Ties of equal event time in the order the job applies them: arrival (partition, offset; line for files). */
    private static final Comparator<InputRecord> ORDER = Comparator.comparingLong((InputRecord r) -> r.eventTime)
            .thenComparingInt(r -> r.sourcePartition)
            .thenComparingLong(r -> r.sourceOffset);

    private final ScoringSettings settings;
    private final long untilMs;
    private final boolean fileDuplicates;

    private transient UserStep step;
    private transient OnnxScorer scorer;
    private transient FeatureBatch batch;
    private transient float[][] results;
    private transient float[] scores;
    private transient List<Flight> flights;
    private transient Flight[] rowOwner;
    private transient String collectingUser;
    private transient List<InputRecord> collecting;
    private transient LongCounter users;
    private transient LongCounter usersGone;
    private transient LongCounter events;
    private transient LongCounter duplicates;
    private transient LongCounter valueBytes;

    /** One user in flight: its events, the next one to apply, and its value and timer so far. */
    private static final class Flight {
        final String user;
        final List<InputRecord> events;
        int next;
        byte[] state;
        long timer = UserStep.NONE;
        long eventTime;

        Flight(String user, List<InputRecord> events) {
            this.user = user;
            this.events = events;
        }
    }

    /**
     * @param untilMs        T: timers due before it fire
     * @param fileDuplicates drop a user's later rows equal in item, event type and event time to an earlier one, as
     *                       the file cleaning contract (and so the backtest) does
     */
    BootstrapScorer(ScoringSettings settings, long untilMs, boolean fileDuplicates) {
        this.settings = Objects.requireNonNull(settings);
        this.untilMs = untilMs;
        this.fileDuplicates = fileDuplicates;
    }

    @Override
    public void open() throws Exception {
        super.open();
        JobUnload.releaseWhenJobEnds(getRuntimeContext());
        step = new UserStep(settings);
        int maxBatch = settings.maxBatch();
        scorer = new OnnxScorer(settings.bundle(), settings.scoring(), settings.ortThreads());
        batch = FeatureBatch.forServed(settings.bundle().spec(), settings.served(), maxBatch);
        results = new float[settings.served().outputs().size()][maxBatch];
        scores = new float[results.length];
        flights = new ArrayList<>(maxBatch);
        rowOwner = new Flight[maxBatch];
        collecting = new ArrayList<>();
        users = counter(USERS);
        usersGone = counter(USERS_GONE);
        events = counter(EVENTS);
        duplicates = counter(DUPLICATES);
        valueBytes = counter(VALUE_BYTES);
    }

    private LongCounter counter(String name) {
        LongCounter c = new LongCounter();
        getRuntimeContext().addAccumulator(name, c);
        return c;
    }

    @Override
    public void processElement(StreamRecord<InputRecord> element) throws Exception {
        InputRecord r = element.getValue();
        if (!r.userId.equals(collectingUser)) {
            admitCollected();
            collectingUser = r.userId;
        }
        r.raw = null;
        collecting.add(r);
    }

    @Override
    public void endInput() throws Exception {
        admitCollected();
        while (!flights.isEmpty()) {
            round();
        }
    }

    /** The user whose events have all arrived joins the flights; full flights take a round first. */
    private void admitCollected() throws Exception {
        if (collecting.isEmpty()) {
            return;
        }
        List<InputRecord> mine = collecting;
        collecting = new ArrayList<>();
        mine.sort(ORDER);
        if (fileDuplicates) {
            mine = withoutDuplicates(mine);
        }
        flights.add(new Flight(collectingUser, mine));
        while (flights.size() >= settings.maxBatch()) {
            round();
        }
    }

    /** The file contract's exact duplicates (same item, type and time as an earlier row) of one user's sorted rows. */
    private List<InputRecord> withoutDuplicates(List<InputRecord> sorted) {
        List<InputRecord> kept = new ArrayList<>(sorted.size());
        int sameTimeFrom = 0;
        for (InputRecord r : sorted) {
            if (!kept.isEmpty() && kept.get(kept.size() - 1).eventTime.longValue() != r.eventTime) {
                sameTimeFrom = kept.size();
            }
            boolean duplicate = false;
            for (int i = sameTimeFrom; i < kept.size() && !duplicate; i++) {
                InputRecord k = kept.get(i);
                duplicate = k.itemId.equals(r.itemId) && k.eventType.equals(r.eventType);
            }
            if (duplicate) {
                duplicates.add(1);
            } else {
                kept.add(r);
            }
        }
        return kept;
    }

    /** Every user in flight applies its next event; one model call; finished users leave. */
    private void round() throws Exception {
        batch.clear();
        for (Flight f : flights) {
            while (f.next < f.events.size()) {
                InputRecord e = f.events.get(f.next++);
                fireTimersBefore(f, e.eventTime);
                int row = step.add(f.state, e, batch);
                if (row < 0) {
                    duplicates.add(1);
                    continue;
                }
                f.state = step.state();
                f.eventTime = e.eventTime;
                rowOwner[row] = f;
                break;
            }
        }
        int n = batch.size;
        if (n > 0) {
            scorer.score(batch, results);
            for (int row = 0; row < n; row++) {
                Flight f = rowOwner[row];
                for (int o = 0; o < results.length; o++) {
                    scores[o] = results[o][row];
                }
                // Alerts are decided (the cooldown is part of the state) but not emitted: history is not alerted on.
                long timer = step.complete(f.state, batch, row, scores, f.eventTime, o -> { });
                f.state = step.completed();
                if (timer != UserStep.NONE) {
                    f.timer = timer;
                }
                rowOwner[row] = null;
            }
            events.add(n);
        }
        for (int i = flights.size() - 1; i >= 0; i--) {
            Flight f = flights.get(i);
            if (f.next == f.events.size()) {
                flights.remove(i);
                finish(f);
            }
        }
    }

    /** The user's cleanup timer, as the job's timer service fires it: whenever it is due before {@code time}. */
    private void fireTimersBefore(Flight f, long time) {
        while (f.state != null && f.timer != UserStep.NONE && f.timer < time) {
            UserStep.Cleanup c = step.cleanup(f.state, f.timer);
            if (c == null) {
                f.timer = UserStep.NONE;
                return;
            }
            f.state = c.value();
            f.timer = c.value() == null ? UserStep.NONE : c.nextTimer();
        }
    }

    private void finish(Flight f) {
        fireTimersBefore(f, untilMs);
        if (f.state == null) {
            // Scored, but the job would have forgotten the user by T (window past its horizon, model state past its
            // TTL, no cooldown running).
            if (!f.events.isEmpty()) {
                usersGone.add(1);
            }
            return;
        }
        users.add(1);
        valueBytes.add(f.state.length);
        output.collect(new StreamRecord<>(new UserValue(f.user, f.state, f.timer)));
    }

    @Override
    public void close() throws Exception {
        try {
            if (scorer != null) {
                scorer.close();
                scorer = null;
            }
        } finally {
            super.close();
        }
    }
}
