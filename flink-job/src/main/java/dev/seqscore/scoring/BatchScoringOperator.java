package dev.seqscore.scoring;

import dev.seqscore.avro.DeadLetter;
import dev.seqscore.events.DeadLetterReason;
import dev.seqscore.events.DeadLetters;
import dev.seqscore.events.InputRecord;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.model.ClassLoaderRelease;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.features.Fnv1a64;
import dev.seqscore.features.PackedWindow;
import dev.seqscore.reasons.Explainer;
import dev.seqscore.reasons.Reason;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import dev.seqscore.metrics.JobMetrics;
import dev.seqscore.metrics.LiveUsers;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.api.common.typeutils.base.IntSerializer;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.util.OutputTag;

/**
 * Keeps each user's sliding window and scores every event in event-time order, like a keyed process function, but
 * gathers the events that become ready, across users, into one ONNX Runtime call (Flink's mini-batch pattern).
 *
 * <p>A ready event updates its user's window at once (under that user's key); only the model call waits. The window
 * is one {@link PackedWindow} value, read and written once per ready event time and encoded straight from its slots;
 * one cleanup timer per window clears it once the watermark passes its newest event + H. The batch
 * is scored when it is full, when its oldest row has waited {@code maxDelay} of processing time, before every
 * checkpoint barrier and at the end of input. Watermarks are held back until the rows before them are emitted, so
 * downstream event-time logic never sees a score behind the watermark. Rows whose score reaches an alert threshold
 * then get their reasons ({@link Explainer}) in one more call for the batch.
 *
 * <p>Metrics ({@link JobMetrics}): scored, late, duplicate, dead-lettered and explained events; histograms of the
 * ONNX Runtime call time, batch size, event-time lag at emit, window length and the reasons call's time; the model
 * version; and the users with a window, checkpointed as operator state so that a restart does not reset it.
 */
