package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class DistinctCounterTest {

    @Test
    void countsLikeASetThroughManyResizes() {
        DistinctCounter counter = new DistinctCounter();
        Set<String> exact = new HashSet<>();
        SplittableRandom random = new SplittableRandom(1);
        for (int i = 0; i < 600_000; i++) {
            // Numeric ids like the demo's, with many repeats.
            String id = Long.toString(1 + random.nextInt(400_000));
            counter.add(id.getBytes(StandardCharsets.UTF_8));
            exact.add(id);
        }
        assertThat(counter.size()).isEqualTo(exact.size());
        counter.add(new byte[0]);
        counter.add(new byte[0]);
        assertThat(counter.size()).isEqualTo(exact.size() + 1);
    }
}
