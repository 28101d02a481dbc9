package dev.seqscore.window;

import dev.seqscore.avro.DeadLetter;
import dev.seqscore.events.DeadLetterReason;
import dev.seqscore.events.DeadLetters;
import dev.seqscore.events.InputRecord;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.metrics.JobMetrics;
import dev.seqscore.metrics.LiveUsers;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.model.OnnxScorer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * The heart of the job: keeps each user's sliding window (the last N events within horizon H) and scores every
 * event with the model, in event-time order.
 *
 * <p>Semantics. Events are held back until the watermark passes their time, then applied in (event time, arrival)
 * order. So the scores do not depend on how Kafka interleaved them, and equal the backtest's, which sees the same
 * events sorted. The price is latency equal to the watermark delay. An event at or behind the watermark is late:
 * its place in the sequence has already been scored, so it goes to the dead-letter output rather than silently
 * rewriting history. Exact duplicates (same item, type and time) are dropped and counted, as in training.
 *
 * <p>State per user: the window (at most N entries) and the events waiting for the watermark. An event-time timer
 * at (newest event + H) clears the window, because by then every event in it is outside the horizon of any future
 * event; so an inactive user costs nothing. Processing-time TTL on the window is a backstop for users whose
 * watermark stalls; waiting events have none, so nothing expires unscored.
 *
 * <p>Scoring: one ONNX Runtime session per task, created in {@link #open} and closed in {@link #close}. Events that
 * become ready together are scored as one batch; the scorer's API is batch-first so that batching across users can
 * come without a rewrite.
 *
 * <p>Metrics ({@link JobMetrics}): counts of scored, late, duplicate and dead-lettered events; histograms of the
 * ONNX Runtime call time, batch size, event-time lag at emit and window length; the model version; and the number
 * of users with a window, which is checkpointed as operator state so that a restart does not reset it.
 */
public class SequenceScoringFunction extends KeyedProcessFunction<String, InputRecord, ScoredEvent>
        implements CheckpointedFunction {
    private static final long serialVersionUID = 1L;

    public static final OutputTag<DeadLetter> LATE = new OutputTag<>("late-events", TypeInformation.of(DeadLetter.class));

    private final ModelBundle bundle;
    private final int maxEvents;
    private final long horizonMs;
    private final Duration stateTtl;
    private final int intraOpThreads;
    private final int maxBatch;

    private transient ListState<WindowEvent> window;
    private transient MapState<Long, List<InputRecord>> pending;
    private transient OnnxScorer scorer;
    private transient FeatureEncoder encoder;
    private transient FeatureBatch batch;
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

    /**
     * @param maxEvents window length N; at most the model's N (shorter windows are padded)
     * @param horizonMs window horizon H
     * @param stateTtl processing-time TTL backstop; zero disables it
     */
    public SequenceScoringFunction(
            ModelBundle bundle, int maxEvents, long horizonMs, Duration stateTtl, int intraOpThreads, int maxBatch) {
        if (maxEvents < 1 || maxEvents > bundle.spec().maxEvents()) {
            throw new IllegalArgumentException("window length " + maxEvents + " must be between 1 and the model's "
                    + bundle.spec().maxEvents());
        }
        if (horizonMs <= 0) {
            throw new IllegalArgumentException("window horizon must be positive, got " + horizonMs + " ms");
        }
        this.bundle = bundle;
        this.maxEvents = maxEvents;
        this.horizonMs = horizonMs;
        this.stateTtl = stateTtl;
        this.intraOpThreads = intraOpThreads;
        this.maxBatch = Math.max(1, maxBatch);
    }

    @Override
    public void open(OpenContext ctx) throws Exception {
        ListStateDescriptor<WindowEvent> windowDesc =
                new ListStateDescriptor<>("window", TypeInformation.of(WindowEvent.class));
        MapStateDescriptor<Long, List<InputRecord>> pendingDesc = new MapStateDescriptor<>(
                "pending", Types.LONG, Types.LIST(TypeInformation.of(InputRecord.class)));
        if (!stateTtl.isZero()) {
            StateTtlConfig ttl = StateTtlConfig.newBuilder(stateTtl)
                    .setUpdateType(StateTtlConfig.UpdateType.OnCreateAndWrite)
                    .setStateVisibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                    .build();
            // Only the window: events waiting for the watermark must never expire unscored. They wait for
            // traffic to resume (idle partitions do not hold the watermark back) and are then scored in order.
            windowDesc.enableTimeToLive(ttl);
        }
        window = getRuntimeContext().getListState(windowDesc);
        pending = getRuntimeContext().getMapState(pendingDesc);

        ModelSpec spec = bundle.spec();
        scorer = new OnnxScorer(bundle, intraOpThreads);
        encoder = new FeatureEncoder(spec);
        batch = encoder.newBatch(maxBatch);
        MetricGroup metrics = getRuntimeContext().getMetricGroup();
        scored = metrics.counter(JobMetrics.EVENTS_SCORED);
        late = metrics.counter(JobMetrics.LATE_EVENTS);
        duplicates = metrics.counter(JobMetrics.DUPLICATE_EVENTS);
        lateDeadLetters = JobMetrics.deadLetters(metrics, DeadLetterReason.LATE_EVENT.name());
        callMicros = JobMetrics.histogram(metrics, JobMetrics.INFERENCE_CALL_MICROS);
        eventMicros = JobMetrics.histogram(metrics, JobMetrics.INFERENCE_EVENT_MICROS);
        batchSize = JobMetrics.histogram(metrics, JobMetrics.BATCH_SIZE);
        eventTimeLagMs = JobMetrics.histogram(metrics, JobMetrics.EVENT_TIME_LAG_MS);
        windowLength = JobMetrics.histogram(metrics, JobMetrics.WINDOW_LENGTH);
        metrics.addGroup(JobMetrics.MODEL_VERSION, spec.modelVersion()).gauge(JobMetrics.MODEL_INFO, () -> 1);
        metrics.gauge(JobMetrics.USERS_WITH_STATE, liveUsers);
    }

    @Override
    public void initializeState(FunctionInitializationContext ctx) throws Exception {
        // Union state: on restore every subtask sees every entry and picks its own (or a share, after rescaling).
        liveUsersState = ctx.getOperatorStateStore().getUnionListState(
                new ListStateDescriptor<>("live-users", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
        liveUsers = LiveUsers.restore(liveUsersState.get(),
                getRuntimeContext().getTaskInfo().getIndexOfThisSubtask(),
                getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks());
    }

    @Override
    public void snapshotState(FunctionSnapshotContext ctx) throws Exception {
        liveUsersState.update(List.of(liveUsers.snapshot(
                getRuntimeContext().getTaskInfo().getIndexOfThisSubtask(),
                getRuntimeContext().getTaskInfo().getNumberOfParallelSubtasks())));
    }

    @Override
    public void close() throws Exception {
        if (scorer != null) {
            scorer.close();
            scorer = null;
        }
    }

    @Override
    public void processElement(InputRecord r, Context ctx, Collector<ScoredEvent> out) throws Exception {
        long t = r.eventTime;
        if (t <= ctx.timerService().currentWatermark()) {
            late.inc();
            lateDeadLetters.inc();
            ctx.output(LATE, DeadLetters.of(DeadLetterReason.LATE_EVENT,
                    "event_time " + t + " is not after the watermark " + ctx.timerService().currentWatermark()
                            + ": events of user " + r.userId + " up to there are already scored",
                    r, ctx.timerService().currentProcessingTime()));
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
        ctx.timerService().registerEventTimeTimer(t);
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<ScoredEvent> out) throws Exception {
        List<InputRecord> ready = pending.get(timestamp);
        List<WindowEvent> events = new ArrayList<>();
        for (WindowEvent w : window.get()) {
            events.add(w);
        }
        if (ready != null) {
            boolean newWindow = events.isEmpty();
            pending.remove(timestamp);
            scoreInOrder(ready, events, out);
            window.update(events);
            if (newWindow) {
                liveUsers.windowCreated();
            }
            ctx.timerService().registerEventTimeTimer(timestamp + horizonMs);
        } else if (!events.isEmpty() && events.get(events.size() - 1).eventTime + horizonMs <= timestamp) {
            // No future event can see any of these: the watermark is past newest + H.
            window.clear();
            liveUsers.windowCleared();
        }
    }

    private void scoreInOrder(List<InputRecord> ready, List<WindowEvent> events, Collector<ScoredEvent> out)
            throws Exception {
        ModelSpec spec = bundle.spec();
        List<ScoredEvent> inBatch = new ArrayList<>(Math.min(ready.size(), maxBatch));
        batch.clear();
        for (InputRecord r : ready) {
            WindowEvent e = new WindowEvent(
                    r.itemId, r.categoryId == null ? "" : r.categoryId, spec.typeId(r.eventType), r.eventTime);
            if (!WindowRule.appendAndEvict(events, e, maxEvents, horizonMs)) {
                duplicates.inc();
                continue;
            }
            encoder.add(events, batch);
            ScoredEvent s = new ScoredEvent();
            s.userId = r.userId;
            s.eventType = r.eventType;
            s.itemId = r.itemId;
            s.eventTime = r.eventTime;
            s.windowLength = events.size();
            s.sourceTopic = r.sourceTopic;
            s.sourcePartition = r.sourcePartition;
            s.sourceOffset = r.sourceOffset;
            inBatch.add(s);
            if (inBatch.size() == maxBatch) {
                flush(inBatch, out);
            }
        }
        flush(inBatch, out);
    }

    private void flush(List<ScoredEvent> inBatch, Collector<ScoredEvent> out) throws Exception {
        if (inBatch.isEmpty()) {
            return;
        }
        int rows = inBatch.size();
        long started = System.nanoTime();
        float[][] byOutput = scorer.score(batch);
        long micros = (System.nanoTime() - started) / 1_000;
        callMicros.update(micros);
        eventMicros.update(micros / rows);
        batchSize.update(rows);
        long now = System.currentTimeMillis();
        for (int row = 0; row < rows; row++) {
            ScoredEvent s = inBatch.get(row);
            s.scores = new float[byOutput.length];
            for (int o = 0; o < byOutput.length; o++) {
                s.scores[o] = byOutput[o][row];
            }
            eventTimeLagMs.update(now - s.eventTime);
            windowLength.update(s.windowLength);
            out.collect(s);
        }
        scored.inc(rows);
        inBatch.clear();
        batch.clear();
    }
}
