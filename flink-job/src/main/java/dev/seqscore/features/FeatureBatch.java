package dev.seqscore.features;

import java.util.Arrays;

/**
 * A reusable batch of encoded windows: the model's six input tensors as flat, row-major primitive arrays with room
 * for {@link #capacity} rows, of which the first {@link #size} are filled. A batch for the streaming model also holds
 * the step graph's {@link #lifetime} and {@link #state} inputs and receives its {@link #stateOut}.
 *
 * <p>Operators keep one per task and refill it for every batch, so that encoding allocates nothing. Not thread-safe.
 */
public final class FeatureBatch {
    /** Rows this batch can hold. */
    public final int capacity;
    /** N: positions per window. */
    public final int maxEvents;
    /** S: sequence features per position. */
    public final int sequenceFeatures;
    /** P: profile features per row. */
    public final int profileFeatures;

    /** [capacity * N] vocabulary ids, 0 at padding. */
    public final long[] eventType;
    /** [capacity * N] item hash buckets, 0 at padding. */
    public final long[] itemBucket;
    /** [capacity * N] category hash buckets, 0 at padding. */
    public final long[] categoryBucket;
    /** [capacity * N * S] standardised sequence features, 0 at padding. */
    public final float[] seqNumeric;
    /** [capacity * N] 1 at real positions, 0 at padding. */
    public final float[] mask;
    /** [capacity * P] standardised profile features. */
    public final float[] profile;

    /** F: lifetime features per row; 0 for the windowed model. */
    public final int lifetimeFeatures;
    /** Z: recurrent state per row; 0 for the windowed model. */
    public final int stateSize;
    /** [capacity * F] standardised lifetime features. */
    public final float[] lifetime;
    /** [capacity * Z] each row's state before its event: the step graph's input. */
    public final float[] state;
    /** [capacity * Z] each row's state after its event, as the step graph returned it for the scored rows. */
    public final float[] stateOut;

    /** Rows filled so far; rows {@code [size, capacity)} hold stale data and are never scored. */
    public int size;

    /** A batch for the windowed model. */
    public FeatureBatch(int capacity, int maxEvents, int sequenceFeatures, int profileFeatures) {
        this(capacity, maxEvents, sequenceFeatures, profileFeatures, 0, 0);
    }

    /** A batch for the step graph when {@code lifetimeFeatures} and {@code stateSize} are positive. */
    public FeatureBatch(int capacity, int maxEvents, int sequenceFeatures, int profileFeatures, int lifetimeFeatures,
                        int stateSize) {
        if (capacity <= 0 || maxEvents <= 0 || sequenceFeatures <= 0 || profileFeatures <= 0) {
            throw new IllegalArgumentException("batch dimensions must be positive: capacity=" + capacity + ", N="
                    + maxEvents + ", S=" + sequenceFeatures + ", P=" + profileFeatures);
        }
        if (lifetimeFeatures < 0 || stateSize < 0 || (lifetimeFeatures == 0) != (stateSize == 0)) {
            throw new IllegalArgumentException("lifetime features and state size must both be positive (streaming) "
                    + "or both 0 (windowed), got F=" + lifetimeFeatures + ", Z=" + stateSize);
        }
        this.capacity = capacity;
        this.maxEvents = maxEvents;
        this.sequenceFeatures = sequenceFeatures;
        this.profileFeatures = profileFeatures;
        this.eventType = new long[capacity * maxEvents];
        this.itemBucket = new long[capacity * maxEvents];
        this.categoryBucket = new long[capacity * maxEvents];
        this.seqNumeric = new float[capacity * maxEvents * sequenceFeatures];
        this.mask = new float[capacity * maxEvents];
        this.profile = new float[capacity * profileFeatures];
        this.lifetimeFeatures = lifetimeFeatures;
        this.stateSize = stateSize;
        this.lifetime = new float[capacity * lifetimeFeatures];
        this.state = new float[capacity * stateSize];
        this.stateOut = new float[capacity * stateSize];
    }

    /** A batch shaped for the spec's windowed tensors. */
    public static FeatureBatch forSpec(ModelSpec spec, int capacity) {
        return new FeatureBatch(capacity, spec.maxEvents(), spec.sequenceFeatures().size(),
                spec.profileFeatures().size());
    }

