package dev.seqscore.features;

import java.io.Serializable;
import java.util.Arrays;
import java.util.List;

/**
 * Turns one user window into one row of the model's input tensors, exactly as docs/feature-contract.md defines each
 * named feature, so that Java serving reproduces the features Python trained on (proved by {@code golden.jsonl}).
 *
 * <p>Built from a {@link ModelSpec}; which features go where is resolved once here, so the per-event work is plain
 * arithmetic over primitive arrays. Item and category ids enter only as their 64-bit FNV-1a hashes (buckets are
 * {@code hash mod buckets + 1}, equality is equality of hashes), so a {@link PackedWindow} from state and a list of
 * {@link WindowEvent}s encode to the same row bit for bit. For a spec with a streaming model it also encodes the
 * lifetime features of a {@link Lifetime} record ({@link #addLifetime}). {@link Serializable} (it only holds the spec
 * and the resolved plan); an instance keeps scratch arrays and is not thread-safe, so use one per task.
 */
public final class FeatureEncoder implements Serializable {
    private static final long serialVersionUID = 1L;

    private static final long DAY_MS = 86_400_000L;

    private static final int GAP = 0, AGE = 1, HOUR_SIN = 2, HOUR_COS = 3, SAME_ITEM = 4, SAME_CATEGORY = 5;
    private static final int COUNT = 0, DISTINCT_ITEMS = 1, DISTINCT_CATEGORIES = 2, CARTS_WITHOUT_BUY = 3,
            SESSION_EVENTS = 4, SINCE_PREV_BUY = 5, HAS_PREV_BUY = 6, WINDOW_LENGTH = 7, RECENT = 8, IS_TYPE = 9,
            SINCE_PREV_EVENT = 10, SAME_ITEM_COUNT = 11, SAME_CATEGORY_COUNT = 12, EVENT_HOUR_SIN = 13,
            EVENT_HOUR_COS = 14;
    private static final int LIFE_COUNT = 0, LIFE_ACTIVE_DAYS = 1, LIFE_DAYS_SINCE_FIRST = 2, LIFE_SINCE_PREV_EVENT = 3,
            LIFE_SINCE_PREV_BUY = 4, LIFE_HAS_PREV_BUY = 5;

    private final ModelSpec spec;
    private final int n;
    private final int vocabularySize;
    private final int itemBuckets;
    private final int categoryBuckets;
    private final long horizonMs;
    private final long sessionGapMs;
    private final long recentMs;
    private final long utcOffsetMs;
    /** 0 if the vocabulary has no such type, which no real event carries. */
    private final int cartId;
    private final int buyId;

    private final int[] seqCode;
    private final double[] seqMean;
    private final double[] seqStd;
    private final int[] profCode;
    /** For COUNT, RECENT and IS_TYPE: the vocabulary id. */
    private final int[] profParam;
    private final double[] profMean;
    private final double[] profStd;
    /** The streaming model's lifetime features; empty without one. */
    private final int[] lifeCode;
    /** For LIFE_COUNT: the vocabulary id. */
    private final int[] lifeParam;
    private final double[] lifeMean;
    private final double[] lifeStd;
    private final long resetGapMs;

    /** The window being encoded, as columns: item and category hashes, type ids, event times. */
    private transient long[] colItem;
    private transient long[] colCategory;
    private transient int[] colType;
    private transient long[] colTime;
    private transient int[] scratchTypeCount;
    private transient int[] scratchRecentCount;

