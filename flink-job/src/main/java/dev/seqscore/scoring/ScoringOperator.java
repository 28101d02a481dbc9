package dev.seqscore.scoring;

import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.alerts.AlertRecords;
import dev.seqscore.avro.Alert;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.ErasureAudit;
import dev.seqscore.events.DeadLetterReason;
import dev.seqscore.events.DeadLetters;
import dev.seqscore.events.InputRecord;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.metrics.JobMetrics;
import dev.seqscore.metrics.LiveUsers;
import dev.seqscore.model.unload.JobUnload;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.reasons.Explainer;
import dev.seqscore.reasons.Reason;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.util.OutputTag;

/**
 * Scores every event of every user in event-time order, with either of the bundle's models, and decides its alerts
 * in the same pass. Events wait for the watermark in operator memory; the ones it passes are scored in batches across
 * users (one ONNX Runtime call per batch), at most one row per user per batch, since the streaming model's step for a
 * user's next event needs the state its current one returns.
 *
 * <p>Per user, one {@link UserState} value holds the window, the lifetime record, the recurrent model state and the
 * last alert per alert type: an event costs one state read (when it joins a batch) and one write (when its batch has
 * been scored), and no timer. One event-time timer per user, moved lazily, clears the window once its horizon has
 * passed and the rest once the user has been inactive for the model-state TTL (and no cooldown runs). Watermarks are
 * held back until the rows before them are out, so downstream never sees an output behind its watermark; batches are
 * scored when full, after {@code maxDelay}, before every checkpoint barrier and at the end of input. Events waiting
 * for the watermark are written to keyed state only at checkpoints.
 *
 * <p>Outputs: the {@link ScoredEvent}s; alerts on {@link #ALERTS}; late events on {@link #LATE}; the answer to
 * every erasure request (an input record with {@code erasure} set) on {@link #ERASURES}.
 */
