package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.ClickEvent;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SampleReplayTest {
    private static final Instant DAY_1 = Instant.parse("2017-11-25T03:00:00Z");
    private static final Instant DAY_3 = DAY_1.plus(Duration.ofDays(2)).plusSeconds(600);

    private static ClickEvent click(String user, Instant at) {
        return ClickEvent.newBuilder().setUserId(user).setEventType("view").setItemId("1").setCategoryId("2")
                .setEventTime(at).setPrice(null).setSessionId(null).build();
    }

    /** Grouped by user, like the Taobao sample: not in time order. */
    private static List<ClickEvent> sample() {
        return List.of(click("1", DAY_3), click("1", DAY_1), click("2", DAY_1.plusSeconds(60)),
                click("2", DAY_3.minusSeconds(5)));
    }

    @Test
    void roundsComeInTimeOrderOnWholeDaysAfterAHorizonOfSilenceWithFreshUsers() {
        SampleReplay replay = new SampleReplay(sample(), Instant.parse("2026-01-01T00:00:00Z"));
        List<ClickEvent> out = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            out.add(replay.next());
        }

        for (int i = 1; i < out.size(); i++) {
            assertThat(out.get(i).getEventTime()).isAfter(out.get(i - 1).getEventTime());
        }
        assertThat(out.subList(0, 4)).extracting(ClickEvent::getUserId).containsExactly("1", "2", "2", "1");
        assertThat(out.get(4).getUserId()).isEqualTo(Long.toString(1 + SampleReplay.ROUND_ID_STEP));
        assertThat(out.get(8).getUserId()).isEqualTo(Long.toString(1 + 2 * SampleReplay.ROUND_ID_STEP));
        Duration shift = Duration.between(out.get(0).getEventTime(), out.get(4).getEventTime());
        assertThat(shift.toSeconds() % 86_400).as("whole days keep the hour of day").isZero();
        assertThat(out.get(4).getEventTime().atOffset(ZoneOffset.UTC).getHour())
                .isEqualTo(out.get(0).getEventTime().atOffset(ZoneOffset.UTC).getHour());
        assertThat(Duration.between(out.get(3).getEventTime(), out.get(4).getEventTime()))
                .as("the last round's windows have expired").isGreaterThan(Duration.ofDays(1));
        Set<String> users = new HashSet<>();
        out.forEach(e -> users.add(e.getUserId()));
        assertThat(users).hasSize(6);
        assertThat(replay.roundNumber()).isEqualTo(2);
    }

    @Test
    void endsBeforeAnyClickWouldReachTheLimit() {
        // Round 1 starts 4 days after round 0; a limit inside it cuts the replay there.
        SampleReplay replay = new SampleReplay(sample(), DAY_1.plus(Duration.ofDays(4)).plusSeconds(30));
        List<ClickEvent> out = new ArrayList<>();
        while (replay.hasNext()) {
            out.add(replay.next());
        }

        assertThat(out).hasSize(5);
        assertThat(out.get(4).getEventTime()).isBefore(DAY_1.plus(Duration.ofDays(4)).plusSeconds(30));
        ClickFeed feed = ClickFeed.replayed(new SampleReplay(sample(), DAY_1.plusSeconds(1)));
        assertThat(feed.hasNext()).isTrue();
        feed.next();
        assertThat(feed.hasNext()).as("the feed ends with the replay").isFalse();
    }
}
