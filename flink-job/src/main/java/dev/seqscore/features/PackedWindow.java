package dev.seqscore.features;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.List;

/**
 * A user's window as the scorer keeps it in Flink state: one byte array holding a ring buffer of fixed-size slots,
 * read and written once per event. Items and categories are stored as their 64-bit FNV-1a hashes, which is all the
 * features need of them (the hash bucket, and equality: same item, distinct counts, carts without a buy); type and
 * event time are packed into one int as an offset from a base time.
 *
 * <p>{@link #append} applies the contract's window rule exactly as {@link WindowRule#appendAndEvict} does (exact
 * duplicates dropped, events kept in time order, eviction by count and by horizon), so the slots always hold the
 * window of the last event appended. A 64-bit hash stands in for an id string: two distinct ids of one window collide
 * with a probability of about 50² / 2⁶⁵, which is ignored.
 *
 * <p>Layout (little-endian): a 14-byte header (format, type bits, head slot, event count, base time), then the slots.
 * Compact slots are 20 bytes: item hash, category hash, and {@code (eventTime - base) << typeBits | typeId}; when an
 * offset outgrows its bits the base moves to the oldest event kept, and where even that cannot fit (a horizon longer
 * than the offset range, about 6 days for a vocabulary of up to 7 types) the buffer turns into wide slots of 24 bytes
 * with {@code eventTime << 16 | typeId}. The array grows by doubling up to {@code maxEvents} slots and then wraps, so
 * a full window of N = 50 is 1,014 bytes.
 *
 * <p>One instance per task is a reusable view: {@link #wrap} the stored array, read or append, and store
 * {@link #bytes()} back. Appending writes into the wrapped array (a new one only when it grows or changes format).
 * Not thread-safe.
 */