    public FeatureEncoder(ModelSpec spec) {
        this.spec = spec;
        this.n = spec.maxEvents();
        this.vocabularySize = spec.vocabulary().size();
        this.itemBuckets = spec.itemBuckets();
        this.categoryBuckets = spec.categoryBuckets();
        this.horizonMs = spec.horizonMs();
        this.sessionGapMs = spec.sessionGapMs();
        this.recentMs = spec.recentMs();
        this.utcOffsetMs = spec.utcOffsetMs();
        this.cartId = spec.typeId("cart");
        this.buyId = spec.typeId("buy");

        List<ModelSpec.FeatureSpec> seq = spec.sequenceFeatures();
        seqCode = new int[seq.size()];
        for (int f = 0; f < seq.size(); f++) {
            String name = seq.get(f).name();
            seqCode[f] = switch (name) {
                case "gap_log1p" -> GAP;
                case "age_log1p" -> AGE;
                case "hour_sin" -> HOUR_SIN;
                case "hour_cos" -> HOUR_COS;
                case "same_item" -> SAME_ITEM;
                case "same_category" -> SAME_CATEGORY;
                default -> throw notImplemented("sequence", name);
            };
        }
        seqMean = spec.sequenceMeans();
        seqStd = spec.sequenceStds();

        List<ModelSpec.FeatureSpec> prof = spec.profileFeatures();
        profCode = new int[prof.size()];
        profParam = new int[prof.size()];
        for (int f = 0; f < prof.size(); f++) {
            String name = prof.get(f).name();
            int prefixCode = -1;
            for (String prefix : ModelSpec.TYPE_PREFIXES) {
                int type = name.startsWith(prefix) ? spec.typeId(name.substring(prefix.length())) : 0;
                if (type > 0) {
                    prefixCode = switch (prefix) {
                        case ModelSpec.COUNT_PREFIX -> COUNT;
                        case ModelSpec.RECENT_PREFIX -> RECENT;
                        default -> IS_TYPE;
                    };
                    profParam[f] = type;
                    break;
                }
            }
            if (prefixCode >= 0) {
                profCode[f] = prefixCode;
                continue;
            }
            profCode[f] = switch (name) {
                case "distinct_items" -> DISTINCT_ITEMS;
                case "distinct_categories" -> DISTINCT_CATEGORIES;
                case "carts_without_buy" -> CARTS_WITHOUT_BUY;
                case "session_events" -> SESSION_EVENTS;
                case "since_prev_buy" -> SINCE_PREV_BUY;
                case "has_prev_buy" -> HAS_PREV_BUY;
                case "window_length" -> WINDOW_LENGTH;
                case "since_prev_event" -> SINCE_PREV_EVENT;
                case "same_item_count" -> SAME_ITEM_COUNT;
                case "same_category_count" -> SAME_CATEGORY_COUNT;
                case "event_hour_sin" -> EVENT_HOUR_SIN;
                case "event_hour_cos" -> EVENT_HOUR_COS;
                default -> throw notImplemented("profile", name);
            };
        }
        profMean = spec.profileMeans();
        profStd = spec.profileStds();

        List<ModelSpec.FeatureSpec> life = spec.streaming().map(ModelSpec.Streaming::lifetimeFeatures)
                .orElse(List.of());
        lifeCode = new int[life.size()];
        lifeParam = new int[life.size()];
        lifeMean = life.stream().mapToDouble(ModelSpec.FeatureSpec::mean).toArray();
        lifeStd = life.stream().mapToDouble(ModelSpec.FeatureSpec::std).toArray();
        resetGapMs = spec.streaming().map(ModelSpec.Streaming::resetGapMs).orElse(0L);
        for (int f = 0; f < life.size(); f++) {
            String name = life.get(f).name();
            int type = name.startsWith(ModelSpec.LIFE_COUNT_PREFIX)
                    ? spec.typeId(name.substring(ModelSpec.LIFE_COUNT_PREFIX.length())) : 0;
            lifeParam[f] = type;
            lifeCode[f] = type > 0 ? LIFE_COUNT : switch (name) {
                case "life_active_days" -> LIFE_ACTIVE_DAYS;
                case "life_days_since_first" -> LIFE_DAYS_SINCE_FIRST;
                case "life_since_prev_event" -> LIFE_SINCE_PREV_EVENT;
                case "life_since_prev_buy" -> LIFE_SINCE_PREV_BUY;
                case "life_has_prev_buy" -> LIFE_HAS_PREV_BUY;
                default -> throw notImplemented("lifetime", name);
            };
        }
    }

