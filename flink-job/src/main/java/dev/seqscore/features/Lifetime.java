package dev.seqscore.features;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * A user's lifetime record (docs/feature-contract.md, "Streaming model"): what the streaming model's lifetime
 * features need of every event applied so far, in a fixed number of bytes whatever the user's age. It does not depend
 * on the model, so the job keeps it across model versions.
 *
 * <p>Per event, in this order: {@link #resetIfGap} (on true the caller zeros the recurrent state too), the lifetime
 * features from the record as it is ({@code FeatureEncoder#addLifetime}), then {@link #apply}. Exact duplicates are
 * dropped before any of it, as for the window.
 *
 * <p>Layout, little-endian, {@link #bytes(int)} bytes: one int per vocabulary type (its count, saturating at
 * {@link Integer#MAX_VALUE}), the first, last and last-buy event times as longs (0 for none: event times are positive),
 * then the number of distinct local days as an int. All zeros is the empty record. The local day of the last event is
 * not stored: it is a function of the last event's time. One instance per task is a reusable view; not thread-safe.
 */
public final class Lifetime {
    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final long DAY_MS = 86_400_000L;
    private static final long NONE = 0L;

    private final int vocabularySize;
    private final int buyId;
    private final long utcOffsetMs;
    /** Index = vocabulary id; entry 0 unused. */
    private final int[] counts;
    private long first;
    private long last;
    private long lastBuy;
    private int activeDays;

    /**
     * @param vocabularySize the number of event types (ids 1..size)
     * @param buyId          the vocabulary id of {@code buy}, 0 if the vocabulary has none
     * @param utcOffsetMs    the spec's fixed offset of local time, for day boundaries
     */
    public Lifetime(int vocabularySize, int buyId, long utcOffsetMs) {
        if (vocabularySize <= 0 || buyId < 0 || buyId > vocabularySize) {
            throw new IllegalArgumentException("vocabulary of " + vocabularySize + " types with buy id " + buyId);
        }
        this.vocabularySize = vocabularySize;
        this.buyId = buyId;
        this.utcOffsetMs = utcOffsetMs;
        this.counts = new int[vocabularySize + 1];
    }

    public static Lifetime forSpec(ModelSpec spec) {
        return new Lifetime(spec.vocabulary().size(), spec.typeId("buy"), spec.utcOffsetMs());
    }

    /** The stored size of a record for a vocabulary of {@code vocabularySize} types. */
    public static int bytes(int vocabularySize) {
        return vocabularySize * Integer.BYTES + 3 * Long.BYTES + Integer.BYTES;
    }

    public int bytes() {
        return bytes(vocabularySize);
    }

    /** Makes this the record stored at {@code b[off..off + bytes())}. */
    public void readFrom(byte[] b, int off) {
        checkRange(b, off);
        int o = off;
        for (int t = 1; t <= vocabularySize; t++, o += Integer.BYTES) {
            counts[t] = (int) INT.get(b, o);
        }
        first = (long) LONG.get(b, o);
        last = (long) LONG.get(b, o + 8);
        lastBuy = (long) LONG.get(b, o + 16);
        activeDays = (int) INT.get(b, o + 24);
    }

    /** Stores this record at {@code b[off..off + bytes())}. */
    public void writeTo(byte[] b, int off) {
        checkRange(b, off);
        int o = off;
        for (int t = 1; t <= vocabularySize; t++, o += Integer.BYTES) {
            INT.set(b, o, counts[t]);
        }
        LONG.set(b, o, first);
        LONG.set(b, o + 8, last);
        LONG.set(b, o + 16, lastBuy);
        INT.set(b, o + 24, activeDays);
    }

    private void checkRange(byte[] b, int off) {
        if (off < 0 || b.length - off < bytes()) {
            throw new IllegalArgumentException("a lifetime record of " + vocabularySize + " types needs " + bytes()
                    + " bytes from offset " + off + ", the array has " + b.length);
        }
    }

    /** The record of a user with no events yet. */
    public void clear() {
        java.util.Arrays.fill(counts, 0);
        first = NONE;
        last = NONE;
        lastBuy = NONE;
        activeDays = 0;
    }

    public boolean isEmpty() {
        return last == NONE;
    }

    /**
     * The contract's reset rule, before the event at {@code t} is applied: a user back after more than
     * {@code resetGapMs} starts as a new user.
     *
     * @return whether the record was emptied (then the caller's recurrent state must be zeroed too)
     */
    public boolean resetIfGap(long t, long resetGapMs) {
        if (!isEmpty() && t - last > resetGapMs) {
            clear();
            return true;
        }
        return false;
    }

    /**
     * Adds the user's next event.
     *
     * @throws IllegalArgumentException if it is earlier than the last event applied, its time is not positive, or
     *                                  its type is outside the vocabulary
     */
    public void apply(long t, int typeId) {
        if (typeId <= 0 || typeId > vocabularySize) {
            throw new IllegalArgumentException("type id " + typeId + " outside the vocabulary 1.." + vocabularySize);
        }
        if (t <= 0) {
            throw new IllegalArgumentException("event time " + t + " is not after 1970");
        }
        if (isEmpty()) {
            first = t;
            activeDays = 1;
        } else {
            if (t < last) {
                throw new IllegalArgumentException("event at " + t + " is earlier than the record's last at " + last
                        + "; events must be applied in event-time order");
            }
            if (day(t) != day(last) && activeDays < Integer.MAX_VALUE) {
                activeDays++;
            }
        }
        last = t;
        if (counts[typeId] < Integer.MAX_VALUE) {
            counts[typeId]++;
        }
        if (typeId == buyId) {
            lastBuy = t;
        }
    }

    /**
     * Makes this the record of the first {@code events} events of {@code window}: for a user whose record is
     * missing (state written by a job without one), the best the job still knows. Before appending the scored
     * event pass {@code window.size()}; after, {@code window.size() - 1}.
     */
    public void rebuildFrom(PackedWindow window, int events) {
        if (events < 0 || events > window.size()) {
            throw new IndexOutOfBoundsException(events + " events of a window of " + window.size());
        }
        clear();
        for (int i = 0; i < events; i++) {
            apply(window.eventTime(i), window.typeId(i));
        }
    }

    /** {@link #rebuildFrom(PackedWindow, int)} with every event of the window. */
    public void rebuildFrom(PackedWindow window) {
        rebuildFrom(window, window.size());
    }

    /** Events of type {@code typeId} applied since the record began. */
    public int count(int typeId) {
        return counts[typeId];
    }

    /** Time of the first event, 0 when empty. */
    public long first() {
        return first;
    }

    /** Time of the last event, 0 when empty. */
    public long last() {
        return last;
    }

    public boolean hasBuy() {
        return lastBuy != NONE;
    }

    /** Time of the last buy, 0 if none. */
    public long lastBuy() {
        return lastBuy;
    }

    /** Distinct local days among the events applied. */
    public int activeDays() {
        return activeDays;
    }

    /** The local day of the last event; meaningless when empty. */
    public long lastDay() {
        return day(last);
    }

    /** {@code floorDiv(t + utc_offset_ms, 86400000)}: the local day of a time. */
    public long day(long t) {
        return Math.floorDiv(t + utcOffsetMs, DAY_MS);
    }

    /** Distinct local days among the record's events and one more event at {@code t}, not earlier than the last. */
    public long activeDaysWith(long t) {
        return isEmpty() ? 1 : activeDays + (day(t) != day(last) ? 1L : 0L);
    }

    public int vocabularySize() {
        return vocabularySize;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("Lifetime{");
        if (isEmpty()) {
            return s.append("empty}").toString();
        }
        s.append("counts=").append(java.util.Arrays.toString(java.util.Arrays.copyOfRange(counts, 1,
                counts.length))).append(", first=").append(first).append(", last=").append(last)
                .append(", lastBuy=").append(hasBuy() ? Long.toString(lastBuy) : "none")
                .append(", activeDays=").append(activeDays);
        return s.append('}').toString();
    }
}