public final class ScoringOperator extends AbstractStreamOperator<ScoredEvent>
        implements OneInputStreamOperator<InputRecord, ScoredEvent>, Triggerable<String, VoidNamespace> {
    private static final long serialVersionUID = 1L;

    /** The per-user {@link UserState}. */
    public static final String USER_STATE = "user";
    /** Events waiting for the watermark, per user, as of the last checkpoint. */
    public static final String PENDING_STATE = "pending";
    /** The name the State Processor API's keyed bootstrap functions write timers under, so bootstraps can too. */
    public static final String TIMERS = "user-timers";

    public static final OutputTag<DeadLetter> LATE =
            new OutputTag<>("late-events", TypeInformation.of(DeadLetter.class));
    public static final OutputTag<Alert> ALERTS = new OutputTag<>("alerts", TypeInformation.of(Alert.class));
    /** The answer to every erasure request: with the raw user id, to be pseudonymised downstream if need be. */
    public static final OutputTag<ErasureAudit> ERASURES =
            new OutputTag<>("erasures", TypeInformation.of(ErasureAudit.class));

    private final ScoringSettings settings;

    private transient ModelSpec spec;
    private transient ModelSpec.Served served;
    private transient AlertPolicy policy;
    private transient double[] explainAt;

    private transient ValueState<byte[]> user;
    private transient ListState<InputRecord> pendingState;
    private transient InternalTimerService<VoidNamespace> timers;
    private transient PendingEvents pending;
    /** Users whose waiting events the last checkpoint wrote to {@link #pendingState}. */
    private transient Set<String> persistedPending;
    private transient Watermark heldWatermark;
    private transient long inputWatermark;

    private transient UserStep step;
    private transient OnnxScorer scorer;
    private transient FeatureBatch batch;
    private transient float[][] results;
    private transient Row[] rows;
    private transient Set<String> inBatch;
    /** Identifies the batch a deadline was set for, so that a stale deadline does nothing. */
    private transient long batchNumber;
    private transient StreamRecord<ScoredEvent> outRecord;

    private transient Explainer explainer;
    private transient int[] explainRows;
    private transient String[] explainTypes;

    private transient ListState<long[]> liveUsersState;
    private transient LiveUsers liveUsers;
    private transient Counter scored;
    private transient Counter late;
    private transient Counter duplicates;
    private transient Counter lateDeadLetters;
    private transient Counter stateRestarts;
    private transient Counter erasures;
    private transient Counter[] alertsByRule;
    private transient Histogram callMicros;
    private transient Histogram eventMicros;
    private transient Histogram batchSize;
    private transient Histogram eventTimeLagMs;
    private transient Histogram windowLength;
    private transient Counter explained;
    private transient Histogram explainMicros;

    /** One batch row: whose, the output it becomes, and the user's state as it will be stored. */
    private static final class Row {
        String user;
        ScoredEvent event;
        byte[] state;
        boolean created;
    }

    public ScoringOperator(ScoringSettings settings) {
        this.settings = settings;
    }

    /**
     * The descriptor of the per-user {@link UserState} value, with the processing-time TTL backstop ({@code ttl},
     * {@link ScoringSettings#effectiveStateTtl()}; zero: none). The one definition the job and the offline state
     * bootstrap and inspection share: TTL changes how the value is serialized, so a savepoint written with another
     * descriptor would not restore.
     */
    public static ValueStateDescriptor<byte[]> userStateDescriptor(Duration ttl) {
        ValueStateDescriptor<byte[]> desc =
                new ValueStateDescriptor<>(USER_STATE, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
        if (!ttl.isZero()) {
            desc.enableTimeToLive(StateTtlConfig.newBuilder(ttl)
                    .setUpdateType(StateTtlConfig.UpdateType.OnCreateAndWrite)
                    .setStateVisibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                    .build());
        }
        return desc;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        // Union state: on restore every subtask sees every entry and picks its own (or a share, after rescaling).
        liveUsersState = context.getOperatorStateStore().getUnionListState(
                new ListStateDescriptor<>("live-users", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
        List<long[]> liveEntries = new ArrayList<>();
        liveUsersState.get().forEach(liveEntries::add);
        liveUsers = LiveUsers.restore(liveEntries,
                getRuntimeContext().getTaskInfo().getIndexOfThisSubtask(),
                getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks());
        user = getPartitionedState(userStateDescriptor(settings.effectiveStateTtl()));
        if (context.isRestored() && liveEntries.isEmpty()) {
            // A savepoint with keyed state but without the gauge's union state: the offline bootstrap writes only the
            // users' values. Counted once, here; from then on the gauge counts as usual.
            try (Stream<Object> keys = getKeyedStateBackend().getKeys(USER_STATE, VoidNamespace.INSTANCE)) {
                liveUsers = new LiveUsers(keys.count());
            }
        }
        pending = new PendingEvents();
        persistedPending = new HashSet<>();
        pendingState = restorable(new ListStateDescriptor<>(PENDING_STATE, TypeInformation.of(InputRecord.class)));
        if (context.isRestored()) {
            // Collected first: a RocksDB key iterator must not see the writes of the loop below.
            List<String> keys;
            try (var stream = getKeyedStateBackend().<VoidNamespace>getKeys(PENDING_STATE, VoidNamespace.INSTANCE)) {
                keys = stream.map(k -> (String) k).toList();
            }
            for (String key : keys) {
                setCurrentKey(key);
                for (InputRecord r : pendingState.get()) {
                    pending.add(r);
                }
                persistedPending.add(key);
            }
        }
    }

    /**
     * Registers the waiting events' state; a checkpoint or savepoint of a version before this scorer (which kept them
     * as a map under the same name, beside a separate window and an alert operator) fails here, with the way out in
     * the message rather than Flink's own.
     */
    private ListState<InputRecord> restorable(ListStateDescriptor<InputRecord> desc) throws Exception {
        try {
            return getPartitionedState(desc);
        } catch (Exception e) {
            if (String.valueOf(e.getMessage()).contains("MAP")) {
                throw new IllegalStateException("cannot restore operator score-sequences: the checkpoint or savepoint "
                        + "was written by a SeqScore version before the one-value user state (docs/design.md, "
                        + "\"Upgrading to the one-value user state\"). Start this version without it (flink run "
                        + "without -s: the Kafka source resumes from the group's committed offsets), or write a "
                        + "savepoint from your click history with bin/seqscore bootstrap. Flink said: "
                        + e.getMessage(), e);
            }
            throw e;
        }
    }

    @Override
    public void open() throws Exception {
        super.open();
        spec = settings.bundle().spec();
        served = settings.served();
        policy = settings.alerts();
        explainAt = settings.explainAt();

        timers = getInternalTimerService(TIMERS, VoidNamespaceSerializer.INSTANCE, this);

        step = new UserStep(settings);

        // ONNX Runtime and Avro from the job jar would otherwise keep this job's class loader alive after cancel.
        JobUnload.releaseWhenJobEnds(getRuntimeContext());
        int maxBatch = settings.maxBatch();
        scorer = new OnnxScorer(settings.bundle(), settings.scoring(), settings.ortThreads());
        batch = FeatureBatch.forServed(spec, served, maxBatch);
        results = new float[served.outputs().size()][maxBatch];
        rows = new Row[maxBatch];
        for (int i = 0; i < maxBatch; i++) {
            rows[i] = new Row();
        }
        inBatch = new HashSet<>();
        outRecord = new StreamRecord<>(null);
        inputWatermark = Long.MIN_VALUE;
        if (explainAt != null) {
            // Alerting rows are a small share of a batch; more than this many take more than one call.
            explainer = new Explainer(spec, served, settings.reasonTop(), Math.min(maxBatch, 16));
            explainRows = new int[maxBatch];
            explainTypes = new String[maxBatch];
        }

        MetricGroup metrics = getMetricGroup();
        scored = metrics.counter(JobMetrics.EVENTS_SCORED);
        late = metrics.counter(JobMetrics.LATE_EVENTS);
        duplicates = metrics.counter(JobMetrics.DUPLICATE_EVENTS);
        lateDeadLetters = JobMetrics.deadLetters(metrics, DeadLetterReason.LATE_EVENT.name());
        stateRestarts = metrics.counter(JobMetrics.MODEL_STATE_RESTARTS);
        erasures = metrics.counter(JobMetrics.USER_ERASURES);
        callMicros = JobMetrics.histogram(metrics, JobMetrics.INFERENCE_CALL_MICROS);
        eventMicros = JobMetrics.histogram(metrics, JobMetrics.INFERENCE_EVENT_MICROS);
        batchSize = JobMetrics.histogram(metrics, JobMetrics.BATCH_SIZE);
        eventTimeLagMs = JobMetrics.histogram(metrics, JobMetrics.EVENT_TIME_LAG_MS);
        windowLength = JobMetrics.histogram(metrics, JobMetrics.WINDOW_LENGTH);
        metrics.addGroup(JobMetrics.MODEL_VERSION, served.modelVersion()).gauge(JobMetrics.MODEL_INFO, () -> 1);
        metrics.gauge(JobMetrics.USERS_WITH_STATE, liveUsers);
        explained = metrics.counter(JobMetrics.EVENTS_EXPLAINED);
        explainMicros = JobMetrics.histogram(metrics, JobMetrics.EXPLAIN_CALL_MICROS);
        alertsByRule = new Counter[policy.rules.size()];
        Map<String, Counter> byType = new HashMap<>();
        for (int o = 0; o < alertsByRule.length; o++) {
            alertsByRule[o] = byType.computeIfAbsent(policy.rules.get(o).alertType,
                    type -> metrics.addGroup(JobMetrics.ALERT_TYPE, type).counter(JobMetrics.ALERTS_EMITTED));
        }
    }

    @Override
    public void processElement(StreamRecord<InputRecord> element) throws Exception {
        InputRecord r = element.getValue();
        if (r.erasure) {
            erase(r);
            return;
        }
        long t = r.eventTime;
        if (t <= inputWatermark) {
            late(r, "event_time " + t + " is not after the watermark " + inputWatermark + ": events of user "
                    + r.userId + " up to there are already scored");
            return;
        }
        // Valid records no longer need their bytes; memory and checkpoints stay small.
        r.raw = null;
        pending.add(r);
    }

    private void late(InputRecord r, String detail) {
        late.inc();
        lateDeadLetters.inc();
        output.collect(LATE, new StreamRecord<>(DeadLetters.of(DeadLetterReason.LATE_EVENT, detail, r,
                getProcessingTimeService().getCurrentProcessingTime())));
    }

    /**
     * Clears everything the operator keeps for the request's user, at once (in the order requests and clicks reach
     * the scorer, not in event time): its events still waiting for the watermark, its value (window, lifetime record,
     * model state, cooldowns), its cleanup timer and its waiting events in the last checkpoint's state; a row it has
     * in the open batch is scored first, since that click came before the request. Answers every request, also for
     * a user the operator never saw.
     */
    private void erase(InputRecord r) throws Exception {
        String key = r.userId;
        if (inBatch.contains(key)) {
            flush();
        }
        int dropped = pending.removeUser(key);
        setCurrentKey(key);
        byte[] stored = user.value();
        boolean persisted = persistedPending.remove(key);
        if (persisted) {
            pendingState.clear();
        }
        if (stored != null) {
            long timer = step.timerOf(stored);
            if (timer != UserStep.NONE) {
                timers.deleteEventTimeTimer(VoidNamespace.INSTANCE, timer);
            }
            user.clear();
            liveUsers.windowCleared();
        }
        boolean found = stored != null || dropped > 0 || persisted;
        erasures.inc();
        output.collect(ERASURES, new StreamRecord<>(ErasureAudit.newBuilder()
                .setUserId(key)
                .setRequestedAt(java.time.Instant.ofEpochMilli(r.eventTime))
                .setErasedAt(java.time.Instant.ofEpochMilli(getProcessingTimeService().getCurrentProcessingTime()))
                .setStateFound(found)
                .setEventsDropped(dropped)
                .setSourceTopic(r.sourceTopic)
                .setSourcePartition(r.sourcePartition)
                .setSourceOffset(r.sourceOffset)
                .build()));
    }

    /** Makes the events the watermark passes ready, scores what fills batches, and holds it until they are out. */
    @Override
    public void processWatermark(Watermark mark) throws Exception {
        inputWatermark = mark.getTimestamp();
        pending.release(inputWatermark);
        heldWatermark = mark;
        fill(false);
        releaseWatermark();
    }

    /**
     * Moves ready events into batch rows, each user's in order and at most one per batch, scoring every batch that
     * fills. With {@code force}, also scores a partly filled batch when only users already in it have ready events,
     * until none is left.
     */
    private void fill(boolean force) throws Exception {
        while (pending.hasReady()) {
            boolean progress = false;
            for (int i = pending.readyUsers(); i > 0 && pending.hasReady(); i--) {
                String u = pending.nextReadyUser();
                if (inBatch.contains(u)) {
                    continue;
                }
                enqueue(u, pending.takeReady(u));
                progress = true;
            }
            if (!progress) {
                if (!force || batch.isEmpty()) {
                    return;
                }
                flush();
            }
        }
    }

    /** Emits the held watermark once nothing before it is left, after the user timers it passes have fired. */
    private void releaseWatermark() throws Exception {
        if (heldWatermark == null || !batch.isEmpty() || pending.hasReady()) {
            return;
        }
        Watermark w = heldWatermark;
        heldWatermark = null;
        if (timeServiceManager != null) {
            timeServiceManager.advanceWatermark(w);
        }
        output.emitWatermark(w);
    }

    /** Reads the user's state, appends the event and encodes its row; a duplicate changes nothing. */
    private void enqueue(String key, InputRecord r) throws Exception {
        setCurrentKey(key);
        int row = step.add(user.value(), r, batch);
        if (row == UserStep.DUPLICATE) {
            duplicates.inc();
            return;
        }
        if (row == UserStep.BEHIND) {
            late(r, "event_time " + r.eventTime + " is before " + step.applied() + ", the last applied event of user "
                    + r.userId + ": events of the user up to there are already scored");
            return;
        }
        if (step.restarted()) {
            stateRestarts.inc();
        }
        Row x = rows[row];
        x.user = key;
        x.state = step.state();
        x.created = step.created();
        ScoredEvent s = new ScoredEvent();
        s.userId = r.userId;
        s.eventType = r.eventType;
        s.itemId = r.itemId;
        s.eventTime = r.eventTime;
        s.windowLength = step.windowLength();
        s.sourceTopic = r.sourceTopic;
        s.sourcePartition = r.sourcePartition;
        s.sourceOffset = r.sourceOffset;
        x.event = s;
        inBatch.add(key);
        if (row == 0 && settings.maxBatch() > 1) {
            long batchOf = batchNumber;
            getProcessingTimeService().registerTimer(
                    getProcessingTimeService().getCurrentProcessingTime() + settings.maxDelayMs(),
                    now -> {
                        if (batchNumber == batchOf) {
                            flush();
                            fill(false);
                            releaseWatermark();
                        }
                    });
        }
        if (batch.isFull()) {
            flush();
        }
    }

    /** Scores the batch; per row stores the user's new state, decides alerts and emits the score. */
    private void flush() throws Exception {
        int n = batch.size;
        if (n == 0) {
            return;
        }
        long started = System.nanoTime();
        scorer.score(batch, results);
        long micros = (System.nanoTime() - started) / 1_000;
        callMicros.update(micros);
        eventMicros.update(micros / n);
        batchSize.update(n);
        if (explainer != null) {
            explain(n);
        }
        long now = getProcessingTimeService().getCurrentProcessingTime();
        for (int row = 0; row < n; row++) {
            Row x = rows[row];
            ScoredEvent s = x.event;
            setCurrentKey(x.user);
            s.scores = new float[results.length];
            for (int o = 0; o < results.length; o++) {
                s.scores[o] = results[o][row];
            }
            long timer = step.complete(x.state, batch, row, s.scores, s.eventTime, o -> {
                alertsByRule[o].inc();
                output.collect(ALERTS, new StreamRecord<>(AlertRecords.of(policy, o, s.userId, s.eventTime,
                        s.eventType, s.itemId, s.windowLength, s.scores, s.reasons, now), s.eventTime));
            });
            if (timer != UserStep.NONE) {
                if (step.replacedTimer() != UserStep.NONE) {
                    timers.deleteEventTimeTimer(VoidNamespace.INSTANCE, step.replacedTimer());
                }
                timers.registerEventTimeTimer(VoidNamespace.INSTANCE, timer);
            }
            user.update(step.completed());
            if (x.created) {
                liveUsers.windowCreated();
            }
            eventTimeLagMs.update(now - s.eventTime);
            windowLength.update(s.windowLength);
            // Reused, as Flink's own collectors do: chained and network outputs copy or serialize at once.
            output.collect(outRecord.replace(s, s.eventTime));
            x.event = null;
            x.state = null;
            x.user = null;
        }
        scored.inc(n);
        batch.clear();
        inBatch.clear();
        batchNumber++;
    }

    /** Gives reasons to the rows whose score reached an explain threshold for any output, in one model call. */
    private void explain(int n) {
        int count = 0;
        for (int row = 0; row < n; row++) {
            for (int o = 0; o < explainAt.length; o++) {
                if (results[o][row] >= explainAt[o]) {
                    explainRows[count] = row;
                    explainTypes[count++] = rows[row].event.eventType;
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
            rows[explainRows[i]].event.reasons = reasons[i];
        }
    }

    /**
     * The user's timer: clears the window once its horizon has passed, and the whole state once the user has been
     * inactive for the model-state TTL and no cooldown runs; otherwise moves itself to the next of those times.
     */
    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        UserStep.Cleanup c = step.cleanup(user.value(), timer.getTimestamp());
        if (c == null) {
            return;
        }
        if (c.value() == null) {
            user.clear();
            liveUsers.windowCleared();
            return;
        }
        timers.registerEventTimeTimer(VoidNamespace.INSTANCE, c.nextTimer());
        user.update(c.value());
    }

    @Override
    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) {
        // The operator registers no keyed processing-time timers.
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        // Nothing ready may cross a barrier: after a restore it would be neither in state nor emitted.
        drain();
        super.prepareSnapshotPreBarrier(checkpointId);
    }

    /** Scores every ready event and releases the held watermark. */
    private void drain() throws Exception {
        fill(true);
        flush();
        releaseWatermark();
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        liveUsersState.update(List.of(liveUsers.snapshot(
                getRuntimeContext().getTaskInfo().getIndexOfThisSubtask(),
                getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks())));
        // Keyed state is snapshotted after this method: the waiting events go into it here, and only here.
        Map<String, List<InputRecord>> now = pending.waitingByUser();
        for (String key : persistedPending) {
            if (!now.containsKey(key)) {
                setCurrentKey(key);
                pendingState.clear();
            }
        }
        for (Map.Entry<String, List<InputRecord>> e : now.entrySet()) {
            setCurrentKey(e.getKey());
            pendingState.update(e.getValue());
        }
        persistedPending = new HashSet<>(now.keySet());
    }

    @Override
    public void finish() throws Exception {
        drain();
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
