package dev.seqscore.scoring;

import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.alerts.AlertRecords;
import dev.seqscore.avro.Alert;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.avro.ErasureAudit;
import dev.seqscore.avro.ModelEvent;
import dev.seqscore.events.DeadLetterReason;
import dev.seqscore.events.DeadLetters;
import dev.seqscore.events.InputRecord;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.lifecycle.GoldenCheck;
import dev.seqscore.lifecycle.ModelControl;
import dev.seqscore.lifecycle.ModelSchedule;
import dev.seqscore.lifecycle.StateCompatibility;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.metrics.JobMetrics;
import dev.seqscore.metrics.LiveUsers;
import dev.seqscore.model.unload.JobUnload;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.reasons.Reason;
import java.time.Duration;
import java.time.Instant;
import java.util.Iterator;
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
import org.apache.flink.streaming.api.operators.TwoInputStreamOperator;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
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
        implements OneInputStreamOperator<InputRecord, ScoredEvent>,
        TwoInputStreamOperator<InputRecord, String, ScoredEvent>, Triggerable<String, VoidNamespace> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(ScoringOperator.class);

    /** The per-user {@link UserState}. */
    public static final String USER_STATE = "user";
    /** Events waiting for the watermark, per user, as of the last checkpoint. */
    public static final String PENDING_STATE = "pending";
    /** The name the State Processor API's keyed bootstrap functions write timers under, so bootstraps can too. */
    public static final String TIMERS = "user-timers";
    /** Per user, a second model's recurrent state: the shadow candidate's, until it is promoted. */
    public static final String OTHER_MODEL_STATE = "other-model-state";
    /** Operator state: which model serves and which shadows, per event time (union: restored whole everywhere). */
    public static final String MODEL_SCHEDULE = "model-schedule";
    /** The key of the job's own model in the schedule. */
    static final String JOB_MODEL = "job";

    public static final OutputTag<DeadLetter> LATE =
            new OutputTag<>("late-events", TypeInformation.of(DeadLetter.class));
    public static final OutputTag<Alert> ALERTS = new OutputTag<>("alerts", TypeInformation.of(Alert.class));
    /** The answer to every erasure request: with the raw user id, to be pseudonymised downstream if need be. */
    public static final OutputTag<ErasureAudit> ERASURES =
            new OutputTag<>("erasures", TypeInformation.of(ErasureAudit.class));
    /** The answer to every model control record, and the moment each scheduled change takes effect. */
    public static final OutputTag<ModelEvent> MODEL_EVENTS =
            new OutputTag<>("model-events", TypeInformation.of(ModelEvent.class));
    /** The shadow candidate's score of every event it shadowed, stamped with its model version. */
    public static final OutputTag<ScoredEvent> SHADOW_SCORES =
            new OutputTag<>("shadow-scores", TypeInformation.of(ScoredEvent.class));

    private final ScoringSettings settings;

    private transient ValueState<byte[]> user;
    private transient ValueState<byte[]> otherModelState;
    private transient ListState<String> scheduleState;
    /** The schedule the checkpoint held for this subtask, until open() loads its models. */
    private transient String restoredSchedule;
    private transient ModelSchedule schedule;
    /** The loaded models, by schedule key. */
    private transient Map<String, Generation> generations;
    /** The models of the open batch: serving and shadow (null for none). */
    private transient Generation batchGen;
    private transient Generation batchShadow;
    private transient String servingVersion;
    private transient String shadowVersion;
    private transient ListState<InputRecord> pendingState;
    private transient InternalTimerService<VoidNamespace> timers;
    private transient PendingEvents pending;
    /** Users whose waiting events the last checkpoint wrote to {@link #pendingState}. */
    private transient Set<String> persistedPending;
    private transient Watermark heldWatermark;
    private transient long inputWatermark;

    private transient Row[] rows;
    private transient Set<String> inBatch;
    /** Identifies the batch a deadline was set for, so that a stale deadline does nothing. */
    private transient long batchNumber;
    private transient StreamRecord<ScoredEvent> outRecord;

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
    private transient Map<String, Counter> alertsByType;
    private transient Counter modelSwaps;
    private transient Counter controlAccepted;
    private transient Counter controlRefused;
    private transient Set<String> infoGauges;
    private transient Map<String, ShadowStats> shadowStats;
    private transient Histogram shadowCallMicros;
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
        boolean promoted;
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
        return withTtl(new ValueStateDescriptor<>(USER_STATE, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO),
                ttl);
    }

    private static ValueStateDescriptor<byte[]> withTtl(ValueStateDescriptor<byte[]> desc, Duration ttl) {
        if (!ttl.isZero()) {
            // A backstop only (the event-time timers clear state exactly): on the heap one entry checked per state access
            // instead of Flink's default five, which cost a quarter of the scorer thread's Java time (JFR,
            // docs/benchmarks.md); RocksDB's compaction filter as by default.
            desc.enableTimeToLive(StateTtlConfig.newBuilder(ttl)
                    .setUpdateType(StateTtlConfig.UpdateType.OnCreateAndWrite)
                    .setStateVisibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                    .cleanupIncrementally(1, false)
                    .cleanupInRocksdbCompactFilter(1000)
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
        otherModelState = getPartitionedState(otherModelStateDescriptor(settings.effectiveStateTtl()));
        scheduleState = context.getOperatorStateStore().getUnionListState(
                new ListStateDescriptor<>(MODEL_SCHEDULE, TypeInformation.of(String.class)));
        restoredSchedule = pickSchedule(scheduleState.get());
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

    /** The second model state's descriptor, with the same TTL backstop as the user's value. */
    static ValueStateDescriptor<byte[]> otherModelStateDescriptor(Duration ttl) {
        return withTtl(new ValueStateDescriptor<>(OTHER_MODEL_STATE,
                PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO), ttl);
    }

    /**
     * This subtask's schedule among the restored entries ("subtask index, parallelism, schedule"): its own when the
     * parallelism is the same, else the first subtask's (every subtask answers every control record, so they agree
     * unless one refused a record as late that another accepted, which the status topic shows).
     */
    private String pickSchedule(Iterable<String> entries) {
        int me = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        int parallelism = getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks();
        String first = null;
        int firstIndex = Integer.MAX_VALUE;
        for (String e : entries) {
            String[] parts = e.split("\n", 3);
            int index = Integer.parseInt(parts[0]);
            if (index == me && Integer.parseInt(parts[1]) == parallelism) {
                return parts[2];
            }
            if (index < firstIndex) {
                firstIndex = index;
                first = parts[2];
            }
        }
        return first;
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
        timers = getInternalTimerService(TIMERS, VoidNamespaceSerializer.INSTANCE, this);

        // ONNX Runtime and Avro from the job jar would otherwise keep this job's class loader alive after cancel.
        JobUnload.releaseWhenJobEnds(getRuntimeContext());
        int maxBatch = settings.maxBatch();
        rows = new Row[maxBatch];
        for (int i = 0; i < maxBatch; i++) {
            rows[i] = new Row();
        }
        inBatch = new HashSet<>();
        outRecord = new StreamRecord<>(null);
        inputWatermark = Long.MIN_VALUE;
        explainRows = new int[maxBatch];
        explainTypes = new String[maxBatch];

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
        metrics.gauge(JobMetrics.USERS_WITH_STATE, liveUsers);
        explained = metrics.counter(JobMetrics.EVENTS_EXPLAINED);
        explainMicros = JobMetrics.histogram(metrics, JobMetrics.EXPLAIN_CALL_MICROS);
        alertsByType = new HashMap<>();
        modelSwaps = metrics.counter(JobMetrics.MODEL_SWAPS);
        controlAccepted = metrics.counter(JobMetrics.MODEL_CONTROL_ACCEPTED);
        controlRefused = metrics.counter(JobMetrics.MODEL_CONTROL_REFUSED);
        shadowCallMicros = JobMetrics.histogram(metrics, JobMetrics.SHADOW_CALL_MICROS);
        infoGauges = new HashSet<>();
        shadowStats = new HashMap<>();

        generations = new HashMap<>();
        String jobVersion = settings.served().modelVersion();
        ModelSchedule.Model base = new ModelSchedule.Model(JOB_MODEL, settings.bundleLocation(), jobVersion);
        schedule = restoredSchedule == null ? null : ModelSchedule.fromJson(restoredSchedule);
        if (schedule != null && !jobVersion.equals(schedule.jobVersion())) {
            LOG.info("the job's model {} replaces the model schedule of the restored state, written for a job of "
                    + "model {}", jobVersion, schedule.jobVersion());
            schedule = null;
        }
        if (schedule == null) {
            schedule = new ModelSchedule(base);
        }
        restoredSchedule = null;
        for (String key : schedule.keysInUse()) {
            generations.put(key, key.equals(JOB_MODEL)
                    ? new Generation(base, settings, new OnnxScorer(settings.bundle(), settings.scoring(),
                            settings.ortThreads()))
                    : restore(schedule.model(key)));
            generations.get(key).shadowed = schedule.shadowed(key);
        }
        for (ModelControl c : settings.presetSchedule()) {
            if (!schedule.applied(c.requestId())) {
                preset(c);
            }
        }
        noteServing();
    }

    /**
     * Loads a published model that the restored schedule still needs: a recovery must score replayed events with
     * the models that scored them before, so a bundle that is gone or changed fails the restore, with the way out.
     */
    private Generation restore(ModelSchedule.Model m) {
        try {
            Generation g = load(m.key(), m.uri(), false);
            if (!g.version().equals(m.version())) {
                g.close();
                throw new IllegalArgumentException("it now holds model " + g.version() + ", not " + m.version());
            }
            return g;
        } catch (RuntimeException e) {
            throw new IllegalStateException("cannot restore the model schedule: the published bundle " + m.uri()
                    + " (model " + m.version() + ") that scores events after the checkpoint cannot be loaded: "
                    + e.getMessage() + ". Keep published bundles readable while a job may restore them, or start "
                    + "the job again from the savepoint with --model set to the model you want", e);
        }
    }

    /**
     * Loads and checks a published bundle: the window and state it needs against what the job keeps, its outputs
     * and alert rules, its graphs' inputs and outputs against its spec, and (when {@code golden}) its own golden
     * vectors through the session that will serve it.
     *
     * @throws IllegalArgumentException why the bundle cannot serve here
     */
    private Generation load(String key, String uri, boolean golden) {
        ModelBundle bundle = ModelBundle.locate(uri);
        ModelSpec spec = bundle.spec();
        String refusal = StateCompatibility.refusal(spec, settings.bundle().spec(), settings.scoring(),
                settings.maxEvents(), settings.horizonMs());
        if (refusal == null && !spec.served(settings.scoring()).outputNames().equals(settings.served().outputNames())) {
            refusal = "model " + spec.modelVersion() + " has the outputs "
                    + spec.served(settings.scoring()).outputNames() + ", the job " + settings.served().outputNames()
                    + ": alerts, scores and dashboards are named by them; deploy it as a new job";
        }
        if (refusal != null) {
            throw new IllegalArgumentException(refusal);
        }
        ScoringSettings published = settings.withModel(bundle);
        bundle.validate();
        OnnxScorer scorer = new OnnxScorer(bundle, settings.scoring(), settings.ortThreads());
        try {
            if (golden) {
                GoldenCheck.verify(uri, bundle, settings.scoring(), scorer);
            }
            return new Generation(new ModelSchedule.Model(key, uri, published.served().modelVersion()), published,
                    scorer);
        } catch (RuntimeException e) {
            scorer.close();
            throw e;
        }
    }

    /** A change scheduled from the start: it must be accepted, or the run would not be the one asked for. */
    private void preset(ModelControl c) {
        String refusal = schedule(c, Long.MIN_VALUE);
        if (refusal != null) {
            throw new IllegalArgumentException("scheduled model change " + c.toJson() + " refused: " + refusal);
        }
    }

    /**
     * Schedules {@code c} against the watermark {@code watermark}, loading and checking a published bundle first.
     *
     * @return why it was refused; null when it is scheduled
     */
    private String schedule(ModelControl c, long watermark) {
        String refusal = schedule.refusal(c, watermark);
        Generation loaded = null;
        if (refusal == null && c.action() == ModelControl.Action.PUBLISH) {
            try {
                loaded = load("req:" + c.requestId(), c.uri(), true);
            } catch (RuntimeException e) {
                refusal = "model bundle " + c.uri() + " refused: " + e.getMessage();
            }
        }
        if (refusal != null) {
            return refusal;
        }
        if (loaded != null) {
            generations.put(loaded.model.key(), loaded);
            loaded.shadowed = c.role() == ModelControl.Role.SHADOW;
        }
        schedule.apply(c, loaded == null ? null : loaded.model);
        return null;
    }

    /** Which models serve and shadow at the watermark, for the gauges. */
    private void noteServing() {
        ModelSchedule.Epoch now = schedule.at(inputWatermark == Long.MAX_VALUE ? inputWatermark : inputWatermark + 1);
        servingVersion = now.serve().version();
        shadowVersion = now.shadow() == null ? null : now.shadow().version();
        MetricGroup metrics = getMetricGroup();
        for (Generation g : generations.values()) {
            // Registered before the first alert, so that dashboards show a zero rather than no series.
            g.policy.rules.forEach(r -> alertCounter(r.alertType));
            String v = g.version();
            if (infoGauges.add(v)) {
                metrics.addGroup(JobMetrics.MODEL_VERSION, v).gauge(JobMetrics.MODEL_INFO,
                        () -> v.equals(servingVersion) ? 1 : 0);
                metrics.addGroup(JobMetrics.SHADOW_MODEL_VERSION, v).gauge(JobMetrics.SHADOW_MODEL_INFO,
                        () -> v.equals(shadowVersion) ? 1 : 0);
            }
        }
    }

    @Override
    public void processElement1(StreamRecord<InputRecord> element) throws Exception {
        processElement(element);
    }

    /** A model control record, broadcast to every subtask. */
    @Override
    public void processElement2(StreamRecord<String> element) throws Exception {
        control(element.getValue());
    }

    @Override
    public void processWatermark1(Watermark mark) throws Exception {
        processWatermark(mark);
    }

    /** The control stream has no say in event time: its records take effect at the event time they name. */
    @Override
    public void processWatermark2(Watermark mark) {}

    @Override
    protected void processWatermarkStatus(WatermarkStatus status, int index) throws Exception {
        if (index == 0) {
            output.emitWatermarkStatus(status);
        }
    }

    /**
     * Schedules a control record, or refuses it: a publish loads and checks its bundle here, before it is accepted,
     * so that a bad bundle never serves; the old model keeps serving. Records take effect at their event time,
     * which must be after this subtask's watermark, so no event already scored would have been scored otherwise.
     */
    private void control(String text) {
        ModelControl c;
        try {
            c = ModelControl.parse(text);
        } catch (IllegalArgumentException e) {
            String shown = text == null ? "null" : text.length() > 200 ? text.substring(0, 200) + "..." : text;
            refuse(null, "cannot read the control record " + shown + ": " + e.getMessage());
            return;
        }
        if (schedule.applied(c.requestId())) {
            answer(c, "ACCEPTED", "already scheduled", null);
            return;
        }
        String refusal = schedule(c, inputWatermark);
        if (refusal != null) {
            refuse(c, refusal);
            return;
        }
        controlAccepted.inc();
        noteServing();
        LOG.info("model control {} scheduled: {}", c.toJson(), schedule.last());
        ModelSchedule.Model model = c.action() == ModelControl.Action.PUBLISH ? schedule.last().role(c.role()) : null;
        answer(c, "ACCEPTED", null, model == null ? null : model.version());
    }

    private void refuse(ModelControl c, String reason) {
        controlRefused.inc();
        LOG.warn("model control {} refused; the job keeps its models: {}", c == null ? "record" : c.toJson(), reason);
        answer(c, "REFUSED", reason, null);
    }

    private void answer(ModelControl c, String status, String reason, String version) {
        output.collect(MODEL_EVENTS, new StreamRecord<>(ModelEvent.newBuilder()
                .setRequestId(c == null ? null : c.requestId())
                .setAction(c == null ? null : ModelControl.name(c.action()))
                .setRole(c == null ? null : ModelControl.name(c.role()))
                .setUri(c == null ? null : c.uri())
                .setModelVersion(version)
                .setEffectiveAt(c == null ? null : Instant.ofEpochMilli(c.effectiveAt()))
                .setStatus(status)
                .setReason(reason)
                .setSubtask(getRuntimeContext().getTaskInfo().getIndexOfThisSubtask())
                .setParallelism(getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks())
                .setAnsweredAt(Instant.ofEpochMilli(getProcessingTimeService().getCurrentProcessingTime()))
                .build()));
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
        byte[] other = otherModelState.value();
        if (other != null) {
            otherModelState.clear();
        }
        if (stored != null) {
            long timer = anyStep().timerOf(stored);
            if (timer != UserStep.NONE) {
                timers.deleteEventTimeTimer(VoidNamespace.INSTANCE, timer);
            }
            user.clear();
            liveUsers.windowCleared();
        }
        boolean found = stored != null || other != null || dropped > 0 || persisted;
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
                if (!force || batchEmpty()) {
                    return;
                }
                flush();
            }
        }
    }

    /** Emits the held watermark once nothing before it is left, after the user timers it passes have fired. */
    private void releaseWatermark() throws Exception {
        if (heldWatermark == null || !batchEmpty() || pending.hasReady()) {
            return;
        }
        Watermark w = heldWatermark;
        heldWatermark = null;
        if (timeServiceManager != null) {
            timeServiceManager.advanceWatermark(w);
        }
        advanceSchedule(w.getTimestamp());
        output.emitWatermark(w);
    }

    /**
     * Every event up to {@code watermark} is scored: the changes that began are announced, and the models no later
     * event can meet are closed, releasing their sessions' native memory.
     */
    private void advanceSchedule(long watermark) {
        List<ModelSchedule.Epoch> begun = schedule.advance(watermark);
        if (begun.isEmpty()) {
            return;
        }
        for (ModelSchedule.Epoch e : begun) {
            if (!e.serve().version().equals(servingVersion)) {
                modelSwaps.inc();
            }
            noteServing();
            LOG.info("model schedule: from event time {} model {} serves{}", e.from(), e.serve().version(),
                    e.shadow() == null ? "" : " and " + e.shadow().version() + " shadows");
            output.collect(MODEL_EVENTS, new StreamRecord<>(ModelEvent.newBuilder()
                    .setRequestId(e.requestId())
                    .setModelVersion(e.serve().version())
                    .setShadowModelVersion(e.shadow() == null ? null : e.shadow().version())
                    .setEffectiveAt(Instant.ofEpochMilli(e.from()))
                    .setStatus("ACTIVE")
                    .setSubtask(getRuntimeContext().getTaskInfo().getIndexOfThisSubtask())
                    .setParallelism(getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks())
                    .setAnsweredAt(Instant.ofEpochMilli(getProcessingTimeService().getCurrentProcessingTime()))
                    .build()));
        }
        Set<String> inUse = schedule.keysInUse();
        for (Iterator<Map.Entry<String, Generation>> it = generations.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<String, Generation> g = it.next();
            if (!inUse.contains(g.getKey())) {
                LOG.info("model {} no longer scores any event; its session is closed", g.getValue().version());
                g.getValue().close();
                it.remove();
            }
        }
    }

    /** The versions of the models loaded in this subtask (for tests: closed ones are gone). */
    Set<String> loadedModels() {
        Set<String> out = new java.util.TreeSet<>();
        generations.values().forEach(g -> out.add(g.version()));
        return out;
    }

    private boolean batchEmpty() {
        return batchGen == null || batchGen.batch.isEmpty();
    }

    /** A step for reading and cleaning a value: every loaded model's lays the value out alike. */
    private UserStep anyStep() {
        return generations.get(schedule.last().serve().key()).step;
    }

    /**
     * Reads the user's state, appends the event and encodes its row for the models of the event's time (and the
     * shadow candidate's row beside it); a duplicate changes nothing. A batch holds one pair of models: an event of
     * another pair flushes it first.
     */
    private void enqueue(String key, InputRecord r) throws Exception {
        ModelSchedule.Epoch epoch = schedule.at(r.eventTime);
        Generation g = generations.get(epoch.serve().key());
        Generation sh = epoch.shadow() == null ? null : generations.get(epoch.shadow().key());
        if (!batchEmpty() && (g != batchGen || sh != batchShadow)) {
            flush();
        }
        batchGen = g;
        batchShadow = sh;
        setCurrentKey(key);
        byte[] other = sh != null || g.shadowed ? otherModelState.value() : null;
        int row = g.step.add(user.value(), r, g.batch, other, sh == null ? null : sh.step,
                sh == null ? null : sh.batch);
        if (row == UserStep.DUPLICATE) {
            duplicates.inc();
            return;
        }
        if (row == UserStep.BEHIND) {
            late(r, "event_time " + r.eventTime + " is before " + g.step.applied() + ", the last applied event of "
                    + "user " + r.userId + ": events of the user up to there are already scored");
            return;
        }
        if (g.step.restarted()) {
            stateRestarts.inc();
        }
        Row x = rows[row];
        x.user = key;
        x.state = g.step.state();
        x.created = g.step.created();
        x.promoted = g.step.promoted();
        ScoredEvent s = new ScoredEvent();
        s.userId = r.userId;
        s.eventType = r.eventType;
        s.itemId = r.itemId;
        s.eventTime = r.eventTime;
        s.windowLength = g.step.windowLength();
        s.sourceTopic = r.sourceTopic;
        s.sourcePartition = r.sourcePartition;
        s.sourceOffset = r.sourceOffset;
        s.modelVersion = g.version();
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
        if (g.batch.isFull()) {
            flush();
        }
    }

    /**
     * Scores the batch (and the shadow candidate's rows beside it, one more call); per row stores the user's new
     * state, decides alerts and emits the score.
     */
    private void flush() throws Exception {
        if (batchEmpty()) {
            return;
        }
        Generation g = batchGen;
        Generation sh = batchShadow;
        int n = g.batch.size;
        long started = System.nanoTime();
        g.scorer.score(g.batch, g.results);
        long micros = (System.nanoTime() - started) / 1_000;
        callMicros.update(micros);
        eventMicros.update(micros / n);
        batchSize.update(n);
        ShadowStats stats = null;
        if (sh != null) {
            long shadowStarted = System.nanoTime();
            sh.scorer.score(sh.batch, sh.results);
            shadowCallMicros.update((System.nanoTime() - shadowStarted) / 1_000);
            stats = shadowStats.computeIfAbsent(sh.version(), v -> new ShadowStats(getMetricGroup(), sh));
        }
        if (g.explainer != null) {
            explain(g, n);
        }
        long now = getProcessingTimeService().getCurrentProcessingTime();
        float[][] results = g.results;
        for (int row = 0; row < n; row++) {
            Row x = rows[row];
            ScoredEvent s = x.event;
            setCurrentKey(x.user);
            s.scores = new float[results.length];
            for (int o = 0; o < results.length; o++) {
                s.scores[o] = results[o][row];
            }
            if (sh != null) {
                stats.record(g, sh, row);
                byte[] other = sh.step.otherState(sh.batch, row);
                if (other != null) {
                    otherModelState.update(other);
                }
                if (settings.shadowScores()) {
                    output.collect(SHADOW_SCORES, new StreamRecord<>(shadowScore(s, sh, row), s.eventTime));
                }
            } else if (x.promoted) {
                // Taken over by the promoted model: its copy as a candidate is stale from now on.
                otherModelState.clear();
            }
            AlertPolicy policy = g.policy;
            long timer = g.step.complete(x.state, g.batch, row, s.scores, s.eventTime, o -> {
                alertCounter(policy.rules.get(o).alertType).inc();
                output.collect(ALERTS, new StreamRecord<>(AlertRecords.of(policy, o, s.userId, s.eventTime,
                        s.eventType, s.itemId, s.windowLength, s.scores, s.reasons, now), s.eventTime));
            });
            if (timer != UserStep.NONE) {
                if (g.step.replacedTimer() != UserStep.NONE) {
                    timers.deleteEventTimeTimer(VoidNamespace.INSTANCE, g.step.replacedTimer());
                }
                timers.registerEventTimeTimer(VoidNamespace.INSTANCE, timer);
            }
            user.update(g.step.completed());
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
        g.batch.clear();
        if (sh != null) {
            sh.batch.clear();
        }
        inBatch.clear();
        batchNumber++;
    }

    private Counter alertCounter(String alertType) {
        return alertsByType.computeIfAbsent(alertType,
                type -> getMetricGroup().addGroup(JobMetrics.ALERT_TYPE, type).counter(JobMetrics.ALERTS_EMITTED));
    }

    private static ScoredEvent shadowScore(ScoredEvent s, Generation sh, int row) {
        ScoredEvent c = new ScoredEvent();
        c.userId = s.userId;
        c.eventType = s.eventType;
        c.itemId = s.itemId;
        c.eventTime = s.eventTime;
        c.windowLength = s.windowLength;
        c.sourceTopic = s.sourceTopic;
        c.sourcePartition = s.sourcePartition;
        c.sourceOffset = s.sourceOffset;
        c.modelVersion = sh.version();
        c.scores = new float[sh.results.length];
        for (int o = 0; o < c.scores.length; o++) {
            c.scores[o] = sh.results[o][row];
        }
        return c;
    }

    /** Gives reasons to the rows whose score reached an alert threshold for any output, in one model call. */
    private void explain(Generation g, int n) {
        int count = 0;
        for (int row = 0; row < n; row++) {
            for (int o = 0; o < g.results.length; o++) {
                if (g.policy.rules.get(o).crossedBy(g.results[o][row])) {
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
        Reason[][] reasons = g.explainer.explain(g.batch, explainRows, count, g.results, explainTypes, g.scorer);
        explainMicros.update((System.nanoTime() - started) / 1_000);
        explained.inc(count);
        for (int i = 0; i < count; i++) {
            rows[explainRows[i]].event.reasons = reasons[i];
        }
    }

    /**
     * Per shadow candidate and output: how often each model reaches its threshold on the same events, how often they
     * disagree about it, and how far apart their scores are. Counters for rates over any range, gauges since the
     * candidate started, score histograms for quantiles.
     */
    private static final class ShadowStats {
        final Counter events;
        final Counter[] shadowAbove;
        final Counter[] servingAbove;
        final Counter[] disagreements;
        final Histogram[] shadowScores;
        final Histogram[] servingScores;
        final double[] absDiffSum;
        long count;

        ShadowStats(MetricGroup metrics, Generation sh) {
            MetricGroup group = metrics.addGroup(JobMetrics.SHADOW_MODEL_VERSION, sh.version());
            events = group.counter(JobMetrics.SHADOW_EVENTS_SCORED);
            int outputs = sh.policy.rules.size();
            shadowAbove = new Counter[outputs];
            servingAbove = new Counter[outputs];
            disagreements = new Counter[outputs];
            shadowScores = new Histogram[outputs];
            servingScores = new Histogram[outputs];
            absDiffSum = new double[outputs];
            for (int o = 0; o < outputs; o++) {
                int out = o;
                MetricGroup g = group.addGroup(JobMetrics.OUTPUT, sh.policy.rules.get(o).output);
                shadowAbove[o] = g.counter(JobMetrics.SHADOW_ABOVE_THRESHOLD);
                servingAbove[o] = g.counter(JobMetrics.SHADOW_SERVING_ABOVE_THRESHOLD);
                disagreements[o] = g.counter(JobMetrics.SHADOW_DISAGREEMENTS);
                shadowScores[o] = JobMetrics.histogram(g, JobMetrics.SHADOW_SCORE_PPM);
                servingScores[o] = JobMetrics.histogram(g, JobMetrics.SHADOW_SERVING_SCORE_PPM);
                g.gauge(JobMetrics.SHADOW_DISAGREEMENT_SHARE, () -> share(disagreements[out].getCount()));
                g.gauge(JobMetrics.SHADOW_ALERT_RATE, () -> share(shadowAbove[out].getCount()));
                g.gauge(JobMetrics.SHADOW_SERVING_ALERT_RATE, () -> share(servingAbove[out].getCount()));
                g.gauge(JobMetrics.SHADOW_MEAN_ABS_DIFF, () -> count == 0 ? 0.0 : absDiffSum[out] / count);
            }
        }

        private double share(long n) {
            return count == 0 ? 0.0 : (double) n / count;
        }

        void record(Generation serving, Generation shadow, int row) {
            count++;
            events.inc();
            for (int o = 0; o < shadowAbove.length; o++) {
                float a = serving.results[o][row];
                float b = shadow.results[o][row];
                boolean servingAlerts = serving.policy.rules.get(o).crossedBy(a);
                boolean shadowAlerts = shadow.policy.rules.get(o).crossedBy(b);
                if (servingAlerts) {
                    servingAbove[o].inc();
                }
                if (shadowAlerts) {
                    shadowAbove[o].inc();
                }
                if (servingAlerts != shadowAlerts) {
                    disagreements[o].inc();
                }
                absDiffSum[o] += Math.abs(a - b);
                servingScores[o].update(Math.round(a * 1e6));
                shadowScores[o].update(Math.round(b * 1e6));
            }
        }
    }

    /**
     * The user's timer: clears the window once its horizon has passed, and the whole state once the user has been
     * inactive for the model-state TTL and no cooldown runs; otherwise moves itself to the next of those times.
     */
    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        UserStep.Cleanup c = anyStep().cleanup(user.value(), timer.getTimestamp());
        if (c == null) {
            return;
        }
        if (c.value() == null) {
            user.clear();
            otherModelState.clear();
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
        scheduleState.update(List.of(getRuntimeContext().getTaskInfo().getIndexOfThisSubtask() + "\n"
                + getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks() + "\n" + schedule.toJson()));
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
            if (generations != null) {
                for (Generation g : generations.values()) {
                    g.close();
                }
                generations.clear();
            }
        } finally {
            super.close();
        }
    }
}