    private IllegalArgumentException notImplemented(String kind, String name) {
        // ModelSpec already refuses these; this guards the two lists of names drifting apart.
        return new IllegalArgumentException(kind + " feature '" + name + "' in " + spec.source()
                + " is not implemented by this job");
    }

    public ModelSpec spec() {
        return spec;
    }

    /** A batch shaped for this encoder's spec. */
    public FeatureBatch newBatch(int capacity) {
        return FeatureBatch.forSpec(spec, capacity);
    }

    /**
     * Encodes {@code window} into the next free row of {@code batch} and returns that row's index.
     *
     * @throws IllegalStateException if the batch is full
     */
    public int add(List<WindowEvent> window, FeatureBatch batch) {
        int row = nextRow(batch);
        encode(window, batch, row);
        batch.size = row + 1;
        return row;
    }

    /** As {@link #add(List, FeatureBatch)}, for a window kept in state. */
    public int add(PackedWindow window, FeatureBatch batch) {
        int row = nextRow(batch);
        encode(window, batch, row);
        batch.size = row + 1;
        return row;
    }

    private static int nextRow(FeatureBatch batch) {
        if (batch.size >= batch.capacity) {
            throw new IllegalStateException("feature batch is full (" + batch.capacity + " rows)");
        }
        return batch.size;
    }

    /**
     * Encodes {@code window} into row {@code row} of {@code batch}, overwriting it entirely (padding included).
     * Item and category ids are hashed first: the features use them only as hash buckets and for equality, as
     * {@link PackedWindow} keeps them.
     *
     * @param window the user's window, oldest first, ending with the scored event; 1 to N events, time-ordered,
     *               as {@code WindowRule} produces it. Random access is assumed for speed.
     */
    public void encode(List<WindowEvent> window, FeatureBatch batch, int row) {
        int len = window.size();
        checkShape(len, batch, row);
        for (int i = 0; i < len; i++) {
            WindowEvent ev = window.get(i);
            colItem[i] = Fnv1a64.hash(nonNull(ev.itemId));
            colCategory[i] = Fnv1a64.hash(nonNull(ev.categoryId));
            colType[i] = ev.typeId;
            colTime[i] = ev.eventTime;
        }
        encodeColumns(len, batch, row);
    }

    /** As {@link #encode(List, FeatureBatch, int)}, for a window kept in state; the same features bit for bit. */
    public void encode(PackedWindow window, FeatureBatch batch, int row) {
        int len = window.size();
        checkShape(len, batch, row);
        window.copyTo(colItem, colCategory, colType, colTime);
        encodeColumns(len, batch, row);
    }

    private void checkShape(int len, FeatureBatch batch, int row) {
        if (len == 0 || len > n) {
            throw new IllegalArgumentException("window must hold 1.." + n + " events, got " + len);
        }
        if (batch.maxEvents != n || batch.sequenceFeatures != seqCode.length
                || batch.profileFeatures != profCode.length) {
            throw new IllegalArgumentException("feature batch is shaped N=" + batch.maxEvents + ", S="
                    + batch.sequenceFeatures + ", P=" + batch.profileFeatures + " but the spec needs N=" + n + ", S="
                    + seqCode.length + ", P=" + profCode.length);
        }
        if (row < 0 || row >= batch.capacity) {
            throw new IndexOutOfBoundsException("row " + row + " outside batch of capacity " + batch.capacity);
        }
        if (colItem == null) {
            colItem = new long[n];
            colCategory = new long[n];
            colType = new int[n];
            colTime = new long[n];
            scratchTypeCount = new int[vocabularySize + 1];
            scratchRecentCount = new int[vocabularySize + 1];
        }
    }

