package dev.seqscore.tools.sim;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Iterator;
import java.util.List;
import java.util.PriorityQueue;
import java.util.SplittableRandom;

import dev.seqscore.avro.ClickEvent;

/**
 * An endless, deterministic stream of synthetic clicks shaped like the Taobao UserBehavior data, for the demo when the
 * real data is absent and for load tests. Same seed and start, same stream.
 *
 * <p>Shape: sessions arrive as a Poisson process; each belongs to a user drawn from a Zipf-like popularity law (a long
 * tail of one-off visitors, a few heavy users), has a heavy-tailed length (often 1, typically a few, sometimes tens of
 * events) and log-normal gaps between its events (seconds to minutes, always under 30 minutes), while a user's next
 * session starts at least 30 minutes after their previous one ended, so the job's gap rule sees real sessions. Items
 * and categories are Zipf-like; within a session a user tends to revisit items and stay in a category, and carts,
 * favourites and buys mostly concern items already viewed. Event types are drawn with the Taobao mix (view ~89.5%,
 * cart ~5.5%, fav ~2.9%, buy ~2.1%). Times are whole seconds, non-decreasing. No price or session id, like Taobao.
 *
 * <p>The population is finite (200,000 users by default): when every user is mid-session or resting, the next session
 * waits for the first user to become free, so a small population slows simulated traffic down rather than breaking the
 * 30-minute rule. {@link #distinctUsers()} counts the users seen in the stream so far.
 */
public final class TrafficSimulator implements Iterator<ClickEvent> {

    /** Session arrivals per second by default: about 12 events/s, the rate of the time-ordered Taobao extract. */
    public static final double DEFAULT_SESSIONS_PER_SECOND = 2.0;

    /** The default population; about 200k users are what a day of the Taobao sample's traffic touches. */
    public static final int DEFAULT_USERS = 200_000;
    private static final int ITEMS = 200_000;
    private static final int CATEGORIES = 3_000;
    private static final long SESSION_GAP_MS = 30 * 60_000L;
    /** Gaps inside a session stay clear of the job's 30-minute session rule. */
    private static final long MAX_IN_SESSION_GAP_MS = 25 * 60_000L;
    private static final int MAX_SESSION_EVENTS = 200;

    private static final String[] TYPES = {"view", "cart", "fav", "buy"};
    private static final double[] TYPE_CUMULATIVE = {0.895, 0.950, 0.979, 1.0};

    private final SplittableRandom random;
    private final long startMs;
    private final double sessionsPerMs;

    private final int userCount;
    private final long firstUserId;
    private final long userIdSpace;
    private final Zipf users;
    private final Zipf items = new Zipf(ITEMS, 0.95);
    private final int[] categoryOfItem = new int[ITEMS];
    private final int[][] itemsOfCategory;

    /** Users free to start a session, in no order; {@code freeSlot[user]} is a user's index here, or -1. */
    private final int[] free;
    private final int[] freeSlot;
    private int freeCount;
    /** Users resting after a session, earliest ready first. */
    private final PriorityQueue<Rest> resting = new PriorityQueue<>((a, b) -> Long.compare(a.readyAt, b.readyAt));
    private final BitSet everActive;
    private int distinctUsers;

    private final PriorityQueue<Session> pending =
            new PriorityQueue<>((a, b) -> a.nextAt != b.nextAt ? Long.compare(a.nextAt, b.nextAt)
                    : Long.compare(a.order, b.order));
    /** The next session's arrival, exact: rounding each gap instead would stall arrivals above one per second. */
    private double nextArrivalMs;
    private long sessionCounter;

    /** A simulator at {@link #DEFAULT_SESSIONS_PER_SECOND} whose first event is at or shortly after {@code start}. */
    public TrafficSimulator(long seed, Instant start) {
        this(seed, start, DEFAULT_SESSIONS_PER_SECOND);
    }

    /**
     * @param sessionsPerSecond mean session arrival rate in simulated time; events per second are about six times this
     */
    public TrafficSimulator(long seed, Instant start, double sessionsPerSecond) {
        this(seed, start, sessionsPerSecond, DEFAULT_USERS, 1);
    }

