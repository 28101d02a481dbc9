package dev.seqscore.scoring;

import static org.assertj.core.api.Assertions.fail;

import dev.seqscore.avro.Alert;
import dev.seqscore.avro.DeadLetter;
import dev.seqscore.events.InputRecord;
import dev.seqscore.features.Lifetime;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.PackedWindow;
import dev.seqscore.testing.CapturedMetrics;
import dev.seqscore.testing.Clicks;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.state.StateBackend;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;

/**
 * {@link ScoringOperator} in a keyed test harness, with what its tests do again and again: send clicks, move the
 * watermark until everything it passes is out, take a checkpoint as the runtime does (barrier first), and look at a
 * user's stored {@link UserState} and waiting events.
 */
public final class ScoringHarness implements AutoCloseable {
    public static final int MAX_PARALLELISM = 128;

    public final ScoringSettings settings;
    public final KeyedOneInputStreamOperatorTestHarness<String, InputRecord, ScoredEvent> h;
    private final UserState view;
    private final Lifetime lifetime;

    private ScoringHarness(ScoringSettings settings, StateBackend backend, CapturedMetrics metrics,
            OperatorSubtaskState restore) throws Exception {
        this.settings = settings;
        ScoringOperator op = new ScoringOperator(settings);
        // The same max parallelism with and without captured metrics, so that snapshots restore across them.
        h = metrics == null
                ? new KeyedOneInputStreamOperatorTestHarness<>(op, r -> r.userId, Types.STRING, MAX_PARALLELISM, 1, 0)
                : new KeyedOneInputStreamOperatorTestHarness<>(op, r -> r.userId, Types.STRING,
                        metrics.environment(MAX_PARALLELISM));
        if (backend != null) {
            h.setStateBackend(backend);
        }
        if (restore != null) {
            h.initializeState(restore);
        }
        h.open();
        ModelSpec spec = settings.bundle().spec();
        lifetime = Lifetime.forSpec(spec);
        view = new UserState(PackedWindow.forSpec(spec, settings.maxEvents(), settings.horizonMs()),
                settings.maxEvents(), settings.horizonMs(), Lifetime.forSpec(spec), spec.vocabulary().size(), settings.alerts().alertTypes.size(),
                settings.served().stateSize());
    }

    public static ScoringHarness open(ScoringSettings settings) throws Exception {
        return new ScoringHarness(settings, null, null, null);
    }

    public static ScoringHarness open(ScoringFixture.Settings settings) throws Exception {
        return open(settings.build());
    }

    public static ScoringHarness open(ScoringSettings settings, StateBackend backend) throws Exception {
        return new ScoringHarness(settings, backend, null, null);
    }

    public static ScoringHarness open(ScoringSettings settings, CapturedMetrics metrics) throws Exception {
        return new ScoringHarness(settings, null, metrics, null);
    }

    /** A fresh operator restored from {@code snapshot}, as after a failure or from a savepoint. */
    public static ScoringHarness restore(ScoringSettings settings, OperatorSubtaskState snapshot) throws Exception {
        return new ScoringHarness(settings, null, null, snapshot);
    }

    public static ScoringHarness restore(ScoringSettings settings, OperatorSubtaskState snapshot,
            StateBackend backend, CapturedMetrics metrics) throws Exception {
        return new ScoringHarness(settings, backend, metrics, snapshot);
    }

    public ScoringOperator operator() {
        return (ScoringOperator) h.getOperator();
    }

    public void send(Clicks.Builder c) throws Exception {
        h.processElement(c.record(), c.millis());
    }

    public void sendAll(List<Clicks.Builder> clicks) throws Exception {
        for (Clicks.Builder c : clicks) {
            send(c);
        }
    }

    /**
     * The watermark, then as many batching deadlines as it takes until the operator lets the watermark through:
     * everything it passes has been scored and emitted, and the user timers it passes have fired.
     */
    public void watermark(long w) throws Exception {
        int before = h.getOutput().size();
        h.processWatermark(w);
        for (int deadlines = 0; !watermarkOut(before, w); deadlines++) {
            if (deadlines == 100_000) {
                fail("the watermark %d was not let through after %d batching deadlines", w, deadlines);
            }
            deadline();
        }
    }

