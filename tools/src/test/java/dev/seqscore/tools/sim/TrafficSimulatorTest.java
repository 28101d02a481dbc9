package dev.seqscore.tools.sim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.seqscore.avro.ClickEvent;

/** The simulator's statistical shape, checked loosely enough to survive tuning but tightly enough to mean Taobao. */
class TrafficSimulatorTest {

    private static final Instant START = Instant.parse("2017-11-26T01:00:00Z");
    private static final int N = 50_000;
    private static List<ClickEvent> events;

    @BeforeAll
    static void generate() {
        events = take(new TrafficSimulator(7L, START), N);
    }

    private static List<ClickEvent> take(TrafficSimulator sim, int n) {
        return Stream.generate(sim::next).limit(n).toList();
    }

    private static Map<String, List<ClickEvent>> byUser() {
        Map<String, List<ClickEvent>> users = new HashMap<>();
        for (ClickEvent e : events) {
            users.computeIfAbsent(e.getUserId(), k -> new ArrayList<>()).add(e);
        }
        return users;
    }

    @Test
    void sameSeedSameStreamOtherSeedOtherStream() {
        assertThat(take(new TrafficSimulator(7L, START), 2_000)).isEqualTo(events.subList(0, 2_000));
        assertThat(take(new TrafficSimulator(8L, START), 2_000)).isNotEqualTo(events.subList(0, 2_000));
    }

    @Test
    void typeMixMatchesTaobao() {
        Map<String, Long> counts = new HashMap<>();
        events.forEach(e -> counts.merge(e.getEventType(), 1L, Long::sum));

        assertThat(counts).containsOnlyKeys("view", "cart", "fav", "buy");
        assertThat(counts.get("view") / (double) N).isCloseTo(0.91, within(0.02));
        assertThat(counts.get("cart") / (double) N).isCloseTo(0.05, within(0.01));
        assertThat(counts.get("fav") / (double) N).isCloseTo(0.03, within(0.01));
        assertThat(counts.get("buy") / (double) N).isCloseTo(0.02, within(0.007));
    }

    @Test
    void timeStartsAtTheInstantAndNeverGoesBackInWholeSeconds() {
        assertThat(events.get(0).getEventTime()).isAfterOrEqualTo(START).isBefore(START.plusSeconds(60));
        for (int i = 1; i < events.size(); i++) {
            assertThat(events.get(i).getEventTime()).isAfterOrEqualTo(events.get(i - 1).getEventTime());
        }
        assertThat(events).allMatch(e -> e.getEventTime().toEpochMilli() % 1000 == 0);
        // ~12 events per simulated second by default: 50k events span roughly an hour, not a day or a minute.
        long spanS = events.get(N - 1).getEventTime().getEpochSecond() - START.getEpochSecond();
        assertThat(spanS).isBetween(2_000L, 10_000L);
    }

    @Test
    void longTailOfUsersAndAFewHeavyOnes() {
        Map<String, List<ClickEvent>> users = byUser();
        long oneEvent = users.values().stream().filter(l -> l.size() == 1).count();
        List<Integer> sizes = new ArrayList<>(users.values().stream().map(List::size).toList());
        sizes.sort(Collections.reverseOrder());
        long topPercentEvents = sizes.subList(0, sizes.size() / 100).stream().mapToLong(Integer::longValue).sum();

        assertThat(users.size()).as("distinct users").isBetween(3_000, 20_000);
        assertThat(oneEvent / (double) users.size()).as("share of users with one event").isGreaterThan(0.12);
        assertThat(sizes.get(0)).as("heaviest user's events").isGreaterThanOrEqualTo(40);
        assertThat(topPercentEvents / (double) N).as("events of the top 1% of users").isGreaterThan(0.05);
    }

    @Test
    void sessionsAreSeparatedByThirtyMinutesAndHoldAFewToTensOfEvents() {
        long thirtyMin = 30 * 60_000L;
        List<Integer> sessionLengths = new ArrayList<>();
        for (List<ClickEvent> user : byUser().values()) {
            int length = 1;
            for (int i = 1; i < user.size(); i++) {
                long gap = user.get(i).getEventTime().toEpochMilli() - user.get(i - 1).getEventTime().toEpochMilli();
                // Nothing between the in-session cap and the session rule: a gap is clearly inside or between.
                assertThat(gap <= 25 * 60_000L || gap >= thirtyMin).as("gap %d ms", gap).isTrue();
                if (gap >= thirtyMin) {
                    sessionLengths.add(length);
                    length = 1;
                } else {
                    length++;
                }
            }
            sessionLengths.add(length);
        }
        Collections.sort(sessionLengths);
        int median = sessionLengths.get(sessionLengths.size() / 2);
        int p99 = sessionLengths.get((int) (sessionLengths.size() * 0.99));

        assertThat(median).isBetween(2, 8);
        assertThat(p99).isBetween(20, 120);
    }

