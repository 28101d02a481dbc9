package dev.seqscore.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The approximate live-user count: never negative, and restored per subtask or shared out after rescaling. */
class LiveUsersTest {
    @Test
    void countsCreatedMinusClearedAndNeverGoesNegative() {
        LiveUsers users = new LiveUsers(0);
        users.windowCreated();
        users.windowCreated();
        users.windowCleared();
        assertThat(users.getValue()).isEqualTo(1L);
        users.windowCleared();
        users.windowCleared();
        assertThat(users.getValue()).isEqualTo(0L);
    }

    @Test
    void sameParallelismRestoresEachSubtasksOwnCount() {
        List<long[]> entries = List.of(new long[] {0, 3, 10}, new long[] {1, 3, 20}, new long[] {2, 3, 30});

        assertThat(IntStream.range(0, 3).mapToObj(i -> LiveUsers.restore(entries, i, 3).count()))
                .containsExactly(10L, 20L, 30L);
    }

    @Test
    void rescalingSharesTheTotalOutSoThatItAddsUp() {
        List<long[]> entries = List.of(new long[] {0, 3, 10}, new long[] {1, 3, 20}, new long[] {2, 3, 31});

        assertThat(IntStream.range(0, 2).mapToObj(i -> LiveUsers.restore(entries, i, 2).count()))
                .containsExactly(31L, 30L);
        assertThat(IntStream.range(0, 4).mapToLong(i -> LiveUsers.restore(entries, i, 4).count()).sum())
                .isEqualTo(61);
    }

    @Test
    void noStateMeansNoUsers() {
        assertThat(LiveUsers.restore(List.of(), 0, 1).count()).isZero();
    }
}