    /** The features of the window in the columns' first {@code len} entries. */
    private void encodeColumns(int len, FeatureBatch batch, int row) {
        final long[] items = colItem;
        final long[] categories = colCategory;
        final int[] types = colType;
        final long[] times = colTime;
        int[] typeCount = scratchTypeCount;
        int[] recentCount = scratchRecentCount;
        Arrays.fill(typeCount, 0);
        Arrays.fill(recentCount, 0);
        int sameItemBefore = 0;
        int sameCategoryBefore = 0;

        final int s = seqCode.length;
        final int base = row * n;
        final int first = base + n - len;
        Arrays.fill(batch.eventType, base, first, 0L);
        Arrays.fill(batch.itemBucket, base, first, 0L);
        Arrays.fill(batch.categoryBucket, base, first, 0L);
        Arrays.fill(batch.mask, base, first, 0f);
        Arrays.fill(batch.seqNumeric, base * s, first * s, 0f);

        final long te = times[len - 1];
        final long lastItem = items[len - 1];
        final long lastCategory = categories[len - 1];
        final int lastType = types[len - 1];

        long prevTime = 0;
        for (int i = 0; i < len; i++) {
            int type = types[i];
            if (type <= 0 || type > vocabularySize) {
                throw new IllegalArgumentException("window event " + i + " at " + times[i] + " has type id " + type
                        + " outside the vocabulary 1.." + vocabularySize);
            }
            typeCount[type]++;
            long t = times[i];
            if (te - t < recentMs) {
                recentCount[type]++;
            }
            boolean sameItem = items[i] == lastItem;
            boolean sameCategory = categories[i] == lastCategory;
            if (i < len - 1) {
                sameItemBefore += sameItem ? 1 : 0;
                sameCategoryBefore += sameCategory ? 1 : 0;
            }

            int p = first + i;
            batch.eventType[p] = type;
            batch.itemBucket[p] = Fnv1a64.bucket(items[i], itemBuckets);
            batch.categoryBucket[p] = Fnv1a64.bucket(categories[i], categoryBuckets);
            batch.mask[p] = 1f;

            int o = p * s;
            for (int f = 0; f < s; f++) {
                double raw = switch (seqCode[f]) {
                    case GAP -> i == 0 ? 0.0 : Math.log1p((t - prevTime) / 1000.0);
                    case AGE -> Math.log1p((te - t) / 1000.0);
                    case HOUR_SIN -> Math.sin(dayAngle(t));
                    case HOUR_COS -> Math.cos(dayAngle(t));
                    case SAME_ITEM -> sameItem ? 1.0 : 0.0;
                    default -> sameCategory ? 1.0 : 0.0;
                };
                batch.seqNumeric[o + f] = (float) ((raw - seqMean[f]) / seqStd[f]);
            }
            prevTime = t;
        }

        final int po = row * profCode.length;
        for (int f = 0; f < profCode.length; f++) {
            double raw = switch (profCode[f]) {
                case COUNT -> Math.log1p(typeCount[profParam[f]]);
                case DISTINCT_ITEMS -> Math.log1p(distinct(items, len));
                case DISTINCT_CATEGORIES -> Math.log1p(distinct(categories, len));
                case CARTS_WITHOUT_BUY -> Math.log1p(cartsWithoutBuy(items, types, len));
                case SESSION_EVENTS -> Math.log1p(sessionEvents(times, len));
                case SINCE_PREV_BUY -> {
                    int b = previousBuy(types, len);
                    long since = b < 0 ? horizonMs : Math.min(te - times[b], horizonMs);
                    yield Math.log1p(since / 1000.0);
                }
                case HAS_PREV_BUY -> previousBuy(types, len) >= 0 ? 1.0 : 0.0;
                case WINDOW_LENGTH -> (double) len / n;
                case RECENT -> Math.log1p(recentCount[profParam[f]]);
                case IS_TYPE -> lastType == profParam[f] ? 1.0 : 0.0;
                case SINCE_PREV_EVENT -> Math.log1p(
                        (len < 2 ? horizonMs : Math.min(te - times[len - 2], horizonMs)) / 1000.0);
                case SAME_ITEM_COUNT -> Math.log1p(sameItemBefore);
                case SAME_CATEGORY_COUNT -> Math.log1p(sameCategoryBefore);
                case EVENT_HOUR_SIN -> Math.sin(dayAngle(te));
                default -> Math.cos(dayAngle(te));
            };
            batch.profile[po + f] = (float) ((raw - profMean[f]) / profStd[f]);
        }
    }