public final class PackedWindow {
    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);

    static final byte COMPACT = 1;
    static final byte WIDE = 2;
    private static final int FORMAT = 0;
    private static final int TYPE_BITS = 1;
    private static final int HEAD = 2;
    private static final int COUNT = 4;
    private static final int BASE = 6;
    public static final int HEADER_BYTES = 14;
    public static final int COMPACT_SLOT_BYTES = 20;
    public static final int WIDE_SLOT_BYTES = 24;
    private static final int WIDE_TYPE_BITS = 16;
    private static final int MAX_SLOTS = 0xffff;
    private static final int FIRST_SLOTS = 4;

    private final int maxEvents;
    private final long horizonMs;
    private final int maxTypeId;
    /** Type bits of new compact buffers: enough for every vocabulary id. */
    private final int typeBits;
    private final boolean startCompact;

    private byte[] buf;
    /** Where the window starts in {@link #buf}: the bytes before it belong to the caller and are kept as they are. */
    private int at;
    private boolean compact;
    private int slotBytes;
    private int bufTypeBits;
    private long maxOffset;
    private int capacity;
    private int head;
    private int count;
    private long base;

    /**
     * @param maxEvents  window length N (at most 65,535)
     * @param horizonMs  window horizon H
     * @param maxTypeId  the largest vocabulary id (the vocabulary's size; at most 65,535)
     */
    public PackedWindow(int maxEvents, long horizonMs, int maxTypeId) {
        if (maxEvents <= 0 || maxEvents > MAX_SLOTS || horizonMs <= 0) {
            throw new IllegalArgumentException("maxEvents must be 1.." + MAX_SLOTS + " and horizonMs positive, got "
                    + maxEvents + " and " + horizonMs);
        }
        if (maxTypeId <= 0 || maxTypeId >= 1 << WIDE_TYPE_BITS) {
            throw new IllegalArgumentException("vocabulary of " + maxTypeId + " types: must be 1.."
                    + ((1 << WIDE_TYPE_BITS) - 1));
        }
        this.maxEvents = maxEvents;
        this.horizonMs = horizonMs;
        this.maxTypeId = maxTypeId;
        this.typeBits = 32 - Integer.numberOfLeadingZeros(maxTypeId);
        this.startCompact = horizonMs <= maxCompactOffset(typeBits);
    }

    /** A view for the spec's vocabulary, with the given window length and horizon. */
    public static PackedWindow forSpec(ModelSpec spec, int maxEvents, long horizonMs) {
        return new PackedWindow(maxEvents, horizonMs, spec.vocabulary().size());
    }

    private static long maxCompactOffset(int typeBits) {
        // The packed int is read unsigned: 32 - typeBits bits of offset.
        return (1L << (32 - typeBits)) - 1;
    }

    /**
     * Makes this view show {@code stored} (null: an empty window, as a state backend returns for a new user).
     *
     * @throws IllegalStateException if {@code stored} is not a window this class wrote
     */
    public PackedWindow wrap(byte[] stored) {
        return wrap(stored, 0);
    }

    /**
     * Makes this view show the window stored from {@code offset} on in {@code stored}, after bytes of the caller's
     * own (another record of the same user, say); nothing from {@code offset} on, or a null array, is an empty window.
     * Appending keeps the first {@code offset} bytes as they are, also when it has to allocate a larger array.
     *
     * @throws IllegalStateException if the bytes from {@code offset} on are not a window this class wrote
     */
    public PackedWindow wrap(byte[] stored, int offset) {
        buf = stored;
        at = offset;
        if (stored == null || stored.length == offset) {
            capacity = 0;
            head = 0;
            count = 0;
            return this;
        }
        if (offset < 0 || stored.length < offset + HEADER_BYTES) {
            throw corrupt("it has " + (stored.length - offset) + " bytes, fewer than the header's " + HEADER_BYTES);
        }
        byte format = stored[at + FORMAT];
        if (format == COMPACT) {
            setFormat(true, stored[at + TYPE_BITS]);
        } else if (format == WIDE) {
            setFormat(false, WIDE_TYPE_BITS);
        } else {
            throw corrupt("its format byte is " + format);
        }
        int bytes = stored.length - at;
        if ((bytes - HEADER_BYTES) % slotBytes != 0) {
            throw corrupt("its " + bytes + " bytes are not a header and whole slots of " + slotBytes);
        }
        capacity = (bytes - HEADER_BYTES) / slotBytes;
        head = Short.toUnsignedInt((short) SHORT.get(stored, at + HEAD));
        count = Short.toUnsignedInt((short) SHORT.get(stored, at + COUNT));
        base = (long) LONG.get(stored, at + BASE);
        if (count > capacity || (capacity > 0 && head >= capacity) || bufTypeBits < 1 || bufTypeBits > 31) {
            throw corrupt("head " + head + ", count " + count + " and type bits " + bufTypeBits + " do not fit "
                    + capacity + " slots");
        }
        return this;
    }

    private static IllegalStateException corrupt(String why) {
        return new IllegalStateException("window state is not a packed window: " + why);
    }

    private void setFormat(boolean compact, int bits) {
        this.compact = compact;
        this.slotBytes = compact ? COMPACT_SLOT_BYTES : WIDE_SLOT_BYTES;
        this.bufTypeBits = bits;
        this.maxOffset = compact ? maxCompactOffset(bits) : 0;
    }

    /**
     * The array to store: the wrapped one, or a new one (with the caller's first bytes copied) if the last append
     * grew it. Null for an empty new window without a prefix.
     */
    public byte[] bytes() {
        return buf;
    }

    /** Empties the window: the wrapped array cut to the caller's bytes before it (null without any). */
    public byte[] cleared() {
        buf = buf == null || at == 0 ? null : java.util.Arrays.copyOf(buf, at);
        capacity = 0;
        head = 0;
        count = 0;
        return buf;
    }

    public int size() {
        return count;
    }

    public boolean isEmpty() {
        return count == 0;
    }

    /** Whether the buffer uses 20-byte slots (false: 24-byte slots, for horizons beyond the compact range). */
    public boolean isCompact() {
        return compact;
    }

    public long itemHash(int i) {
        return (long) LONG.get(buf, offset(i));
    }

    public long categoryHash(int i) {
        return (long) LONG.get(buf, offset(i) + 8);
    }

    public int typeId(int i) {
        return compact ? (int) INT.get(buf, offset(i) + 16) & ((1 << bufTypeBits) - 1)
                : (int) ((long) LONG.get(buf, offset(i) + 16) & ((1 << WIDE_TYPE_BITS) - 1));
    }

    /** Event time of the {@code i}-th event, oldest first. */
    public long eventTime(int i) {
        return timeAt(offset(i));
    }

    public long newestTime() {
        if (count == 0) {
            throw new IllegalStateException("the window is empty");
        }
        return eventTime(count - 1);
    }

    private int offset(int i) {
        if (i < 0 || i >= count) {
            throw new IndexOutOfBoundsException("event " + i + " of a window of " + count);
        }
        return slotOffset(slot(i));
    }

    private int slot(int i) {
        int s = head + i;
        return s >= capacity ? s - capacity : s;
    }

    private int slotOffset(int slot) {
        return at + HEADER_BYTES + slot * slotBytes;
    }

    private long timeAt(int o) {
        return compact ? base + (Integer.toUnsignedLong((int) INT.get(buf, o + 16)) >>> bufTypeBits)
                : (long) LONG.get(buf, o + 16) >> WIDE_TYPE_BITS;
    }

    /**
     * Copies the window, oldest first, into columns (each at least {@link #size()} long) and returns its size: the
     * encoder's input, read in one pass.
     */
    public int copyTo(long[] itemHashes, long[] categoryHashes, int[] typeIds, long[] eventTimes) {
        int mask = compact ? (1 << bufTypeBits) - 1 : (1 << WIDE_TYPE_BITS) - 1;
        int s = head;
        for (int i = 0; i < count; i++) {
            int o = slotOffset(s);
            itemHashes[i] = (long) LONG.get(buf, o);
            categoryHashes[i] = (long) LONG.get(buf, o + 8);
            if (compact) {
                int packed = (int) INT.get(buf, o + 16);
                typeIds[i] = packed & mask;
                eventTimes[i] = base + (Integer.toUnsignedLong(packed) >>> bufTypeBits);
            } else {
                long packed = (long) LONG.get(buf, o + 16);
                typeIds[i] = (int) (packed & mask);
                eventTimes[i] = packed >> WIDE_TYPE_BITS;
            }
            if (++s == capacity) {
                s = 0;
            }
        }
        return count;
    }

    /** {@link #append(long, long, int, long)} with the ids hashed; a null category counts as "" (as the encoder). */
    public boolean append(String itemId, String categoryId, int typeId, long eventTime) {
        return append(Fnv1a64.hash(itemId), Fnv1a64.hash(categoryId == null ? "" : categoryId), typeId, eventTime);
    }

    /** Appends every event of {@code events} in order; duplicates are skipped as {@link #append} skips them. */
    public PackedWindow appendAll(List<WindowEvent> events) {
        for (WindowEvent e : events) {
            append(e.itemId, e.categoryId, e.typeId, e.eventTime);
        }
        return this;
    }

    /**
     * Appends the user's next event and evicts what the window rule no longer keeps, so that afterwards this is
     * exactly the window of that event (see {@link WindowRule#appendAndEvict}).
     *
     * @return false, leaving the window unchanged, if the event duplicates one in the window (same item hash, type
     *         and time); such an event must not be scored
     * @throws IllegalArgumentException if the event is earlier than the window's newest, or its type id is outside
     *                                  the vocabulary
     */
    public boolean append(long itemHash, long categoryHash, int typeId, long eventTime) {
        if (typeId <= 0 || typeId > maxTypeId) {
            throw new IllegalArgumentException("type id " + typeId + " outside the vocabulary 1.." + maxTypeId);
        }
        for (int i = count - 1; i >= 0; i--) {
            int o = slotOffset(slot(i));
            long t = timeAt(o);
            if (t < eventTime) break;
            if (t == eventTime && (long) LONG.get(buf, o) == itemHash && typeId(i) == typeId) {
                return false;
            }
        }
        if (count > 0 && newestTime() > eventTime) {
            throw new IllegalArgumentException("event at " + eventTime + " is earlier than the window's newest at "
                    + newestTime() + "; events must be appended in event-time order");
        }
        // The new event is never evicted itself (0 < H), so evicting before adding it keeps the same events.
        dropOldest(Math.max(0, count + 1 - maxEvents));
        while (count > 0 && WindowRule.outsideHorizon(eventTime(0), eventTime, horizonMs)) {
            dropOldest(1);
        }
        if (capacity == 0) {
            buf = withPrefix(HEADER_BYTES + Math.min(maxEvents, FIRST_SLOTS) * (startCompact
                    ? COMPACT_SLOT_BYTES : WIDE_SLOT_BYTES));
            buf[at + FORMAT] = startCompact ? COMPACT : WIDE;
            buf[at + TYPE_BITS] = (byte) (startCompact ? typeBits : WIDE_TYPE_BITS);
            setFormat(startCompact, startCompact ? typeBits : WIDE_TYPE_BITS);
            capacity = Math.min(maxEvents, FIRST_SLOTS);
            head = 0;
            base = eventTime;
        } else if (count == capacity) {
            resize(Math.min(maxEvents, Math.max(FIRST_SLOTS, 2 * capacity)), compact);
        }
        if (compact && (typeId >= 1 << bufTypeBits || !fitsCompact(eventTime))) {
            resize(capacity, false);
        }
        int o = slotOffset(slot(count));
        LONG.set(buf, o, itemHash);
        LONG.set(buf, o + 8, categoryHash);
        writeTime(o, eventTime, typeId);
        count++;
        writeHeader();
        return true;
    }

    /** Whether {@code eventTime} fits a compact slot, after moving the base to the oldest event if it must. */
    private boolean fitsCompact(long eventTime) {
        long newBase = count == 0 ? eventTime : eventTime(0);
        if (eventTime - base <= maxOffset && eventTime >= base) {
            return true;
        }
        if (eventTime - newBase > maxOffset) {
            return false;
        }
        for (int i = 0; i < count; i++) {
            int o = slotOffset(slot(i));
            long t = timeAt(o);
            int type = (int) INT.get(buf, o + 16) & ((1 << bufTypeBits) - 1);
            INT.set(buf, o + 16, (int) ((t - newBase) << bufTypeBits) | type);
        }
        base = newBase;
        return true;
    }

    private void writeTime(int o, long eventTime, int typeId) {
        if (compact) {
            INT.set(buf, o + 16, (int) ((eventTime - base) << bufTypeBits) | typeId);
        } else {
            LONG.set(buf, o + 16, eventTime << WIDE_TYPE_BITS | typeId);
        }
    }

    private void dropOldest(int n) {
        n = Math.min(n, count);
        head = count == n ? 0 : (head + n) % capacity;
        count -= n;
    }

    /** Copies the events, oldest first from slot 0, into a new array of {@code slots} slots in the given format. */
    private void resize(int slots, boolean toCompact) {
        if (toCompact && !compact) {
            throw new IllegalStateException("wide windows never become compact again");
        }
        int n = count;
        long[] items = new long[n];
        long[] categories = new long[n];
        int[] types = new int[n];
        long[] times = new long[n];
        copyTo(items, categories, types, times);
        setFormat(toCompact, toCompact ? bufTypeBits : WIDE_TYPE_BITS);
        buf = withPrefix(HEADER_BYTES + slots * slotBytes);
        buf[at + FORMAT] = toCompact ? COMPACT : WIDE;
        buf[at + TYPE_BITS] = (byte) bufTypeBits;
        capacity = slots;
        head = 0;
        for (int i = 0; i < n; i++) {
            int o = slotOffset(i);
            LONG.set(buf, o, items[i]);
            LONG.set(buf, o + 8, categories[i]);
            writeTime(o, times[i], types[i]);
        }
        writeHeader();
    }

    private void writeHeader() {
        SHORT.set(buf, at + HEAD, (short) head);
        SHORT.set(buf, at + COUNT, (short) count);
        LONG.set(buf, at + BASE, base);
    }

    /** A new array for a window of {@code windowBytes}, starting with the caller's bytes of the wrapped one. */
    private byte[] withPrefix(int windowBytes) {
        byte[] b = new byte[at + windowBytes];
        if (at > 0) {
            System.arraycopy(buf, 0, b, 0, at);
        }
        return b;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("PackedWindow{").append(compact ? "compact" : "wide").append(", ")
                .append(count).append('/').append(capacity);
        for (int i = 0; i < count; i++) {
            s.append(i == 0 ? ": " : ", ").append(typeId(i)).append('@').append(eventTime(i));
        }
        return s.append('}').toString();
    }
}
