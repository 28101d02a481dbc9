package dev.seqscore.scoring;

import dev.seqscore.alerts.AlertPolicy;
import dev.seqscore.events.InputRecord;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.Fnv1a64;
import dev.seqscore.features.Lifetime;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.PackedWindow;

/**
 * What one event does to its user's state, before and after the model call, and what the user's cleanup timer does:
 * the one definition that the job's {@link ScoringOperator} and the offline state bootstrap share, so that a
 * bootstrapped state is the state the job would have built.
 *
 * <p>Per event: {@link #add} (append to the window, the contract's reset rule, the row's features, the lifetime
 * record), the model call (the caller's), then {@link #complete} (the new recurrent state, the alert decision, the
 * cleanup timer). Each user has at most one timer, the one its value records, so that an erasure can delete it.
 * Holds one reusable {@link UserState} view; not thread-safe.
 */
public final class UserStep {
    /** Where an alert decision goes. */
    @FunctionalInterface
    public interface AlertSink {
        void alert(int rule);
    }

    /** What a cleanup timer leaves: the value to store (null: forget the user) and the next timer ({@link #NONE}). */
    public record Cleanup(byte[] value, long nextTimer) {}

    public static final long NONE = UserState.NO_TIMER;
    /** {@link #add}: an exact duplicate of an event in the window. */
    public static final int DUPLICATE = -1;
    /** {@link #add}: earlier than an event the user's state has already applied (only after a restore). */
    public static final int BEHIND = -2;

    private final ModelSpec spec;
    private final boolean incremental;
    private final long modelTag;
    private final int stateSize;
    private final long resetGapMs;
    private final long horizonMs;
    private final long modelStateTtlMs;
    private final AlertPolicy policy;
    private final UserState view;
    private final Lifetime lifetime;
    private final FeatureEncoder encoder;

    private boolean restarted;
    private boolean promoted;
    private boolean created;
    private long replacedTimer = NONE;
    private long applied;

    public UserStep(ScoringSettings settings) {
        this.spec = settings.bundle().spec();
        ModelSpec.Served served = settings.served();
        this.incremental = served.incremental();
        this.modelTag = served.versionTag();
        this.stateSize = served.stateSize();
        // The reset rule's gap: the streaming model's (a bundle without one defines none), or what the model-state TTL
        // keeps the lifetime record and state for (0: the horizon) if shorter. A user back after that starts anew
        // even when the timer has not dropped the value yet (the watermark jumped past it, or a cooldown keeps the
        // value), so that scores do not depend on how the watermark moved.
        long kept = settings.modelStateTtlMs() > 0 ? settings.modelStateTtlMs() : settings.horizonMs();
        this.resetGapMs = Math.min(kept, spec.streaming().map(ModelSpec.Streaming::resetGapMs)
                .orElse(Long.MAX_VALUE));
        this.horizonMs = settings.horizonMs();
        this.modelStateTtlMs = settings.modelStateTtlMs();
        this.policy = settings.alerts();
        this.lifetime = Lifetime.forSpec(spec);
        this.view = new UserState(PackedWindow.forSpec(spec, settings.maxEvents(), horizonMs), settings.maxEvents(),
                horizonMs, Lifetime.forSpec(spec), spec.vocabulary().size(), policy.alertTypes.size(), stateSize);
        this.encoder = new FeatureEncoder(spec);
    }

    /**
     * Applies the event to the user's stored state (null for a new user) and encodes its row into the batch: the
     * window, the contract's reset rule, the lifetime features and the recurrent state as the model must see them,
     * then the lifetime record with the event. Afterwards {@link #state()} is the value to keep until the model has
     * scored the row.
     *
     * @return the row; {@link #DUPLICATE} for an exact duplicate of an event in the window, {@link #BEHIND} for an
     *         event earlier than one the state has applied: both change nothing
     */
    public int add(byte[] stored, InputRecord r, FeatureBatch batch) {
        return add(stored, r, batch, null, null, null);
    }

