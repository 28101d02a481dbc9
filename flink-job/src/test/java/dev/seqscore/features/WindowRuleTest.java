package dev.seqscore.features;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class WindowRuleTest {
    private static final long MIN = 60_000L;
    private static final long HOUR = 60 * MIN;

    private static WindowEvent ev(String item, int type, long t) {
        return new WindowEvent(item, "c", type, t);
    }

    @Test
    void keepsTheLastMaxEventsEndingAtE() {
        List<WindowEvent> history = new ArrayList<>();
        for (int i = 0; i < 8; i++) history.add(ev("i" + i, 1, i * MIN));
        List<WindowEvent> w = WindowRule.windowEndingAt(history, 5, HOUR);
        assertThat(w).extracting(e -> e.itemId).containsExactly("i3", "i4", "i5", "i6", "i7");
    }

    @Test
    void horizonIsStrict() {
        // t_e - t_i < horizon: an event exactly one horizon old is out, one millisecond younger is in.
        List<WindowEvent> history = List.of(ev("old", 1, 0), ev("edge", 1, 1), ev("e", 1, HOUR));
        assertThat(WindowRule.windowEndingAt(history, 50, HOUR)).extracting(e -> e.itemId)
                .containsExactly("edge", "e");
    }

    @Test
    void horizonCutsBeforeTheCountLimit() {
        List<WindowEvent> history = List.of(ev("a", 1, 0), ev("b", 1, 10 * MIN), ev("c", 1, 2 * HOUR),
                ev("d", 1, 2 * HOUR + MIN));
        assertThat(WindowRule.windowEndingAt(history, 3, HOUR)).extracting(e -> e.itemId).containsExactly("c", "d");
    }

    @Test
    void eventAloneWhenEverythingElseIsOld() {
        List<WindowEvent> history = List.of(ev("a", 1, 0), ev("e", 2, 5 * HOUR));
        assertThat(WindowRule.windowEndingAt(history, 5, HOUR)).containsExactly(ev("e", 2, 5 * HOUR));
    }

    @Test
    void dropsExactDuplicatesButKeepsSameTimeDifferentEvents() {
        List<WindowEvent> history = List.of(ev("a", 1, 0), ev("a", 1, 0), ev("a", 2, 0), ev("b", 1, 0),
                new WindowEvent("a", "other-category", 1, 0));
        assertThat(WindowRule.windowEndingAt(history, 5, HOUR)).extracting(e -> e.itemId + "/" + e.typeId)
                .containsExactly("a/1", "a/2", "b/1");
    }

    @Test
    void appendReportsDuplicatesAndLeavesTheWindowAlone() {
        List<WindowEvent> window = new ArrayList<>();
        assertThat(WindowRule.appendAndEvict(window, ev("a", 1, 0), 5, HOUR)).isTrue();
        assertThat(WindowRule.appendAndEvict(window, ev("b", 1, MIN), 5, HOUR)).isTrue();
        assertThat(WindowRule.appendAndEvict(window, ev("c", 1, MIN), 5, HOUR)).isTrue();
        // Same time as the tail, but behind another event of that time.
        assertThat(WindowRule.appendAndEvict(window, ev("b", 1, MIN), 5, HOUR)).isFalse();
        assertThat(WindowRule.appendAndEvict(window, ev("a", 1, 0), 5, HOUR)).isFalse();
        assertThat(window).extracting(e -> e.itemId).containsExactly("a", "b", "c");
    }

    @Test
    void appendEvictsByCountAndByHorizon() {
        List<WindowEvent> window = new ArrayList<>();
        for (int i = 0; i < 7; i++) WindowRule.appendAndEvict(window, ev("i" + i, 1, i * MIN), 3, HOUR);
        assertThat(window).extracting(e -> e.itemId).containsExactly("i4", "i5", "i6");
        WindowRule.appendAndEvict(window, ev("late", 1, 6 * MIN + HOUR), 3, HOUR);
        assertThat(window).extracting(e -> e.itemId).containsExactly("late");
    }

    @Test
    void appendRejectsOutOfOrderEvents() {
        List<WindowEvent> window = new ArrayList<>(List.of(ev("a", 1, 10 * MIN)));
        assertThatThrownBy(() -> WindowRule.appendAndEvict(window, ev("b", 1, MIN), 5, HOUR))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("event-time order");
        assertThat(window).hasSize(1);
    }

    @Test
    void streamingWindowEqualsTheHistoryRule() {
        Random random = new Random(7);
        List<WindowEvent> history = new ArrayList<>();
        List<WindowEvent> window = new ArrayList<>();
        long t = 0;
        for (int i = 0; i < 300; i++) {
            t += random.nextInt(4) == 0 ? 0 : random.nextInt((int) (20 * MIN));
            WindowEvent e = ev("i" + random.nextInt(6), 1 + random.nextInt(3), t);
            history.add(e);
            boolean fresh = WindowRule.appendAndEvict(window, e, 7, HOUR);
            List<WindowEvent> expected = naiveWindow(history, 7, HOUR);
            if (fresh) {
                assertThat(window).as("after event %d", i).isEqualTo(expected);
            }
            assertThat(fresh).isEqualTo(expected.get(expected.size() - 1) == e);
        }
    }

    @Test
    void rejectsEmptyHistoryAndBadLimits() {
        assertThatThrownBy(() -> WindowRule.windowEndingAt(List.of(), 5, HOUR)).hasMessageContaining("empty");
        assertThatThrownBy(() -> WindowRule.windowEndingAt(List.of(ev("a", 1, 0)), 0, HOUR))
                .hasMessageContaining("positive");
    }

    /** The contract's words, literally: dedupe, horizon filter relative to e, last maxEvents. */
    private static List<WindowEvent> naiveWindow(List<WindowEvent> history, int maxEvents, long horizon) {
        List<WindowEvent> unique = new ArrayList<>();
        for (WindowEvent e : history) {
            if (unique.stream().noneMatch(u -> u.sameAs(e))) unique.add(e);
        }
        long te = history.get(history.size() - 1).eventTime;
        List<WindowEvent> kept = new ArrayList<>(unique.stream().filter(e -> te - e.eventTime < horizon).toList());
        return new ArrayList<>(kept.subList(Math.max(0, kept.size() - maxEvents), kept.size()));
    }
}