    /**
     * @param sessionsPerSecond mean session arrival rate in simulated time; events per second are about six times this
     * @param users the population; a user rests 30 minutes to hours between sessions, so sustaining S sessions per
     *     simulated second takes roughly 10,000 × S users, and fewer users slow the simulated traffic down
     * @param firstUserId the smallest user id; ids are {@code firstUserId + 0 .. firstUserId + max(10^6, users) - 1},
     *     so that a stream mixed with real users can keep the two apart
     */
    public TrafficSimulator(long seed, Instant start, double sessionsPerSecond, int users, long firstUserId) {
        if (!(sessionsPerSecond > 0) || Double.isInfinite(sessionsPerSecond)) {
            throw new IllegalArgumentException("sessionsPerSecond must be positive, got " + sessionsPerSecond);
        }
        if (users < 1) {
            throw new IllegalArgumentException("users must be positive, got " + users);
        }
        if (firstUserId < 0) {
            throw new IllegalArgumentException("firstUserId must not be negative, got " + firstUserId);
        }
        this.random = new SplittableRandom(seed);
        this.startMs = start.toEpochMilli();
        this.sessionsPerMs = sessionsPerSecond / 1000.0;
        this.userCount = users;
        this.firstUserId = firstUserId;
        long space = 1_000_000L;
        while (space < users) {
            space *= 10;
        }
        this.userIdSpace = space;
        this.users = new Zipf(users, 1.05);
        this.free = new int[users];
        this.freeSlot = new int[users];
        for (int u = 0; u < users; u++) {
            free[u] = u;
            freeSlot[u] = u;
        }
        this.freeCount = users;
        this.everActive = new BitSet(users);
        // The catalogue comes from its own stream so that it is the same whatever the traffic rate.
        SplittableRandom catalogue = new SplittableRandom(seed ^ 0x5DEECE66DL);
        Zipf categories = new Zipf(CATEGORIES, 1.1);
        int[] sizes = new int[CATEGORIES];
        for (int i = 0; i < ITEMS; i++) {
            categoryOfItem[i] = categories.sample(catalogue);
            sizes[categoryOfItem[i]]++;
        }
        itemsOfCategory = new int[CATEGORIES][];
        for (int c = 0; c < CATEGORIES; c++) {
            itemsOfCategory[c] = new int[sizes[c]];
        }
        int[] fill = new int[CATEGORIES];
        for (int i = 0; i < ITEMS; i++) {
            int c = categoryOfItem[i];
            itemsOfCategory[c][fill[c]++] = i; // ascending rank: popular items first within a category
        }
        this.nextArrivalMs = startMs;
    }

    /** Always true: the stream is endless; bound it with {@code limit} or by time. */
    @Override
    public boolean hasNext() {
        return true;
    }

    @Override
    public ClickEvent next() {
        // Arrivals due no later than the earliest pending event become sessions first; since every event is scheduled
        // at or after the arrival that created it, emitted times never go backwards.
        while (pending.isEmpty() || arrivalSecond() <= pending.peek().nextAt) {
            long at = arrivalSecond();
            wakeRested(at);
            if (freeCount == 0) {
                // Everyone is mid-session or resting: the arrival waits for the first user to be ready again, or,
                // when all are mid-session, until after the next click.
                nextArrivalMs = resting.isEmpty() ? pending.peek().nextAt + 1_000L : resting.peek().readyAt;
                continue;
            }
            startSession(at);
            nextArrivalMs += exponential(1.0 / sessionsPerMs);
        }
        Session s = pending.poll();
        ClickEvent event = s.emit();
        if (s.remaining > 0) {
            s.nextAt += inSessionGap();
            pending.add(s);
        } else {
            // The next visit of this user is a new session under the 30-minute rule, often hours later.
            resting.add(new Rest(s.user, s.nextAt + SESSION_GAP_MS + roundToSecond(exponential(2 * 3_600_000.0))));
        }
        return event;
    }

    /** The next arrival in whole seconds, rounded up so that no session starts before the simulation does. */
    private long arrivalSecond() {
        return (long) Math.ceil(nextArrivalMs / 1000.0) * 1000L;
    }

    /** Users with at least one click emitted so far. */
    public int distinctUsers() {
        return distinctUsers;
    }

    private void wakeRested(long at) {
        while (!resting.isEmpty() && resting.peek().readyAt <= at) {
            int user = resting.poll().user;
            freeSlot[user] = freeCount;
            free[freeCount++] = user;
        }
    }

