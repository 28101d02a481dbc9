package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.ClickEvent;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The demo's warm start: T after the first 7 days (China time), the history before it, the stream from it. */
class WarmStartReplayTest {
    private static ClickEvent click(String user, String at) {
        return ClickEvent.newBuilder().setUserId(user).setItemId("i").setCategoryId("c").setEventType("view")
                .setEventTime(Instant.parse(at)).build();
    }

    @Test
    void historyIsTheFirstSevenDaysAndTheReplayStartsAtT() {
        List<ClickEvent> round = List.of(click("1", "2017-11-25T03:00:00Z"), click("2", "2017-11-30T10:00:00Z"),
                click("1", "2017-12-01T15:59:59Z"), click("2", "2017-12-01T16:00:00Z"),
                click("1", "2017-12-03T10:00:00Z"));
        Instant t = DemoStack.warmStartCut(round);
        assertThat(t).isEqualTo(Instant.parse("2017-12-01T16:00:00Z")); // 2017-12-02 00:00 China time
        assertThat(SampleReplay.before(round, t)).hasSize(3);

        SampleReplay replay = new SampleReplay(round, t, Instant.parse("2018-01-01T00:00:00Z"));
        List<ClickEvent> first = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            first.add(replay.next());
        }
        assertThat(first.get(0).getEventTime()).isEqualTo(Instant.parse("2017-12-01T16:00:00Z"));
        assertThat(first.get(1).getEventTime()).isEqualTo(Instant.parse("2017-12-03T10:00:00Z"));
        // The second round is whole, with fresh ids.
        assertThat(first.get(2).getUserId()).isEqualTo(Long.toString(1 + SampleReplay.ROUND_ID_STEP));
    }
}
