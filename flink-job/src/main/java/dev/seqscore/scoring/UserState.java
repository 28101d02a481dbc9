package dev.seqscore.scoring;

import dev.seqscore.features.Lifetime;
import dev.seqscore.features.PackedWindow;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Everything the scorer keeps for one user, as one byte array in one {@code ValueState}, so that an event costs one
 * state read and one write: a header, the lifetime record, the last alert time per alert type, the model's recurrent
 * state, then the {@link PackedWindow}.
 *
 * <p>Layout (little-endian): format (1 byte), alert types A (1), window offset (2), vocabulary size V (2), state
 * size Z (2), event time of the user's pending cleanup timer (8, {@link #NO_TIMER} for none), tag of the model that
 * wrote the recurrent state (8, 0 for none), the window rule it was kept by: N (2) and H in ms (8); then the lifetime
 * record ({@link Lifetime#bytes(int)} for V), A longs, Z floats, and the window from the window offset on. The sizes travel with the bytes, so state written for another
 * model (another Z) or alert policy (another A) is read, and converted to this operator's layout without losing
 * what still applies.
 *
 * <p>A reusable view: {@link #wrap} a stored array (or null for a new user), read and change, then store
 * {@link #bytes()}. Not thread-safe.
 */
public final class UserState {
    public static final byte FORMAT = 1;
    public static final long NO_TIMER = Long.MIN_VALUE;
    public static final long NO_ALERT = Long.MIN_VALUE;

    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    private static final int AT_FORMAT = 0;
    private static final int AT_ALERTS = 1;
    private static final int AT_WINDOW = 2;
    private static final int AT_VOCABULARY = 4;
    private static final int AT_STATE_SIZE = 6;
    private static final int AT_TIMER = 8;
    private static final int AT_TAG = 16;
    private static final int AT_MAX_EVENTS = 24;
    private static final int AT_HORIZON = 26;
    public static final int HEADER_BYTES = 34;

    private final int vocabulary;
    private final int alertTypes;
    private final int stateSize;
    private final int maxEvents;
    private final long horizonMs;
    private final int lifetimeAt;
    private final int alertsAt;
    private final int stateAt;
    /** Where the window starts in arrays of this layout. */
    private final int windowAt;
    private final PackedWindow window;
    /** The bytes before the window of a new user: header, an empty lifetime record, no alerts, zero state. */
    private final byte[] template;

    /** Whether the wrapped array was null: a user the state has never seen (or has forgotten). */
    private boolean created;

    /**
     * @param window     the view the window is read through
     * @param maxEvents  the window rule's N, recorded in every value (the window view's)
     * @param horizonMs  the window rule's H, likewise
     * @param empty      an empty lifetime record, as a new user's is written
     * @param vocabulary V, the vocabulary size the lifetime record counts
     * @param alertTypes A, the alert types whose last alert is kept
     * @param stateSize  Z, floats of recurrent state (0 for the windowed model)
     */
    public UserState(PackedWindow window, int maxEvents, long horizonMs, Lifetime empty, int vocabulary,
            int alertTypes, int stateSize) {
        if (vocabulary < 1 || vocabulary > Short.MAX_VALUE || alertTypes < 0 || alertTypes > 127 || stateSize < 0
                || stateSize > 4096) {
            throw new IllegalArgumentException("user state of " + vocabulary + " types, " + alertTypes
                    + " alert types and " + stateSize + " state floats is out of range");
        }
        this.window = window;
        this.maxEvents = maxEvents;
        this.horizonMs = horizonMs;
        this.vocabulary = vocabulary;
        this.alertTypes = alertTypes;
        this.stateSize = stateSize;
        this.lifetimeAt = HEADER_BYTES;
        this.alertsAt = lifetimeAt + Lifetime.bytes(vocabulary);
        this.stateAt = alertsAt + alertTypes * Long.BYTES;
        this.windowAt = stateAt + stateSize * Float.BYTES;
        this.template = new byte[windowAt];
        writeHeader(template);
        LONG.set(template, AT_TIMER, NO_TIMER);
        empty.writeTo(template, lifetimeAt);
        for (int a = 0; a < alertTypes; a++) {
            LONG.set(template, alertsAt + a * Long.BYTES, NO_ALERT);
        }
    }

    /**
     * A stored value's header, read without a view of this operator's layout: what an inspection of a savepoint needs
     * to decode a value of any layout. The lifetime record starts at {@link #HEADER_BYTES}, the A alert times
     * follow it ({@link Lifetime#bytes(int)} for V later), then Z floats of state, then the window at
     * {@code windowAt}.
     */
    public record Header(int format, int alertTypes, int windowAt, int vocabulary, int stateSize, long timerAt,
            long stateTag, int maxEvents, long horizonMs) {

        /** Where the alert times start. */
        public int alertsAt() {
            return HEADER_BYTES + Lifetime.bytes(vocabulary);
        }

        /** The last alert time of alert type {@code a} in {@code stored}, or {@link #NO_ALERT}. */
        public long lastAlert(byte[] stored, int a) {
            return (long) LONG.get(stored, alertsAt() + a * Long.BYTES);
        }
    }

    /** @throws IllegalStateException if {@code stored} is not a user state this class wrote */
    public static Header header(byte[] stored) {
        if (stored == null || stored.length < HEADER_BYTES || stored[AT_FORMAT] != FORMAT) {
            throw new IllegalStateException("not a SeqScore user state of format " + FORMAT);
        }
        return new Header(stored[AT_FORMAT], stored[AT_ALERTS], Short.toUnsignedInt((short) SHORT.get(stored, AT_WINDOW)),
                Short.toUnsignedInt((short) SHORT.get(stored, AT_VOCABULARY)),
                Short.toUnsignedInt((short) SHORT.get(stored, AT_STATE_SIZE)), (long) LONG.get(stored, AT_TIMER),
                (long) LONG.get(stored, AT_TAG), Short.toUnsignedInt((short) SHORT.get(stored, AT_MAX_EVENTS)),
                (long) LONG.get(stored, AT_HORIZON));
    }

    /** Bytes before the window in this layout: what a user with an empty window costs. */
    public int prefixBytes() {
        return windowAt;
    }

    /**
     * Makes this view show {@code stored}: null for a new user. An array of another layout (another model's state
     * size, another number of alert types or vocabulary size) is converted: the window is kept; the lifetime record
     * if the vocabulary is the same; alert times if the alert types are; the recurrent state if its size is; the tag
     * of the model that wrote it always (whether the state may be used, or another model's was dropped, is the
     * caller's to judge by {@link #stateTag()}).
     *
     * @throws IllegalStateException if {@code stored} is not a user state this class wrote
     */
    public UserState wrap(byte[] stored) {
        created = stored == null;
        if (stored == null) {
            window.wrap(template.clone(), windowAt);
            return this;
        }
        if (stored.length < HEADER_BYTES || stored[AT_FORMAT] != FORMAT) {
            throw new IllegalStateException("user state of " + stored.length + " bytes is not a SeqScore user state "
                    + "(format byte " + (stored.length == 0 ? "missing" : stored[AT_FORMAT]) + ", expected "
                    + FORMAT + ")");
        }
        int storedWindowAt = Short.toUnsignedInt((short) SHORT.get(stored, AT_WINDOW));
        int storedVocabulary = Short.toUnsignedInt((short) SHORT.get(stored, AT_VOCABULARY));
        int storedAlerts = stored[AT_ALERTS];
        int storedStateSize = Short.toUnsignedInt((short) SHORT.get(stored, AT_STATE_SIZE));
        if (storedWindowAt > stored.length || storedWindowAt != HEADER_BYTES + Lifetime.bytes(storedVocabulary)
                + storedAlerts * Long.BYTES + storedStateSize * Float.BYTES) {
            throw new IllegalStateException("user state header does not match its " + stored.length + " bytes");
        }
        if (storedWindowAt == windowAt && storedVocabulary == vocabulary && storedAlerts == alertTypes
                && storedStateSize == stateSize) {
            // The rule this value is kept by from now on (a job may restore with another --max-events or --horizon:
            // the window's own eviction then applies the new one at the next event).
            SHORT.set(stored, AT_MAX_EVENTS, (short) maxEvents);
            LONG.set(stored, AT_HORIZON, horizonMs);
            window.wrap(stored, windowAt);
            return this;
        }
        byte[] b = Arrays.copyOf(template, windowAt + stored.length - storedWindowAt);
        LONG.set(b, AT_TIMER, (long) LONG.get(stored, AT_TIMER));
        // Also when the state itself cannot be kept, so that the caller sees another model's state was there.
        LONG.set(b, AT_TAG, (long) LONG.get(stored, AT_TAG));
        if (storedVocabulary == vocabulary) {
            System.arraycopy(stored, HEADER_BYTES, b, lifetimeAt, Lifetime.bytes(vocabulary));
        }
        int storedAlertsAt = HEADER_BYTES + Lifetime.bytes(storedVocabulary);
        if (storedAlerts == alertTypes) {
            System.arraycopy(stored, storedAlertsAt, b, alertsAt, alertTypes * Long.BYTES);
        }
        if (storedStateSize == stateSize) {
            System.arraycopy(stored, storedAlertsAt + storedAlerts * Long.BYTES, b, stateAt, stateSize * Float.BYTES);
        }
        System.arraycopy(stored, storedWindowAt, b, windowAt, stored.length - storedWindowAt);
        window.wrap(b, windowAt);
        return this;
    }

    private void writeHeader(byte[] b) {
        b[AT_FORMAT] = FORMAT;
        b[AT_ALERTS] = (byte) alertTypes;
        SHORT.set(b, AT_WINDOW, (short) windowAt);
        SHORT.set(b, AT_VOCABULARY, (short) vocabulary);
        SHORT.set(b, AT_STATE_SIZE, (short) stateSize);
        SHORT.set(b, AT_MAX_EVENTS, (short) maxEvents);
        LONG.set(b, AT_HORIZON, horizonMs);
    }

    /** The array to store: the wrapped one, changed in place, or a new one if the window grew. */
    public byte[] bytes() {
        return window.bytes();
    }

    /** Whether the view shows a new user (the wrapped array was null). */
    public boolean created() {
        return created;
    }

    public PackedWindow window() {
        return window;
    }

    public void readLifetime(Lifetime into) {
        into.readFrom(bytes(), lifetimeAt);
    }

    public void writeLifetime(Lifetime from) {
        from.writeTo(bytes(), lifetimeAt);
    }

    public long timerAt() {
        return (long) LONG.get(bytes(), AT_TIMER);
    }

    public void timerAt(long t) {
        LONG.set(bytes(), AT_TIMER, t);
    }

    /** The window rule's N the value was last written with. */
    public int maxEvents() {
        return Short.toUnsignedInt((short) SHORT.get(bytes(), AT_MAX_EVENTS));
    }

    /** The window rule's H the value was last written with, in ms. */
    public long horizonMs() {
        return (long) LONG.get(bytes(), AT_HORIZON);
    }

    /** The tag of the model that wrote the recurrent state; 0 when none did (a new user, or one just reset). */
    public long stateTag() {
        return (long) LONG.get(bytes(), AT_TAG);
    }

    public long lastAlert(int alertType) {
        return (long) LONG.get(bytes(), alertsAt + alertType * Long.BYTES);
    }

    public void lastAlert(int alertType, long eventTime) {
        LONG.set(bytes(), alertsAt + alertType * Long.BYTES, eventTime);
    }

    /** The latest alert time of any type, or {@link #NO_ALERT}. */
    public long latestAlert() {
        long latest = NO_ALERT;
        for (int a = 0; a < alertTypes; a++) {
            latest = Math.max(latest, lastAlert(a));
        }
        return latest;
    }

    /** Copies the recurrent state into {@code into[offset, offset + Z)}; zeros unless written by {@code tag}. */
    public void readState(long tag, float[] into, int offset) {
        byte[] b = bytes();
        if (tag == 0 || (long) LONG.get(b, AT_TAG) != tag) {
            Arrays.fill(into, offset, offset + stateSize, 0f);
            return;
        }
        for (int i = 0; i < stateSize; i++) {
            into[offset + i] = Float.intBitsToFloat((int) INT.get(b, stateAt + i * Float.BYTES));
        }
    }

    /** Stores {@code from[offset, offset + Z)} as the recurrent state written by the model tagged {@code tag}. */
    public void writeState(long tag, float[] from, int offset) {
        byte[] b = bytes();
        LONG.set(b, AT_TAG, tag);
        for (int i = 0; i < stateSize; i++) {
            INT.set(b, stateAt + i * Float.BYTES, Float.floatToRawIntBits(from[offset + i]));
        }
    }

    /** Forgets the recurrent state: the next event starts it from zeros. */
    public void resetState() {
        byte[] b = bytes();
        LONG.set(b, AT_TAG, 0L);
        Arrays.fill(b, stateAt, stateAt + stateSize * Float.BYTES, (byte) 0);
    }

    /** Empties the window (its horizon has passed); the rest stays. */
    public void clearWindow() {
        window.cleared();
    }
}