    private void startSession(long at) {
        int user = users.sample(random);
        for (int attempt = 0; freeSlot[user] < 0 && attempt < 32; attempt++) {
            user = users.sample(random);
        }
        if (freeSlot[user] < 0) {
            // Everyone drawn is mid-session or resting: a newcomer from the tail keeps the arrival rate honest.
            user = free[random.nextInt(freeCount)];
        }
        int slot = freeSlot[user];
        int last = free[--freeCount];
        free[slot] = last;
        freeSlot[last] = slot;
        freeSlot[user] = -1;
        pending.add(new Session(user, at, sessionLength(), sessionCounter++));
    }

    private record Rest(int user, long readyAt) {}

    private int sessionLength() {
        // Log-normal, median ~3.7, mean ~6; about one session in five is a single event.
        double x = Math.exp(1.3 + random.nextGaussian());
        return (int) Math.max(1, Math.min(MAX_SESSION_EVENTS, Math.round(x)));
    }

    private long inSessionGap() {
        // Log-normal with a median of 30 s: mostly quick clicks, a tail of minutes of reading.
        double seconds = 30 * Math.exp(1.3 * random.nextGaussian());
        return Math.max(1_000L, Math.min(MAX_IN_SESSION_GAP_MS, roundToSecond(seconds * 1000)));
    }

    private double exponential(double mean) {
        return -mean * Math.log(1 - random.nextDouble());
    }

    private static long roundToSecond(double ms) {
        return Math.round(ms / 1000.0) * 1000L;
    }

    private String drawType() {
        double u = random.nextDouble();
        for (int i = 0; i < TYPES.length; i++) {
            if (u < TYPE_CUMULATIVE[i]) {
                return TYPES[i];
            }
        }
        return TYPES[0];
    }

    /** One user's visit: the items it has touched steer the rest of it. */
    private final class Session {
        final int user;
        final long order;
        long nextAt;
        int remaining;
        final List<Integer> seen = new ArrayList<>();
        int lastItem = -1;

        Session(int user, long at, int length, long order) {
            this.user = user;
            this.nextAt = at;
            this.remaining = length;
            this.order = order;
        }

        ClickEvent emit() {
            remaining--;
            if (!everActive.get(user)) {
                everActive.set(user);
                distinctUsers++;
            }
            String type = drawType();
            int item = chooseItem(type);
            seen.add(item);
            lastItem = item;
            return ClickEvent.newBuilder()
                    .setUserId(userId(user))
                    .setEventType(type)
                    .setItemId(itemId(item))
                    .setCategoryId(categoryId(categoryOfItem[item]))
                    .setEventTime(Instant.ofEpochMilli(nextAt))
                    .setPrice(null)
                    .setSessionId(null)
                    .build();
        }

        private int chooseItem(String type) {
            if (lastItem < 0) {
                return items.sample(random);
            }
            double u = random.nextDouble();
            if (!type.equals("view") && u < 0.8) {
                return seen.get(random.nextInt(seen.size()));
            }
            if (u < 0.25) {
                return seen.get(random.nextInt(seen.size()));
            }
            if (u < 0.70) {
                int[] peers = itemsOfCategory[categoryOfItem[lastItem]];
                // Favour the category's popular items: the square of a uniform leans towards index 0.
                double v = random.nextDouble();
                return peers[(int) (v * v * peers.length)];
            }
            return items.sample(random);
        }
    }

    // Ranks are scrambled into id ranges like Taobao's (users up to ~1M, items and categories up to ~5M), so that ids
    // carry no hint of popularity; multiplying by a unit modulo m (482,711 is prime to every power of ten) is a
    // bijection, so distinct ranks stay distinct.
    String userId(int rank) {
        return Long.toString(firstUserId + (rank * 482_711L) % userIdSpace);
    }

    static String itemId(int rank) {
        return Long.toString(1 + (rank * 7_654_321L) % 5_000_000L);
    }

    static String categoryId(int rank) {
        return Long.toString(1 + (rank * 2_147_483L) % 5_000_000L);
    }

    /** Draws ranks 0..n-1 with probability proportional to 1/(rank+1)^exponent, by inverting the cumulative law. */
    private static final class Zipf {
        private final double[] cumulative;

        Zipf(int n, double exponent) {
            cumulative = new double[n];
            double sum = 0;
            for (int k = 0; k < n; k++) {
                sum += Math.pow(k + 1, -exponent);
                cumulative[k] = sum;
            }
        }

        int sample(SplittableRandom random) {
            double target = random.nextDouble() * cumulative[cumulative.length - 1];
            int i = Arrays.binarySearch(cumulative, target);
            return i >= 0 ? i : Math.min(-i - 1, cumulative.length - 1);
        }
    }
}