    /**
     * {@link #add(byte[], InputRecord, FeatureBatch)}, with a shadow candidate: its row, the same event seen through
     * the same window and lifetime record, goes into {@code shadowBatch} at the same index, with the recurrent state
     * that {@code other} holds for it (zeros if it holds another model's). {@code other} is the user's second model
     * state ({@link #otherState}): a promoted candidate's own state, which this step also takes over when its model
     * is the one that wrote it, instead of starting from zeros.
     */
    public int add(byte[] stored, InputRecord r, FeatureBatch batch, byte[] other, UserStep shadow,
            FeatureBatch shadowBatch) {
        view.wrap(stored);
        created = view.created();
        restarted = false;
        promoted = false;
        int typeId = spec.typeId(r.eventType);
        long t = r.eventTime;
        PackedWindow window = view.window();
        view.readLifetime(lifetime);
        applied = Math.max(window.isEmpty() ? Long.MIN_VALUE : window.newestTime(),
                lifetime.isEmpty() ? Long.MIN_VALUE : lifetime.last());
        if (t < applied) {
            // Only after a restore, which starts without a watermark: an event that was late before the failure.
            return BEHIND;
        }
        if (!window.append(Fnv1a64.hash(r.itemId), Fnv1a64.hash(r.categoryId == null ? "" : r.categoryId), typeId,
                t)) {
            return DUPLICATE;
        }
        boolean reset = lifetime.resetIfGap(t, resetGapMs);
        if (reset) {
            view.resetState();
        }
        int row = encoder.add(window, batch);
        if (incremental) {
            encoder.addLifetime(lifetime, t, typeId, batch, row);
            boolean mine = view.stateTag() == modelTag;
            if (!mine && !reset && readOther(other, modelTag, batch.state, row * stateSize, stateSize)) {
                // The promoted candidate's own state: it carries on where it shadowed.
                promoted = true;
            } else {
                // Written by another model: the step starts it again from zeros; the lifetime record still holds.
                restarted = !created && view.stateTag() != 0 && !mine;
                view.readState(modelTag, batch.state, row * stateSize);
            }
        }
        if (shadow != null) {
            int shadowRow = shadow.encoder.add(window, shadowBatch);
            if (shadow.incremental) {
                shadow.encoder.addLifetime(lifetime, t, typeId, shadowBatch, shadowRow);
                if (reset || !readOther(other, shadow.modelTag, shadowBatch.state, shadowRow * shadow.stateSize,
                        shadow.stateSize)) {
                    java.util.Arrays.fill(shadowBatch.state, shadowRow * shadow.stateSize,
                            (shadowRow + 1) * shadow.stateSize, 0f);
                }
            }
        }
        lifetime.apply(t, typeId);
        view.writeLifetime(lifetime);
        return row;
    }

    /**
     * The user's second model state, as {@link #add} reads it: the tag of the model that wrote it, then its floats.
     * Null when the model has no recurrent state.
     */
    public byte[] otherState(FeatureBatch batch, int row) {
        if (!incremental) {
            return null;
        }
        byte[] b = new byte[Long.BYTES + stateSize * Float.BYTES];
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        buf.putLong(modelTag);
        for (int i = 0; i < stateSize; i++) {
            buf.putFloat(batch.stateOut[row * stateSize + i]);
        }
        return b;
    }

    private static boolean readOther(byte[] other, long tag, float[] into, int offset, int size) {
        if (other == null || other.length != Long.BYTES + size * Float.BYTES) {
            return false;
        }
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.wrap(other).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        if (buf.getLong() != tag) {
            return false;
        }
        for (int i = 0; i < size; i++) {
            into[offset + i] = buf.getFloat();
        }
        return true;
    }

    /** Whether the last {@link #add} took over the state its model wrote as a shadow candidate. */
    public boolean promoted() {
        return promoted;
    }

    /** The tag of the model whose recurrent state {@code stored} holds (0 for none or a new user). */
    public long stateTagOf(byte[] stored) {
        return stored == null ? 0 : view.wrap(stored).stateTag();
    }

