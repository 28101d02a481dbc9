package dev.seqscore.tools.bench;

import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.GoldenHistories;
import dev.seqscore.features.Lifetime;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.model.OnnxScorer;
import dev.seqscore.features.Scoring;
import dev.seqscore.reasons.Explainer;
import dev.seqscore.reasons.Reason;
import dev.seqscore.features.WindowEvent;
import dev.seqscore.features.WindowRule;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * JMH benchmark of the hot path per scored event: {@link FeatureEncoder} and {@link OnnxScorer} (one intra-op
 * thread) on the real bundle, for each of its models, fed the real windows of its {@code golden.jsonl}. Times are per batch; {@link Bench}
 * divides by the batch size to report the cost per event, except for {@link #explain()}, which is per alerting event.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class ScoringBenchmark {
    @Param({"1", "64"})
    public int batch;

    @Param({"models/default"})
    public String bundle;

    @Param({"1"})
    public int threads;

    /** Which of the bundle's models: the streaming step graph or the windowed graph. */
    @Param({"windowed", "incremental"})
    public String scoring;

    private List<List<WindowEvent>> windows;
    private List<Lifetime> lifetimes;
    private FeatureEncoder encoder;
    private FeatureBatch features;
    private OnnxScorer scorer;
    private float[][] scores;
    private int next;
    private Explainer explainer;
    private final int[] explainRow = {0};
    private final String[] explainType = {"view"};

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        ModelBundle b = ModelBundle.load(Path.of(bundle));
        ModelSpec spec = b.spec();
        Scoring mode = Scoring.parse(scoring);
        ModelSpec.Served served = spec.served(mode);
        windows = goldenWindows(Path.of(bundle).resolve("golden.jsonl"), spec);
        lifetimes = new ArrayList<>();
        for (List<WindowEvent> w : windows) {
            // The lifetime record of a user whose history is this window: what a rebuilt state would hold.
            Lifetime l = Lifetime.forSpec(spec);
            for (WindowEvent e : w.subList(0, w.size() - 1)) {
                l.apply(e.eventTime, e.typeId);
            }
            lifetimes.add(l);
        }
        encoder = new FeatureEncoder(spec);
        features = FeatureBatch.forServed(spec, served, batch);
        scorer = new OnnxScorer(b, mode, threads);
        scores = new float[served.outputs().size()][batch];
        fill();
        scorer.score(features, scores);
        explainer = served.reasonGroups().isEmpty() ? null : new Explainer(spec, served, served.reasonTop(), 16);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        scorer.close();
    }

    /** Encodes {@code batch} windows, cycling through the golden ones. */
    @Benchmark
    public FeatureBatch encode() {
        fill();
        return features;
    }

    /** Scores one batch of {@code batch} already-encoded windows. */
    @Benchmark
    public float[][] score() {
        scorer.score(features, scores);
        return scores;
    }

    /**
     * Reasons for one alerting event (one variant row per reason group, one call), the extra cost an alert pays;
     * {@link Bench} reports it per explained event, not divided by the batch.
     */
    @Benchmark
    public Reason[][] explain() {
        if (explainer == null) {
            throw new IllegalStateException(bundle + " defines no reason groups");
        }
        return explainer.explain(features, explainRow, 1, scores, explainType, scorer);
    }

    private void fill() {
        features.clear();
        for (int i = 0; i < batch; i++) {
            List<WindowEvent> w = windows.get(next);
            int row = encoder.add(w, features);
            if (features.isStreaming()) {
                WindowEvent e = w.get(w.size() - 1);
                encoder.addLifetime(lifetimes.get(next), e.eventTime, e.typeId, features, row);
                // Any state costs the graph the same; a stored one is what the job passes.
                java.util.Arrays.fill(features.state, row * features.stateSize, (row + 1) * features.stateSize, 0.1f);
            }
            next = (next + 1) % windows.size();
        }
    }

    static List<List<WindowEvent>> goldenWindows(Path golden, ModelSpec spec) throws IOException {
        List<List<WindowEvent>> out = new ArrayList<>();
        for (List<WindowEvent> history : GoldenHistories.read(golden, spec)) {
            out.add(WindowRule.windowEndingAt(history, spec.maxEvents(), spec.horizonMs()));
        }
        if (out.isEmpty()) throw new IllegalArgumentException(golden + " has no windows");
        return out;
    }
}
