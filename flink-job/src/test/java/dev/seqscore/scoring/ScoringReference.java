package dev.seqscore.scoring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.seqscore.avro.ClickEvent;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.Lifetime;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.WindowEvent;
import dev.seqscore.features.WindowRule;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.features.Scoring;
import dev.seqscore.testing.Clicks;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * One user's scores computed independently of the operator, one event at a time and one row per model call: the
 * window by {@link WindowRule#windowEndingAt} over the whole history, {@link FeatureEncoder}, {@link OnnxScorer}; for
 * the streaming model also the {@link Lifetime} record with the contract's reset rule and the state the step graph
 * returns fed back as the next event's.
 */
public final class ScoringReference implements AutoCloseable {
    /** What the reference gives for one event. */
    public record Step(long eventTime, String itemId, int windowLength, float[] scores) {}

    private final ModelSpec spec;
    private final ModelSpec.Served served;
    private final OnnxScorer scorer;
    private final FeatureEncoder encoder;

    public ScoringReference(ModelBundle bundle, Scoring scoring) {
        this.spec = bundle.spec();
        this.served = spec.served(scoring);
        this.scorer = new OnnxScorer(bundle, scoring, 1);
        this.encoder = new FeatureEncoder(spec);
    }

    public Scoring scoring() {
        return served.scoring();
    }

    /** The scores of one user's clicks, in the order the operator applies them (time, then arrival). */
    public List<Step> steps(List<Clicks.Builder> history, int maxEvents, long horizonMs) {
        return steps(history, maxEvents, horizonMs, Set.of());
    }

    /**
     * As {@link #steps(List, int, long)}, with the recurrent state set to zeros (the lifetime record kept) before the
     * events at {@code stateRestartsAt} (indices into the time-ordered history), as when another model wrote it.
     */
    public List<Step> steps(List<Clicks.Builder> history, int maxEvents, long horizonMs, Set<Integer> stateRestartsAt) {
        List<Clicks.Builder> ordered = new ArrayList<>(history);
        ordered.sort(Comparator.comparingLong(Clicks.Builder::millis)); // stable: arrival order within a time
        FeatureBatch batch = FeatureBatch.forServed(spec, served, 1);
        float[][] into = new float[served.outputs().size()][1];
        Lifetime lifetime = Lifetime.forSpec(spec);
        float[] state = new float[served.stateSize()];
        List<WindowEvent> sofar = new ArrayList<>();
        List<Step> out = new ArrayList<>();
        for (int i = 0; i < ordered.size(); i++) {
            ClickEvent c = ordered.get(i).event();
            long t = c.getEventTime().toEpochMilli();
            int type = spec.typeId(c.getEventType());
            sofar.add(new WindowEvent(c.getItemId(), c.getCategoryId(), type, t));
            List<WindowEvent> window = WindowRule.windowEndingAt(sofar, maxEvents, horizonMs);
            batch.clear();
            int row = encoder.add(window, batch);
            if (served.incremental()) {
                if (lifetime.resetIfGap(t, served.resetGapMs()) || stateRestartsAt.contains(i)) {
                    java.util.Arrays.fill(state, 0f);
                }
                encoder.addLifetime(lifetime, t, type, batch, row);
                batch.setState(row, state);
            }
            scorer.score(batch, into);
            if (served.incremental()) {
                batch.copyStateOut(row, state);
                lifetime.apply(t, type);
            }
            float[] scores = new float[into.length];
            for (int o = 0; o < into.length; o++) {
                scores[o] = into[o][0];
            }
            out.add(new Step(t, c.getItemId(), window.size(), scores));
        }
        return out;
    }

    /**
     * Asserts that {@code out} (one user's scored events, as emitted) are the reference's scores of {@code history}
     * (that user's clicks without exact duplicates), each output within {@code tolerance}.
     */
    public void assertMatches(List<Clicks.Builder> history, List<ScoredEvent> out, int maxEvents, long horizonMs,
            float tolerance) {
        assertMatches(steps(history, maxEvents, horizonMs), out, tolerance);
    }

    public static void assertMatches(List<Step> expected, List<ScoredEvent> out, float tolerance) {
        assertThat(out).as("scored events").hasSameSizeAs(expected);
        for (int i = 0; i < expected.size(); i++) {
            Step e = expected.get(i);
            ScoredEvent s = out.get(i);
            assertThat(s.eventTime).as("event %d", i).isEqualTo(e.eventTime());
            assertThat(s.itemId).as("event %d", i).isEqualTo(e.itemId());
            assertThat(s.windowLength).as("window length of event %d", i).isEqualTo(e.windowLength());
            for (int o = 0; o < e.scores().length; o++) {
                if (tolerance == 0f) {
                    assertThat(s.scores[o]).as("output %d of event %d", o, i).isEqualTo(e.scores()[o]);
                } else {
                    assertThat(s.scores[o]).as("output %d of event %d", o, i)
                            .isCloseTo(e.scores()[o], within(tolerance));
                }
            }
        }
    }

    /** The clicks without exact duplicates (same item, type and time), the first of each kept. */
    public static List<Clicks.Builder> withoutDuplicates(List<Clicks.Builder> clicks) {
        Set<String> seen = new HashSet<>();
        List<Clicks.Builder> out = new ArrayList<>();
        for (Clicks.Builder c : clicks) {
            ClickEvent e = c.event();
            if (seen.add(e.getItemId() + "|" + e.getEventType() + "|" + e.getEventTime().toEpochMilli())) {
                out.add(c);
            }
        }
        return out;
    }

    @Override
    public void close() {
        scorer.close();
    }
}
