package dev.seqscore.features;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The packed window codec: what is appended reads back after a round trip through its bytes, eviction by count and
 * horizon and duplicate dropping follow {@link WindowRule} (checked against {@link WindowRule#windowEndingAt} on random
 * histories), the ring wraps around and grows, times move their base or widen the slots when they must, and bytes
 * this class did not write are refused.
 */
class PackedWindowTest {
    private static final long MIN = 60_000L;
    private static final long HOUR = 60 * MIN;
    private static final long DAY = 24 * HOUR;
    private static final int TYPES = 5;
    private static final long T0 = 1_511_658_000_000L;

    /** The events of {@code w}, oldest first, as comparable strings of hashes, type and time. */
    private static List<String> events(PackedWindow w) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < w.size(); i++) {
            out.add(w.itemHash(i) + "/" + w.categoryHash(i) + "/" + w.typeId(i) + "@" + w.eventTime(i));
        }
        return out;
    }

    private static List<String> events(List<WindowEvent> list) {
        List<String> out = new ArrayList<>();
        for (WindowEvent e : list) {
            out.add(Fnv1a64.hash(e.itemId) + "/" + Fnv1a64.hash(e.categoryId == null ? "" : e.categoryId) + "/"
                    + e.typeId + "@" + e.eventTime);
        }
        return out;
    }

    /** A fresh view of {@code w}'s bytes, as the next event's state read would see them. */
    private static PackedWindow reread(PackedWindow w, int maxEvents, long horizonMs) {
        byte[] copy = w.bytes() == null ? null : w.bytes().clone();
        return new PackedWindow(maxEvents, horizonMs, TYPES).wrap(copy);
    }

    @Test
    void anEmptyWindowIsNullBytes() {
        PackedWindow w = new PackedWindow(50, DAY, TYPES).wrap(null);
        assertThat(w.isEmpty()).isTrue();
        assertThat(w.bytes()).isNull();
        assertThatThrownBy(w::newestTime).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void roundTripKeepsHashesTypesAndTimes() {
        PackedWindow w = new PackedWindow(50, DAY, TYPES).wrap(null);
        assertThat(w.append("i1", "c1", 1, T0)).isTrue();
        assertThat(w.append("i2", null, 5, T0 + 1)).isTrue();
        assertThat(w.append("\u00e9\uD83D\uDE00", "c1", 3, T0 + DAY - 1)).isTrue();

        PackedWindow back = reread(w, 50, DAY);
        assertThat(back.size()).isEqualTo(3);
        assertThat(back.itemHash(0)).isEqualTo(Fnv1a64.hash("i1"));
        assertThat(back.categoryHash(1)).as("null category hashes as \"\"").isEqualTo(Fnv1a64.hash(""));
        assertThat(back.itemHash(2)).isEqualTo(Fnv1a64.hash("\u00e9\uD83D\uDE00"));
        assertThat(back.typeId(1)).isEqualTo(5);
        assertThat(back.eventTime(2)).isEqualTo(T0 + DAY - 1);
        assertThat(back.newestTime()).isEqualTo(T0 + DAY - 1);
        assertThat(events(back)).isEqualTo(events(w));
        assertThat(back.isCompact()).isTrue();
    }

    @Test
    void aFullWindowOfFiftyIsAHeaderAndFiftyTwentyByteSlots() {
        PackedWindow w = new PackedWindow(50, DAY, TYPES).wrap(null);
        for (int i = 0; i < 80; i++) {
            w.append("i" + i, "c" + i % 7, 1 + i % TYPES, T0 + i * MIN);
        }
        assertThat(w.size()).isEqualTo(50);
        assertThat(w.bytes()).hasSize(PackedWindow.HEADER_BYTES + 50 * PackedWindow.COMPACT_SLOT_BYTES)
                .hasSize(1014);
    }

    @Test
    void evictsByCountAndByHorizonLikeTheRule() {
        PackedWindow w = new PackedWindow(3, HOUR, TYPES).wrap(null);
        for (int i = 0; i < 7; i++) {
            w.append("i" + i, "c", 1, i * MIN);
        }
        assertThat(events(w)).isEqualTo(events(List.of(ev("i4", 1, 4 * MIN), ev("i5", 1, 5 * MIN),
                ev("i6", 1, 6 * MIN))));
        // Exactly one horizon after i6: i6 is out (t_e - t_i < H keeps), and so is everything before it.
        w.append("late", "c", 1, 6 * MIN + HOUR);
        assertThat(events(w)).isEqualTo(events(List.of(ev("late", 1, 6 * MIN + HOUR))));
    }

    @Test
    void wrapsAroundAndReadsOldestFirstAfterEveryAppend() {
        int n = 5;
        PackedWindow w = new PackedWindow(n, DAY, TYPES).wrap(null);
        List<WindowEvent> history = new ArrayList<>();
        for (int i = 0; i < 23; i++) {
            WindowEvent e = ev("i" + i, 1 + i % TYPES, T0 + i * MIN);
            history.add(e);
            // Every append on a fresh view of the stored bytes, as in the operator.
            w = reread(w, n, DAY);
            assertThat(w.append(e.itemId, e.categoryId, e.typeId, e.eventTime)).isTrue();
            assertThat(events(w)).as("after event %d", i)
                    .isEqualTo(events(WindowRule.windowEndingAt(history, n, DAY)));
        }
        assertThat(w.bytes()).as("capacity stays N once full").hasSize(
                PackedWindow.HEADER_BYTES + n * PackedWindow.COMPACT_SLOT_BYTES);
    }

    @Test
    void dropsExactDuplicatesButKeepsSameTimeDifferentEvents() {
        PackedWindow w = new PackedWindow(5, HOUR, TYPES).wrap(null);
        assertThat(w.append("a", "c", 1, 0)).isTrue();
        assertThat(w.append("b", "c", 1, MIN)).isTrue();
        assertThat(w.append("c", "c", 1, MIN)).isTrue();
        byte[] before = w.bytes().clone();
        // Same time as the tail but behind another event of that time; the category does not matter.
        assertThat(w.append("b", "other", 1, MIN)).isFalse();
        assertThat(w.bytes()).as("a duplicate leaves the bytes alone").isEqualTo(before);
        assertThat(w.append("b", "c", 2, MIN)).as("other type").isTrue();
        assertThat(w.size()).isEqualTo(4);
    }

    @Test
    void findsDuplicatesAcrossTheWrapPoint() {
        PackedWindow w = new PackedWindow(4, DAY, TYPES).wrap(null);
        for (int i = 0; i < 6; i++) {
            w.append("i" + i, "c", 1, T0);
        }
        // Slots now wrap: the window holds i2..i5, oldest in slot 2.
        for (int i = 2; i < 6; i++) {
            assertThat(w.append("i" + i, "c", 1, T0)).as("i%d", i).isFalse();
        }
        assertThat(w.append("i1", "c", 1, T0)).as("evicted, so no longer a duplicate").isTrue();
    }

    @Test
    void rejectsOutOfOrderEventsAndUnknownTypes() {
        PackedWindow w = new PackedWindow(5, HOUR, TYPES).wrap(null);
        w.append("a", "c", 1, 10 * MIN);
        assertThatThrownBy(() -> w.append("b", "c", 1, 9 * MIN)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("event-time order");
        assertThatThrownBy(() -> w.append("b", "c", 0, 11 * MIN)).hasMessageContaining("type id 0");
        assertThatThrownBy(() -> w.append("b", "c", TYPES + 1, 11 * MIN)).hasMessageContaining("type id 6");
        assertThat(w.size()).isEqualTo(1);
    }

    @Test
    void movesItsBaseWhenOffsetsOutgrowTheirBits() {
        // 5 types take 3 bits: offsets up to 2^29 ms (6.2 days). A user active for weeks, a day's horizon.
        PackedWindow w = new PackedWindow(50, DAY, TYPES).wrap(null);
        List<WindowEvent> history = new ArrayList<>();
        for (int i = 0; i < 400; i++) {
            WindowEvent e = ev("i" + i % 13, 1 + i % TYPES, T0 + i * 2 * HOUR + i % 3);
            history.add(e);
            w = reread(w, 50, DAY);
            w.append(e.itemId, e.categoryId, e.typeId, e.eventTime);
            assertThat(events(w)).as("after event %d", i).isEqualTo(events(WindowRule.windowEndingAt(history, 50, DAY)));
        }
        assertThat(w.isCompact()).isTrue();
    }

    @Test
    void usesWideSlotsForAHorizonBeyondTheCompactRange() {
        long weeks = 30 * DAY;
        PackedWindow w = new PackedWindow(10, weeks, TYPES).wrap(null);
        w.append("a", "c", 1, T0);
        w.append("b", "c", 2, T0 + 20 * DAY);
        assertThat(w.isCompact()).isFalse();
        assertThat(reread(w, 10, weeks).eventTime(1)).isEqualTo(T0 + 20 * DAY);
    }

    @Test
    void aCompactWindowRestoredWithALongerHorizonWidensWhenItMust() {
        PackedWindow w = new PackedWindow(10, DAY, TYPES).wrap(null);
        w.append("a", "c", 1, T0);
        long weeks = 30 * DAY;
        PackedWindow longer = reread(w, 10, weeks);
        assertThat(longer.isCompact()).isTrue();
        longer.append("b", "c", 2, T0 + 20 * DAY);
        assertThat(longer.isCompact()).isFalse();
        assertThat(events(longer)).isEqualTo(events(List.of(ev("a", 1, T0), ev("b", 2, T0 + 20 * DAY))));
    }

    @Test
    void aWindowRestoredWithASmallerNShrinksOnTheNextEvent() {
        PackedWindow w = new PackedWindow(8, DAY, TYPES).wrap(null);
        List<WindowEvent> history = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            history.add(ev("i" + i, 1, T0 + i * MIN));
        }
        w.appendAll(history);
        PackedWindow smaller = reread(w, 3, DAY);
        WindowEvent next = ev("next", 2, T0 + HOUR);
        history.add(next);
        smaller.append(next.itemId, next.categoryId, next.typeId, next.eventTime);
        assertThat(events(smaller)).isEqualTo(events(WindowRule.windowEndingAt(history, 3, DAY)));
    }

    @Test
    void equalsTheRuleOnRandomHistories() {
        Random random = new Random(11);
        for (int run = 0; run < 300; run++) {
            int n = 1 + random.nextInt(12);
            long horizon = (1 + random.nextInt(6)) * HOUR;
            PackedWindow w = new PackedWindow(n, horizon, TYPES).wrap(null);
            List<WindowEvent> reference = new ArrayList<>();
            long t = T0;
            for (int i = 0; i < 60; i++) {
                t += random.nextInt(3) == 0 ? 0 : random.nextInt((int) (2 * HOUR));
                WindowEvent e = new WindowEvent("i" + random.nextInt(4), "c" + random.nextInt(3),
                        1 + random.nextInt(TYPES), t);
                w = reread(w, n, horizon);
                assertThat(w.append(e.itemId, e.categoryId, e.typeId, e.eventTime)).as("run %d event %d", run, i)
                        .isEqualTo(WindowRule.appendAndEvict(reference, e, n, horizon));
                assertThat(events(w)).as("run %d event %d", run, i).isEqualTo(events(reference));
            }
        }
    }

    @Test
    void refusesBytesItDidNotWrite() {
        PackedWindow w = new PackedWindow(5, HOUR, TYPES);
        assertThatThrownBy(() -> w.wrap(new byte[3])).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("header");
        byte[] unknown = new byte[PackedWindow.HEADER_BYTES];
        unknown[0] = 9;
        assertThatThrownBy(() -> w.wrap(unknown)).hasMessageContaining("format byte is 9");
        PackedWindow ok = new PackedWindow(5, HOUR, TYPES).wrap(null);
        ok.append("a", "c", 1, 0);
        byte[] cut = Arrays.copyOf(ok.bytes(), ok.bytes().length - 1);
        assertThatThrownBy(() -> w.wrap(cut)).hasMessageContaining("whole slots");
        byte[] badCount = ok.bytes().clone();
        badCount[4] = 100;
        assertThatThrownBy(() -> w.wrap(badCount)).hasMessageContaining("count 100");
    }

    private static WindowEvent ev(String item, int type, long t) {
        return new WindowEvent(item, "c", type, t);
    }

    @Test
    void aWindowAfterTheCallersBytesKeepsThemThroughGrowthWideningAndClearing() {
        byte[] prefix = {7, 6, 5, 4, 3, 2, 1};
        Random rnd = new Random(11);
        PackedWindow alone = new PackedWindow(50, 10 * DAY, TYPES).wrap(null);
        PackedWindow after = new PackedWindow(50, 10 * DAY, TYPES).wrap(prefix.clone(), prefix.length);
        assertThat(after.isEmpty()).isTrue();
        long t = T0;
        for (int i = 0; i < 120; i++) {
            // Gaps that outgrow the compact offsets now and then, so the slots widen too.
            t += i % 40 == 39 ? 8 * DAY : rnd.nextInt(3) * MIN;
            String item = "i" + rnd.nextInt(30);
            int type = 1 + rnd.nextInt(TYPES);
            assertThat(after.append(item, "c", type, t)).isEqualTo(alone.append(item, "c", type, t));
            byte[] stored = after.bytes();
            assertThat(Arrays.copyOf(stored, prefix.length)).as("the caller's bytes").isEqualTo(prefix);
            assertThat(Arrays.copyOfRange(stored, prefix.length, stored.length)).isEqualTo(alone.bytes());
            after = new PackedWindow(50, 10 * DAY, TYPES).wrap(stored.clone(), prefix.length);
            assertThat(events(after)).isEqualTo(events(alone));
        }
        assertThat(after.isCompact()).isEqualTo(alone.isCompact());
        assertThat(after.cleared()).isEqualTo(prefix);
        assertThat(after.isEmpty()).isTrue();
        assertThat(new PackedWindow(50, DAY, TYPES).wrap(null).cleared()).isNull();
    }
}
