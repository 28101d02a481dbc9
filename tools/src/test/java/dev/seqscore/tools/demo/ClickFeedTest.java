package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.tools.sim.TrafficSimulator;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ClickFeedTest {
    private static final Instant T0 = Instant.parse("2017-11-26T01:00:00Z");

    private static ClickEvent click(String user, long secondsAfter) {
        return ClickEvent.newBuilder().setUserId(user).setEventType("view").setItemId("1").setCategoryId("2")
                .setEventTime(T0.plusSeconds(secondsAfter)).setPrice(null).setSessionId(null).build();
    }

    @Test
    void realAndSimulatedClicksInterleaveInTimeOrderWithDisjointUsers() {
        List<ClickEvent> real = new ArrayList<>();
        for (int s = 0; s < 600; s += 3) {
            real.add(click(Integer.toString(1 + s % 50), s)); // real ids 1..50, a click every 3 s for 10 minutes
        }
        TrafficSimulator sim = new TrafficSimulator(9L, T0, 2.0, 10_000, ClickFeed.SIMULATED_ID_BASE);
        ClickFeed feed = ClickFeed.mixed(real, sim);

        List<ClickEvent> out = new ArrayList<>();
        while (out.size() < 5_000) {
            out.add(feed.next());
        }

        for (int i = 1; i < out.size(); i++) {
            assertThat(out.get(i).getEventTime()).isAfterOrEqualTo(out.get(i - 1).getEventTime());
        }
        assertThat(out).filteredOn(e -> Long.parseLong(e.getUserId()) < ClickFeed.SIMULATED_ID_BASE)
                .containsExactlyElementsOf(real);
        assertThat(feed.realSent()).isEqualTo(real.size());
        assertThat(feed.realUsers()).isEqualTo(50);
        assertThat(feed.simulatedSent()).isEqualTo(5_000 - real.size());
        // Simulated clicks come during the real ones, not only after them.
        assertThat(out.subList(0, real.size())).anyMatch(e -> Long.parseLong(e.getUserId()) >= ClickFeed.SIMULATED_ID_BASE);
        assertThat(feed.simulatedUsers()).isEqualTo(sim.distinctUsers()).isPositive();
    }

    @Test
    void refusesRealClicksOutOfTimeOrder() {
        List<ClickEvent> real = List.of(click("1", 10), click("2", 5));
        assertThatThrownBy(() -> ClickFeed.mixed(real, new TrafficSimulator(1L, T0)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("#1");
    }
}