public final class BatchScoringOperator extends AbstractStreamOperator<ScoredEvent>
        implements OneInputStreamOperator<InputRecord, ScoredEvent>, Triggerable<String, Integer> {
    private static final long serialVersionUID = 1L;

    /** Name of the per-user window state (since the packed layout: a {@code ValueState<byte[]>}). */
    static final String WINDOW_STATE = "window";
    /** Timer namespaces: events at this time are ready; the window may be past its horizon. */
    private static final Integer READY = 0;
    private static final Integer CLEANUP = 1;

    public static final OutputTag<DeadLetter> LATE =
            new OutputTag<>("late-events", TypeInformation.of(DeadLetter.class));

    private final ModelBundle bundle;
    private final int maxEvents;
    private final long horizonMs;
    private final Duration stateTtl;
    private final int intraOpThreads;
    private final int maxBatch;
    private final long maxDelayMs;
    /** Per output, the score from which an event gets reasons; null when reasons are off. */
    private final double[] explainAt;
    private final int reasonTop;

    /** The user's window as a {@link PackedWindow}: one read and one write per ready timestamp. */
    private transient ValueState<byte[]> window;
    private transient PackedWindow packed;
    private transient StreamRecord<ScoredEvent> outRecord;
    private transient MapState<Long, List<InputRecord>> pending;
    /**
     * Event-time timers of two kinds in one queue, so that they fire in time order across kinds (a window must not be
     * cleared while an event within its horizon still waits): {@link #READY} at each event time with events waiting
     * for the watermark, {@link #CLEANUP} once per window at its newest event + H, moved as events arrive.
     */
    private transient InternalTimerService<Integer> timers;
    private transient OnnxScorer scorer;
    private transient FeatureEncoder encoder;
    private transient FeatureBatch batch;
    private transient float[][] results;
    private transient ScoredEvent[] rows;
    private transient Watermark heldWatermark;
    /** Identifies the batch a deadline was set for, so that a stale deadline does nothing. */
    private transient long batchNumber;
    private transient Counter scored;
    private transient Counter late;
    private transient Counter duplicates;
    private transient Counter lateDeadLetters;
    private transient Histogram callMicros;
    private transient Histogram eventMicros;
    private transient Histogram batchSize;
    private transient Histogram eventTimeLagMs;
    private transient Histogram windowLength;
    private transient ListState<long[]> liveUsersState;
    private transient LiveUsers liveUsers;
    private transient Explainer explainer;
    private transient int[] explainRows;
    private transient String[] explainTypes;
    private transient Counter explained;
    private transient Histogram explainMicros;

    /**
     * @param maxEvents window length N; at most the model's N (shorter windows are padded)
     * @param horizonMs window horizon H
     * @param stateTtl  processing-time TTL backstop on the window; zero disables it
     * @param maxBatch  rows per ONNX Runtime call at most; 1 scores every event on its own
     * @param maxDelay  how long a ready event may wait for its batch to fill, in processing time
     */
    public BatchScoringOperator(ModelBundle bundle, int maxEvents, long horizonMs, Duration stateTtl,
            int intraOpThreads, int maxBatch, Duration maxDelay) {
        this(bundle, maxEvents, horizonMs, stateTtl, intraOpThreads, maxBatch, maxDelay, null, 0);
    }

    /**
     * @param explainAt per model output, the score from which an event gets reasons (the alert thresholds); null
     *                  for no reasons
     * @param reasonTop reasons per output at most
     */
    public BatchScoringOperator(ModelBundle bundle, int maxEvents, long horizonMs, Duration stateTtl,
            int intraOpThreads, int maxBatch, Duration maxDelay, double[] explainAt, int reasonTop) {
        if (maxEvents < 1 || maxEvents > bundle.spec().maxEvents()) {
            throw new IllegalArgumentException("window length " + maxEvents + " must be between 1 and the model's "
                    + bundle.spec().maxEvents());
        }
        if (horizonMs <= 0) {
            throw new IllegalArgumentException("window horizon must be positive, got " + horizonMs + " ms");
        }
        if (maxBatch < 1) {
            throw new IllegalArgumentException("batch size must be positive, got " + maxBatch);
        }
        this.bundle = bundle;
        this.maxEvents = maxEvents;
        this.horizonMs = horizonMs;
        this.stateTtl = stateTtl;
        this.intraOpThreads = intraOpThreads;
        this.maxBatch = maxBatch;
        this.maxDelayMs = maxDelay.toMillis();
        if (explainAt != null) {
            if (explainAt.length != bundle.spec().outputs().size()) {
                throw new IllegalArgumentException(explainAt.length + " explain thresholds for "
                        + bundle.spec().outputs().size() + " model outputs");
            }
            if (reasonTop < 1) {
                throw new IllegalArgumentException("reasons per output must be positive, got " + reasonTop);
            }
            // Fail on the client, not in every task: the spec must define the groups.
            new Explainer(bundle.spec(), reasonTop, 1);
        }
        this.explainAt = explainAt == null ? null : explainAt.clone();
        this.reasonTop = reasonTop;
    }

    @Override
    public void open() throws Exception {
        super.open();
        ValueStateDescriptor<byte[]> windowDesc =
                new ValueStateDescriptor<>(WINDOW_STATE, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
        if (!stateTtl.isZero()) {
            // Only the window: events waiting for the watermark must never expire unscored.
            windowDesc.enableTimeToLive(StateTtlConfig.newBuilder(stateTtl)
                    .setUpdateType(StateTtlConfig.UpdateType.OnCreateAndWrite)
                    .setStateVisibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                    .build());
        }
        window = windowState(windowDesc);
        pending = getPartitionedState(new MapStateDescriptor<>(
                "pending", Types.LONG, Types.LIST(TypeInformation.of(InputRecord.class))));
        timers = getInternalTimerService("sequence-timers", IntSerializer.INSTANCE, this);

        // ONNX Runtime and Avro from the job jar would otherwise keep this job's class loader alive after cancel.
        getRuntimeContext().registerUserCodeClassLoaderReleaseHookIfAbsent(
                ClassLoaderRelease.HOOK_NAME, ClassLoaderRelease::release);
        scorer = new OnnxScorer(bundle, intraOpThreads);
        encoder = new FeatureEncoder(bundle.spec());
        batch = encoder.newBatch(maxBatch);
        packed = PackedWindow.forSpec(bundle.spec(), maxEvents, horizonMs);
        outRecord = new StreamRecord<>(null);
        results = new float[bundle.spec().outputs().size()][maxBatch];
        rows = new ScoredEvent[maxBatch];
        if (explainAt != null) {
            // Alerting rows are a small share of a batch; more than this many take more than one call.
            explainer = new Explainer(bundle.spec(), reasonTop, Math.min(maxBatch, 16));
            explainRows = new int[maxBatch];
            explainTypes = new String[maxBatch];
        }
        MetricGroup metrics = getMetricGroup();
        scored = metrics.counter(JobMetrics.EVENTS_SCORED);
        late = metrics.counter(JobMetrics.LATE_EVENTS);
        duplicates = metrics.counter(JobMetrics.DUPLICATE_EVENTS);
        lateDeadLetters = JobMetrics.deadLetters(metrics, DeadLetterReason.LATE_EVENT.name());
        callMicros = JobMetrics.histogram(metrics, JobMetrics.INFERENCE_CALL_MICROS);
        eventMicros = JobMetrics.histogram(metrics, JobMetrics.INFERENCE_EVENT_MICROS);
        batchSize = JobMetrics.histogram(metrics, JobMetrics.BATCH_SIZE);
        eventTimeLagMs = JobMetrics.histogram(metrics, JobMetrics.EVENT_TIME_LAG_MS);
        windowLength = JobMetrics.histogram(metrics, JobMetrics.WINDOW_LENGTH);
        metrics.addGroup(JobMetrics.MODEL_VERSION, bundle.spec().modelVersion()).gauge(JobMetrics.MODEL_INFO, () -> 1);
        metrics.gauge(JobMetrics.USERS_WITH_STATE, liveUsers);
        explained = metrics.counter(JobMetrics.EVENTS_EXPLAINED);
        explainMicros = JobMetrics.histogram(metrics, JobMetrics.EXPLAIN_CALL_MICROS);
    }

    /**
     * Registers the window state; a checkpoint or savepoint with the window layout before {@link PackedWindow} (a
     * list of events under the same name) fails here, with the way out in the message rather than Flink's own.
     */
    private ValueState<byte[]> windowState(ValueStateDescriptor<byte[]> desc) throws Exception {
        try {
            return getPartitionedState(desc);
        } catch (Exception e) {
            if (String.valueOf(e.getMessage()).contains("LIST")) {
                throw new IllegalStateException("cannot restore state '" + WINDOW_STATE + "' of operator "
                        + "score-sequences: it was written by a SeqScore version that kept windows as a list of "
                        + "events, which this version stores packed (docs/design.md, \"Upgrading from list "
                        + "windows\"). Start this version without that savepoint (flink run without -s; the Kafka "
                        + "source resumes from the group's committed offsets), or finish with the old version. "
                        + "Flink said: " + e.getMessage(), e);
            }
            throw e;
        }
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        // Union state: on restore every subtask sees every entry and picks its own (or a share, after rescaling).
        liveUsersState = context.getOperatorStateStore().getUnionListState(
                new ListStateDescriptor<>("live-users", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
        liveUsers = LiveUsers.restore(liveUsersState.get(),
                getRuntimeContext().getTaskInfo().getIndexOfThisSubtask(),
                getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks());
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        liveUsersState.update(List.of(liveUsers.snapshot(
                getRuntimeContext().getTaskInfo().getIndexOfThisSubtask(),
                getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks())));
    }

    @Override
    public void processElement(StreamRecord<InputRecord> element) throws Exception {
        InputRecord r = element.getValue();
        long t = r.eventTime;
        long watermark = timers.currentWatermark();
        if (t <= watermark) {
            late.inc();
            lateDeadLetters.inc();
            output.collect(LATE, new StreamRecord<>(DeadLetters.of(DeadLetterReason.LATE_EVENT,
                    "event_time " + t + " is not after the watermark " + watermark + ": events of user " + r.userId
                            + " up to there are already scored",
                    r, getProcessingTimeService().getCurrentProcessingTime())));
            return;
        }
        // Valid records no longer need their bytes; state stays small.
        r.raw = null;
        List<InputRecord> atT = pending.get(t);
        if (atT == null) {
            atT = new ArrayList<>(1);
        }
        atT.add(r);
        pending.put(t, atT);
        timers.registerEventTimeTimer(READY, t);
    }

    @Override
    public void onEventTime(InternalTimer<String, Integer> timer) throws Exception {
        long timestamp = timer.getTimestamp();
        if (CLEANUP.equals(timer.getNamespace())) {
            cleanUp(timestamp);
            return;
        }
        List<InputRecord> ready = pending.get(timestamp);
        if (ready == null) {
            return;
        }
        pending.remove(timestamp);
        packed.wrap(window.value()); // null for a new user
        boolean newWindow = packed.isEmpty();
        long newestBefore = newWindow ? 0 : packed.newestTime();
        boolean changed = false;
        for (InputRecord r : ready) {
            changed |= append(r);
        }
        if (!changed) {
            return;
        }
        // On the heap backend this is the array just read, changed in place (the backend copies an entry a running
        // snapshot still holds before handing it out); on RocksDB, one put.
        window.update(packed.bytes());
        if (newWindow) {
            liveUsers.windowCreated();
        } else if (newestBefore != timestamp) {
            // One cleanup timer per window: a timer per event would read the window again when each one fires.
            timers.deleteEventTimeTimer(CLEANUP, newestBefore + horizonMs);
        }
        timers.registerEventTimeTimer(CLEANUP, timestamp + horizonMs);
    }

    /** Clears the window once the watermark passes its newest event + H: no future event can see any of it. */
    private void cleanUp(long timestamp) throws Exception {
        packed.wrap(window.value());
        // A window the TTL backstop expired and a new event refilled may still have its old timer: keep it then.
        if (!packed.isEmpty() && packed.newestTime() + horizonMs <= timestamp) {
            window.clear();
            liveUsers.windowCleared();
        }
    }

    /** Appends a ready event to the wrapped window and encodes the window into the batch; false for a duplicate. */
    private boolean append(InputRecord r) {
        if (!packed.append(Fnv1a64.hash(r.itemId), Fnv1a64.hash(r.categoryId == null ? "" : r.categoryId),
                bundle.spec().typeId(r.eventType), r.eventTime)) {
            duplicates.inc();
            return false;
        }
        int row = encoder.add(packed, batch);
        ScoredEvent s = new ScoredEvent();
        s.userId = r.userId;
        s.eventType = r.eventType;
        s.itemId = r.itemId;
        s.eventTime = r.eventTime;
        s.windowLength = packed.size();
        s.sourceTopic = r.sourceTopic;
        s.sourcePartition = r.sourcePartition;
        s.sourceOffset = r.sourceOffset;
        rows[row] = s;
        if (row == 0 && maxBatch > 1) {
            long batchOf = batchNumber;
            getProcessingTimeService().registerTimer(
                    getProcessingTimeService().getCurrentProcessingTime() + maxDelayMs,
                    now -> {
                        if (batchNumber == batchOf) {
                            flush();
                        }
                    });
        }
        if (batch.isFull()) {
            flush();
        }
        return true;
    }

    @Override
    public void onProcessingTime(InternalTimer<String, Integer> timer) {
        // The operator registers no keyed processing-time timers.
    }

    /** Fires the timers the watermark passes (filling the batch), and forwards it once the rows before it are out. */
    @Override
    public void processWatermark(Watermark mark) throws Exception {
        if (timeServiceManager != null) {
            timeServiceManager.advanceWatermark(mark);
        }
        if (batch.isEmpty()) {
            output.emitWatermark(mark);
        } else {
            heldWatermark = mark;
        }
    }

    /** Scores the buffered rows, emits them in the order they became ready, then any watermark held behind them. */
    private void flush() {
        int n = batch.size;
        if (n > 0) {
            long started = System.nanoTime();
            scorer.score(batch, results);
            long micros = (System.nanoTime() - started) / 1_000;
            callMicros.update(micros);
            eventMicros.update(micros / n);
            batchSize.update(n);
            if (explainer != null) {
                explain(n);
            }
            long now = System.currentTimeMillis();
            for (int row = 0; row < n; row++) {
                ScoredEvent s = rows[row];
                rows[row] = null;
                s.scores = new float[results.length];
                for (int o = 0; o < results.length; o++) {
                    s.scores[o] = results[o][row];
                }
                eventTimeLagMs.update(now - s.eventTime);
                windowLength.update(s.windowLength);
                // Reused, as Flink's own collectors do: chained and network outputs copy or serialize at once.
                output.collect(outRecord.replace(s, s.eventTime));
            }
            scored.inc(n);
            batch.clear();
            batchNumber++;
        }
        if (heldWatermark != null) {
            Watermark w = heldWatermark;
            heldWatermark = null;
            output.emitWatermark(w);
        }
    }

    /** Gives reasons to the rows whose score reached an explain threshold for any output, in one model call. */
    private void explain(int n) {
        int count = 0;
        for (int row = 0; row < n; row++) {
            for (int o = 0; o < explainAt.length; o++) {
                if (results[o][row] >= explainAt[o]) {
                    explainRows[count] = row;
                    explainTypes[count++] = rows[row].eventType;
                    break;
                }
            }
        }
        if (count == 0) {
            return;
        }
        long started = System.nanoTime();
        Reason[][] reasons = explainer.explain(batch, explainRows, count, results, explainTypes, scorer);
        explainMicros.update((System.nanoTime() - started) / 1_000);
        explained.inc(count);
        for (int i = 0; i < count; i++) {
            rows[explainRows[i]].reasons = reasons[i];
        }
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        // Nothing buffered may cross a barrier: after a restore it would be neither in state nor emitted.
        flush();
        super.prepareSnapshotPreBarrier(checkpointId);
    }

    @Override
    public void finish() throws Exception {
        flush();
        super.finish();
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