    /**
     * Encodes the lifetime features of an event at {@code t} of type {@code typeId} into row {@code row} of
     * {@code batch}, from {@code record} as it is before the event is applied (and after the reset rule): the
     * contract's order, which the caller keeps by calling {@link Lifetime#resetIfGap} before and
     * {@link Lifetime#apply} after.
     *
     * @throws IllegalStateException if the spec has no streaming model
     */
    public void addLifetime(Lifetime record, long t, int typeId, FeatureBatch batch, int row) {
        int width = lifeCode.length;
        if (width == 0) {
            throw new IllegalStateException("model " + spec.modelVersion() + " (" + spec.source()
                    + ") has no streaming model, so no lifetime features");
        }
        if (batch.lifetimeFeatures != width) {
            throw new IllegalArgumentException("feature batch has " + batch.lifetimeFeatures + " lifetime features "
                    + "per row but the spec needs " + width);
        }
        if (row < 0 || row >= batch.capacity) {
            throw new IndexOutOfBoundsException("row " + row + " outside batch of capacity " + batch.capacity);
        }
        if (typeId <= 0 || typeId > vocabularySize) {
            throw new IllegalArgumentException("type id " + typeId + " outside the vocabulary 1.." + vocabularySize);
        }
        boolean empty = record.isEmpty();
        final int o = row * width;
        for (int f = 0; f < width; f++) {
            double raw = switch (lifeCode[f]) {
                case LIFE_COUNT -> Math.log1p(record.count(lifeParam[f]) + (typeId == lifeParam[f] ? 1L : 0L));
                case LIFE_ACTIVE_DAYS -> Math.log1p(record.activeDaysWith(t));
                case LIFE_DAYS_SINCE_FIRST -> empty ? 0.0 : Math.log1p((t - record.first()) / (double) DAY_MS);
                case LIFE_SINCE_PREV_EVENT -> Math.log1p(
                        (empty ? resetGapMs : Math.min(t - record.last(), resetGapMs)) / 1000.0);
                case LIFE_SINCE_PREV_BUY -> Math.log1p(
                        (record.hasBuy() ? Math.min(t - record.lastBuy(), resetGapMs) : resetGapMs) / 1000.0);
                default -> record.hasBuy() ? 1.0 : 0.0;
            };
            batch.lifetime[o + f] = (float) ((raw - lifeMean[f]) / lifeStd[f]);
        }
    }

    private double dayAngle(long t) {
        double s = Math.floorMod(t + utcOffsetMs, DAY_MS) / 1000.0;
        return 2.0 * Math.PI * s / 86400.0;
    }

    private static String nonNull(String s) {
        // The contract's empty category arrives as null from some sources; both must hash and compare as "".
        return s == null ? "" : s;
    }

    /** Distinct ids among the window's events, by hash. */
    private static int distinct(long[] hashes, int len) {
        int count = 0;
        for (int i = 0; i < len; i++) {
            boolean seen = false;
            for (int j = 0; j < i && !seen; j++) {
                seen = hashes[j] == hashes[i];
            }
            if (!seen) count++;
        }
        return count;
    }

    private int cartsWithoutBuy(long[] items, int[] types, int len) {
        int count = 0;
        for (int i = 0; i < len; i++) {
            if (types[i] != cartId) continue;
            boolean bought = false;
            for (int j = i + 1; j < len && !bought; j++) {
                bought = types[j] == buyId && items[j] == items[i];
            }
            if (!bought) count++;
        }
        return count;
    }

    private int sessionEvents(long[] times, int len) {
        int k = 1;
        for (int i = len - 1; i > 0; i--) {
            if (times[i] - times[i - 1] > sessionGapMs) break;
            k++;
        }
        return k;
    }

    /** Index of the latest buy before the scored (last) event, or -1. */
    private int previousBuy(int[] types, int len) {
        for (int i = len - 2; i >= 0; i--) {
            if (types[i] == buyId) return i;
        }
        return -1;
    }
}