    /** The tag this step's model writes its recurrent state with. */
    public long modelTag() {
        return modelTag;
    }

    /** The time of the last event the user's state had applied when {@link #add} found its event {@link #BEHIND}. */
    public long applied() {
        return applied;
    }

    /** The state {@link #add} left, to store once the row is scored. */
    public byte[] state() {
        return view.bytes();
    }

    /** The window length the last added event was scored with. */
    public int windowLength() {
        return view.window().size();
    }

    /** Whether the last {@link #add} was the user's first event (the stored state was null). */
    public boolean created() {
        return created;
    }

    /** Whether the last {@link #add} found a recurrent state of another model and started it from zeros. */
    public boolean restarted() {
        return restarted;
    }

    /**
     * After the model call: stores the row's new recurrent state into {@code state} (what {@link #state()} returned),
     * decides the event's alerts against the cooldown kept there, and moves the cleanup timer if it must.
     *
     * @param scores the row's score per output, in the policy's rule order
     * @return the timer to register, or {@link #NONE} when the user's timer stays as it is
     */
    public long complete(byte[] state, FeatureBatch batch, int row, float[] scores, long eventTime, AlertSink alerts) {
        view.wrap(state);
        if (incremental) {
            view.writeState(modelTag, batch.stateOut, row * stateSize);
        }
        for (int o = 0; o < policy.rules.size(); o++) {
            if (!policy.rules.get(o).crossedBy(scores[o])) {
                continue;
            }
            int type = policy.typeIndex(o);
            long last = view.lastAlert(type);
            if (last != UserState.NO_ALERT && eventTime - last < policy.cooldownMs) {
                continue;
            }
            if (policy.cooldownMs > 0) {
                view.lastAlert(type, eventTime);
            }
            alerts.alert(o);
        }
        long due = eventTime + horizonMs;
        long timer = view.timerAt();
        replacedTimer = NONE;
        if (timer == UserState.NO_TIMER || timer > due) {
            // One timer per user: a later one (the end of a retention) makes way for the window's.
            replacedTimer = timer;
            view.timerAt(due);
            return due;
        }
        return NONE;
    }

    /** The timer the last {@link #complete} moved its user's cleanup from, to delete; {@link #NONE} if none. */
    public long replacedTimer() {
        return replacedTimer;
    }

    /** The time of the user's one cleanup timer as {@code stored} records it; {@link #NONE} for none. */
    public long timerOf(byte[] stored) {
        return view.wrap(stored).timerAt();
    }

    /** The value as {@link #complete} left it. */
    public byte[] completed() {
        return view.bytes();
    }

    /**
     * The user's cleanup timer firing at {@code now}: clears the window once its horizon has passed, and the whole
     * value once the user has been inactive for the model-state TTL and no cooldown runs; otherwise moves the timer
     * to the next of those times. Null when the timer is stale (the value records another one) or the value is gone.
     */
    public Cleanup cleanup(byte[] stored, long now) {
        if (stored == null) {
            return null;
        }
        view.wrap(stored);
        if (view.timerAt() != now) {
            return null;
        }
        PackedWindow window = view.window();
        if (!window.isEmpty() && window.newestTime() + horizonMs <= now) {
            view.clearWindow();
        }
        long next;
        if (!window.isEmpty()) {
            next = window.newestTime() + horizonMs;
        } else {
            view.readLifetime(lifetime);
            long keep = Long.MIN_VALUE;
            if (modelStateTtlMs > 0 && !lifetime.isEmpty()) {
                keep = lifetime.last() + modelStateTtlMs;
            }
            long alert = view.latestAlert();
            if (alert != UserState.NO_ALERT) {
                keep = Math.max(keep, alert + policy.cooldownMs);
            }
            if (keep <= now) {
                return new Cleanup(null, NONE);
            }
            next = keep;
        }
        view.timerAt(next);
        return new Cleanup(view.bytes(), next);
    }
}