    private boolean watermarkOut(int from, long w) {
        int i = 0;
        for (Object o : h.getOutput()) {
            if (i++ >= from && o instanceof Watermark m && m.getTimestamp() == w) {
                return true;
            }
        }
        return false;
    }

    /** Processing time moves on by the batching deadline. */
    public void deadline() throws Exception {
        h.setProcessingTime(h.getProcessingTime() + Math.max(1, settings.maxDelayMs()));
    }

    /** A checkpoint as the runtime takes it: the barrier's pre-snapshot step, then the snapshot. */
    public OperatorSubtaskState checkpoint(long id) throws Exception {
        h.prepareSnapshotPreBarrier(id);
        return h.snapshot(id, id);
    }

    public List<ScoredEvent> scored() {
        return h.extractOutputValues();
    }

    public List<ScoredEvent> scored(String user) {
        return scored().stream().filter(s -> s.userId.equals(user)).toList();
    }

    public List<Alert> alerts() {
        return sideOutput(ScoringOperator.ALERTS);
    }

    public List<DeadLetter> late() {
        return sideOutput(ScoringOperator.LATE);
    }

    private <T> List<T> sideOutput(org.apache.flink.util.OutputTag<T> tag) {
        var records = h.getSideOutput(tag);
        List<T> out = new ArrayList<>();
        if (records != null) {
            for (StreamRecord<T> r : records) {
                out.add(r.getValue());
            }
        }
        return out;
    }

    /** The user's stored {@link UserState} bytes; null when the user has none. */
    public byte[] stored(String user) throws Exception {
        var backend = h.getOperator().getKeyedStateBackend();
        backend.setCurrentKey(user);
        return backend.getPartitionedState(VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE,
                new ValueStateDescriptor<>(ScoringOperator.USER_STATE,
                        PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO)).value();
    }

    /** Stores {@code bytes} as the user's value, as another version of the job (or a bootstrap) would have. */
    public void store(String user, byte[] bytes) throws Exception {
        var backend = h.getOperator().getKeyedStateBackend();
        backend.setCurrentKey(user);
        backend.getPartitionedState(VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE,
                new ValueStateDescriptor<>(ScoringOperator.USER_STATE,
                        PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO)).update(bytes);
    }

    /** A view of the user's stored value in this operator's layout; fails if the user has none. */
    public UserState userState(String user) throws Exception {
        byte[] b = stored(user);
        if (b == null) {
            fail("user %s has no stored state", user);
        }
        return view.wrap(b.clone());
    }

    /** The user's stored lifetime record. */
    public Lifetime lifetime(String user) throws Exception {
        userState(user).readLifetime(lifetime);
        return lifetime;
    }

    /** The user's events in the keyed "pending" state, which the operator writes only in a snapshot. */
    public List<InputRecord> pendingState(String user) throws Exception {
        var backend = h.getOperator().getKeyedStateBackend();
        backend.setCurrentKey(user);
        Iterable<InputRecord> it = backend.getPartitionedState(VoidNamespace.INSTANCE,
                VoidNamespaceSerializer.INSTANCE, new ListStateDescriptor<>(ScoringOperator.PENDING_STATE,
                        TypeInformation.of(InputRecord.class))).get();
        List<InputRecord> out = new ArrayList<>();
        if (it != null) {
            it.forEach(out::add);
        }
        return out;
    }

    /** Users with an entry under {@code state}; works on every backend, unlike counting entries. */
    public long usersWith(String state) {
        try (Stream<Object> keys = h.getOperator().getKeyedStateBackend().getKeys(state, VoidNamespace.INSTANCE)) {
            return keys.count();
        }
    }

    public int timers() {
        return h.numEventTimeTimers();
    }

    @Override
    public void close() throws Exception {
        h.close();
    }
}
