package dev.seqscore.e2e.drill;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class StallsTest {
    private static final long S = 1_000_000_000L;

    @Test
    void aGapCountsOnlyWhileInputWasWaitingForOutput() {
        // Output grows at 1 s, 2 s, 30 s and 31 s; 100 outputs are due from the start.
        List<Stalls.Point> points = List.of(new Stalls.Point(1 * S, 10), new Stalls.Point(2 * S, 20),
                new Stalls.Point(30 * S, 90), new Stalls.Point(31 * S, 100));
        List<Stalls.Stall> stalls = Stalls.find(points, 0, 40 * S, t -> 100);
        assertThat(stalls).extracting(Stalls.Stall::seconds).containsExactly(1.0, 1.0, 28.0, 1.0);
        assertThat(Stalls.longest(stalls).seconds()).isEqualTo(28.0);
        // Once everything due is out, the quiet end of the run is no stall.
        assertThat(stalls).noneMatch(s -> s.endNanos() == 40 * S);
    }

    @Test
    void outputThatNeverCompletesStallsUntilTheEnd() {
        List<Stalls.Point> points = List.of(new Stalls.Point(1 * S, 50));
        List<Stalls.Stall> stalls = Stalls.find(points, 0, 200 * S, t -> 60);
        assertThat(Stalls.longest(stalls)).isEqualTo(new Stalls.Stall(1 * S, 200 * S));
    }

    @Test
    void nothingIsAStallWhenNoInputWasWaiting() {
        List<Stalls.Point> points = List.of(new Stalls.Point(5 * S, 10), new Stalls.Point(50 * S, 20));
        // Inputs for the second batch of outputs arrive only at 49 s: the 45 s gap is idleness, not a stall.
        List<Stalls.Stall> stalls = Stalls.find(points, 4 * S, 60 * S, t -> t < 49 * S ? 10 : 20);
        assertThat(stalls).extracting(Stalls.Stall::seconds).containsExactly(1.0);
        assertThat(new Stalls.Stall(10 * S, 20 * S).overlaps(19 * S, 25 * S)).isTrue();
        assertThat(new Stalls.Stall(10 * S, 20 * S).overlaps(20 * S, 25 * S)).isFalse();
    }
}