    /** A batch shaped for the model {@code served} serves: with lifetime and state for the step graph. */
    public static FeatureBatch forServed(ModelSpec spec, ModelSpec.Served served, int capacity) {
        return new FeatureBatch(capacity, spec.maxEvents(), spec.sequenceFeatures().size(),
                spec.profileFeatures().size(), served.lifetimeFeatures().size(), served.stateSize());
    }

    /** Whether this batch feeds the step graph. */
    public boolean isStreaming() {
        return stateSize > 0;
    }

    public boolean isFull() {
        return size == capacity;
    }

    public boolean isEmpty() {
        return size == 0;
    }

    /** Forgets all rows; their data is overwritten when rows are encoded again. */
    public void clear() {
        size = 0;
    }

    /** Copies row {@code row} of this batch into row {@code toRow} of {@code to}, which must have the same shape. */
    public void copyRow(int row, FeatureBatch to, int toRow) {
        if (to.maxEvents != maxEvents || to.sequenceFeatures != sequenceFeatures
                || to.profileFeatures != profileFeatures || to.lifetimeFeatures != lifetimeFeatures
                || to.stateSize != stateSize) {
            throw new IllegalArgumentException("batches differ in shape");
        }
        int n = maxEvents;
        System.arraycopy(eventType, row * n, to.eventType, toRow * n, n);
        System.arraycopy(itemBucket, row * n, to.itemBucket, toRow * n, n);
        System.arraycopy(categoryBucket, row * n, to.categoryBucket, toRow * n, n);
        System.arraycopy(mask, row * n, to.mask, toRow * n, n);
        System.arraycopy(seqNumeric, row * n * sequenceFeatures, to.seqNumeric, toRow * n * sequenceFeatures,
                n * sequenceFeatures);
        System.arraycopy(profile, row * profileFeatures, to.profile, toRow * profileFeatures, profileFeatures);
        int f = lifetimeFeatures;
        int z = stateSize;
        System.arraycopy(lifetime, row * f, to.lifetime, toRow * f, f);
        System.arraycopy(state, row * z, to.state, toRow * z, z);
        System.arraycopy(stateOut, row * z, to.stateOut, toRow * z, z);
    }

    /** Sets row {@code row}'s input state; null means a new user's, all zeros. */
    public void setState(int row, float[] userState) {
        if (userState == null) {
            Arrays.fill(state, row * stateSize, (row + 1) * stateSize, 0f);
            return;
        }
        if (userState.length != stateSize) {
            throw new IllegalArgumentException("a state of " + userState.length + " floats for a model with state "
                    + "size " + stateSize);
        }
        System.arraycopy(userState, 0, state, row * stateSize, stateSize);
    }

    /** Copies row {@code row}'s output state into {@code to}, which has {@link #stateSize} entries. */
    public void copyStateOut(int row, float[] to) {
        System.arraycopy(stateOut, row * stateSize, to, 0, stateSize);
    }

    public float[] lifetimeRow(int row) {
        return Arrays.copyOfRange(lifetime, row * lifetimeFeatures, (row + 1) * lifetimeFeatures);
    }

    public float[] stateRow(int row) {
        return Arrays.copyOfRange(state, row * stateSize, (row + 1) * stateSize);
    }

    public float[] stateOutRow(int row) {
        return Arrays.copyOfRange(stateOut, row * stateSize, (row + 1) * stateSize);
    }

    /** Row {@code row}'s slice of a [capacity * N] tensor, as a copy (for tests and debugging). */
    public long[] eventTypeRow(int row) {
        return Arrays.copyOfRange(eventType, row * maxEvents, (row + 1) * maxEvents);
    }

    public long[] itemBucketRow(int row) {
        return Arrays.copyOfRange(itemBucket, row * maxEvents, (row + 1) * maxEvents);
    }

    public long[] categoryBucketRow(int row) {
        return Arrays.copyOfRange(categoryBucket, row * maxEvents, (row + 1) * maxEvents);
    }

    public float[] maskRow(int row) {
        return Arrays.copyOfRange(mask, row * maxEvents, (row + 1) * maxEvents);
    }

    /** Sequence feature {@code f} at window position {@code p} of row {@code row}. */
    public float seqNumeric(int row, int p, int f) {
        return seqNumeric[(row * maxEvents + p) * sequenceFeatures + f];
    }

    public float[] profileRow(int row) {
        return Arrays.copyOfRange(profile, row * profileFeatures, (row + 1) * profileFeatures);
    }
}