    @Test
    void itemsArePopularityDistributedAndKeepTheirCategory() {
        Map<String, Long> itemCounts = new HashMap<>();
        Map<String, String> categoryOf = new HashMap<>();
        for (ClickEvent e : events) {
            itemCounts.merge(e.getItemId(), 1L, Long::sum);
            String previous = categoryOf.putIfAbsent(e.getItemId(), e.getCategoryId());
            assertThat(previous == null || previous.equals(e.getCategoryId())).isTrue();
        }
        List<Long> counts = new ArrayList<>(itemCounts.values());
        counts.sort(Collections.reverseOrder());
        long top100 = counts.subList(0, 100).stream().mapToLong(Long::longValue).sum();

        assertThat(itemCounts.size()).as("distinct items").isGreaterThan(10_000);
        assertThat(top100 / (double) N).as("events on the 100 most popular items").isBetween(0.03, 0.5);
        assertThat(counts.stream().filter(c -> c == 1).count()).as("items seen once").isGreaterThan(5_000);
    }

    @Test
    void purchasesMostlyConcernItemsTheUserAlreadyTouched() {
        long buys = 0;
        long buysOfSeen = 0;
        for (List<ClickEvent> user : byUser().values()) {
            for (int i = 0; i < user.size(); i++) {
                if (user.get(i).getEventType().equals("buy")) {
                    buys++;
                    String item = user.get(i).getItemId();
                    if (user.subList(0, i).stream().anyMatch(e -> e.getItemId().equals(item))) {
                        buysOfSeen++;
                    }
                }
            }
        }
        assertThat(buysOfSeen / (double) buys).isGreaterThan(0.5);
    }

    @Test
    void aSmallPopulationSlowsTrafficDownButKeepsTheSessionRule() {
        // 500 users cannot sustain 50 sessions per simulated second (that takes ~500,000): arrivals must wait for
        // resting users instead of breaking the 30-minute rule or spinning forever.
        TrafficSimulator sim = new TrafficSimulator(3L, START, 50.0, 500, 2_000_001L);
        List<ClickEvent> small = take(sim, 20_000);

        Map<String, List<ClickEvent>> users = new HashMap<>();
        small.forEach(e -> users.computeIfAbsent(e.getUserId(), k -> new ArrayList<>()).add(e));
        assertThat(users).hasSizeLessThanOrEqualTo(500);
        assertThat(sim.distinctUsers()).isEqualTo(users.size());
        assertThat(users.keySet()).allMatch(id -> Long.parseLong(id) >= 2_000_001L && Long.parseLong(id) < 3_000_001L);
        for (List<ClickEvent> user : users.values()) {
            for (int i = 1; i < user.size(); i++) {
                long gap = user.get(i).getEventTime().toEpochMilli() - user.get(i - 1).getEventTime().toEpochMilli();
                assertThat(gap <= 25 * 60_000L || gap >= 30 * 60_000L).as("gap %d ms", gap).isTrue();
            }
        }
        for (int i = 1; i < small.size(); i++) {
            assertThat(small.get(i).getEventTime()).isAfterOrEqualTo(small.get(i - 1).getEventTime());
        }
        // 20,000 clicks at ~6 per session from 500 users resting ~2.5 h between sessions: about 17 simulated hours,
        // not the ~70 s that 50 sessions per second would take.
        long spanS = small.get(small.size() - 1).getEventTime().getEpochSecond() - START.getEpochSecond();
        assertThat(spanS).isGreaterThan(6 * 3600L);
    }

    @Test
    void aLargePopulationIsDrawnFromWithDistinctIdsAboveTheOffset() {
        // 2M users need a 10^7 id space; distinct ranks must stay distinct ids.
        TrafficSimulator sim = new TrafficSimulator(5L, START, 200.0, 2_000_000, 10_000_001L);
        List<ClickEvent> many = take(sim, 100_000);
        long distinct = many.stream().map(ClickEvent::getUserId).distinct().count();

        assertThat(distinct).isEqualTo(sim.distinctUsers());
        // Nobody comes back within the ~80 simulated seconds this covers, so every session is a new user.
        assertThat(distinct).isGreaterThan(10_000);
        assertThat(many).allMatch(e -> Long.parseLong(e.getUserId()) >= 10_000_001L
                && Long.parseLong(e.getUserId()) < 20_000_001L);
    }
}
