package dev.seqscore.features;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The streaming arrays of a batch: shaped by the served model, copied with the row, empty for the windowed one. */
class FeatureBatchTest {
    private static final ModelSpec SPEC = SpecFixtures.smallSpecV3();

    @Test
    void theServedModelShapesTheBatch() {
        FeatureBatch step = FeatureBatch.forServed(SPEC, SPEC.served(Scoring.INCREMENTAL), 3);
        assertThat(step.isStreaming()).isTrue();
        assertThat(step.lifetimeFeatures).isEqualTo(10);
        assertThat(step.stateSize).isEqualTo(4);
        assertThat(step.lifetime).hasSize(30);
        assertThat(step.state).hasSize(12);
        assertThat(step.stateOut).hasSize(12);
        FeatureBatch windowed = FeatureBatch.forServed(SPEC, SPEC.served(Scoring.WINDOWED), 3);
        assertThat(windowed.isStreaming()).isFalse();
        assertThat(windowed.lifetime).isEmpty();
        assertThat(windowed.state).isEmpty();
        assertThat(windowed.stateOut).isEmpty();
        assertThat(FeatureBatch.forSpec(SPEC, 3).lifetimeFeatures).isZero();
        assertThatThrownBy(() -> new FeatureBatch(1, 5, 6, 27, 10, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("F=10, Z=0");
    }

    @Test
    void copyRowCarriesLifetimeAndStateAndRefusesAnotherShape() {
        FeatureBatch from = FeatureBatch.forServed(SPEC, SPEC.served(Scoring.INCREMENTAL), 2);
        for (int i = 0; i < from.lifetime.length; i++) from.lifetime[i] = i;
        for (int i = 0; i < from.state.length; i++) {
            from.state[i] = 100 + i;
            from.stateOut[i] = 200 + i;
        }
        FeatureBatch to = FeatureBatch.forServed(SPEC, SPEC.served(Scoring.INCREMENTAL), 3);
        from.copyRow(1, to, 2);
        assertThat(to.lifetimeRow(2)).isEqualTo(from.lifetimeRow(1));
        assertThat(to.stateRow(2)).containsExactly(104, 105, 106, 107);
        assertThat(to.stateOutRow(2)).containsExactly(204, 205, 206, 207);
        assertThat(to.stateRow(0)).containsOnly(0f);
        assertThatThrownBy(() -> from.copyRow(0, FeatureBatch.forSpec(SPEC, 1), 0))
                .hasMessageContaining("differ in shape");
    }

    @Test
    void statesGoInAndComeOutByRow() {
        FeatureBatch b = FeatureBatch.forServed(SPEC, SPEC.served(Scoring.INCREMENTAL), 2);
        b.setState(1, new float[] {1, 2, 3, 4});
        assertThat(b.stateRow(1)).containsExactly(1, 2, 3, 4);
        b.setState(1, null);
        assertThat(b.stateRow(1)).as("a new user's state").containsOnly(0f);
        assertThatThrownBy(() -> b.setState(0, new float[3])).hasMessageContaining("a state of 3 floats");
        System.arraycopy(new float[] {5, 6, 7, 8}, 0, b.stateOut, 4, 4);
        float[] out = new float[4];
        b.copyStateOut(1, out);
        assertThat(out).containsExactly(5, 6, 7, 8);
    }
}
