package dev.seqscore.model;

import dev.seqscore.features.Scoring;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.Lifetime;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.PackedWindow;
import dev.seqscore.features.WindowEvent;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The proof that Java serves the streaming model as Python trained it: every user of the bundle's
 * {@code golden-step.jsonl} is replayed event by event exactly as the job does it (packed window append, the lifetime
 * record through its stored bytes and the reset rule, lifetime and window features, the step graph with the state fed
 * back), and must reproduce the recorded lifetime features (within 1e-5) and scores (within 1e-4).
 *
 * <p>The bundle is {@code -Dseqscore.bundle=DIR} (or {@code $SEQSCORE_BUNDLE}) when given, else the committed
 * {@code models/default}; the test is skipped while that one has no streaming model (format 2).
 */
class GoldenStepParityTest {
    private static final double LIFETIME_TOLERANCE = 1e-5;
    private static final double SCORE_TOLERANCE = 1e-4;

    private static Path dir;
    private static ModelBundle bundle;
    private static ModelSpec spec;
    private static ModelSpec.Served served;
    private static List<User> users;
    /** Why the tests are skipped; null when they run. */
    private static String skipped;

    private record User(int line, String id, List<WindowEvent> events, float[][] lifetime, float[][] scores,
                        float[] stateFinal) {}

    /** What a replay of one user produced, per event. */
    private record Replay(float[][] lifetime, float[][] scores, float[] stateFinal) {}

    @BeforeAll
    static void load() throws IOException {
        String given = System.getProperty("seqscore.bundle", System.getenv("SEQSCORE_BUNDLE"));
        dir = given == null || given.isBlank() ? TestBundles.repoRoot().resolve("models/default") : Path.of(given);
        bundle = ModelBundle.load(dir);
        spec = bundle.spec();
        if ((given == null || given.isBlank()) && spec.streaming().isEmpty()) {
            skipped = "the committed bundle " + dir + " is format " + spec.formatVersion() + ", without a streaming "
                    + "model; run with -Dseqscore.bundle=<a format 3 bundle> to prove step parity against one";
            return;
        }
        ModelSpec.Streaming st = spec.streaming().orElseThrow(() -> new AssertionError(dir
                + " has no streaming model (format " + spec.formatVersion() + ")"));
        served = spec.served(Scoring.INCREMENTAL);
        Path golden = dir.resolve(st.goldenFile() == null ? "golden-step.jsonl" : st.goldenFile());
        assertThat(golden).as("the bundle's golden-step file").isRegularFile();
        ObjectMapper mapper = new ObjectMapper();
        users = new ArrayList<>();
        int line = 0;
        for (String text : Files.readAllLines(golden, StandardCharsets.UTF_8)) {
            line++;
            if (text.isBlank()) continue;
            JsonNode g = mapper.readTree(text);
            List<WindowEvent> events = new ArrayList<>();
            for (JsonNode e : g.get("events")) {
                JsonNode category = e.get("category_id");
                WindowEvent w = new WindowEvent(e.get("item_id").asText(),
                        category == null || category.isNull() ? "" : category.asText(),
                        spec.typeId(e.get("event_type").asText()), e.get("event_time").asLong());
                assertThat(w.typeId).as("golden-step line %d: event type of %s", line, e).isPositive();
                events.add(w);
            }
            users.add(new User(line, g.get("user_id").asText(), events, floats(g.get("lifetime")),
                    floats(g.get("scores")), floats(List.of(g.get("state_final")))[0]));
        }
    }

    @BeforeEach
    void skipWithoutAStreamingModel() {
        Assumptions.assumeTrue(skipped == null, () -> "skipped: " + skipped);
    }

    private static float[][] floats(Iterable<JsonNode> rows) {
        List<float[]> out = new ArrayList<>();
        for (JsonNode row : rows) {
            float[] r = new float[row.size()];
            for (int i = 0; i < r.length; i++) r[i] = (float) row.get(i).asDouble();
            out.add(r);
        }
        return out.toArray(new float[0][]);
    }

    private static float[][] floats(JsonNode rows) {
        List<JsonNode> list = new ArrayList<>();
        rows.forEach(list::add);
        return floats(list);
    }

    @Test
    void goldenCoversTheCasesTheContractPromises() {
        int n = spec.maxEvents();
        long longUsers = users.stream().filter(u -> u.events().size() > n).count();
        long withHorizonGaps = users.stream().filter(u -> {
            for (int i = 1; i < u.events().size(); i++) {
                if (u.events().get(i).eventTime - u.events().get(i - 1).eventTime >= spec.horizonMs()) return true;
            }
            return false;
        }).count();
        assertThat(users).hasSizeGreaterThanOrEqualTo(30);
        assertThat(longUsers).as("users with more than N events").isGreaterThan(1);
        assertThat(withHorizonGaps).as("users with gaps beyond the horizon").isGreaterThan(1);
        for (User u : users) {
            assertThat(u.lifetime().length).as("line %d: lifetime rows", u.line()).isEqualTo(u.events().size());
            assertThat(u.scores().length).as("line %d: score rows", u.line()).isEqualTo(u.events().size());
            assertThat(u.stateFinal()).as("line %d: state_final", u.line()).hasSize(served.stateSize());
        }
        bundle.validate();
    }

    @Test
    void eachUserReplayedEventByEventMatchesPython() {
        double worstLifetime = 0, worstScore = 0, worstState = 0;
        int events = 0;
        try (OnnxScorer scorer = new OnnxScorer(bundle, Scoring.INCREMENTAL, 1)) {
            for (User u : users) {
                Replay r = replay(u, scorer);
                for (int k = 0; k < u.events().size(); k++) {
                    worstLifetime = Math.max(worstLifetime, compare(u, k, "lifetime", served.lifetimeFeatures()
                            .stream().map(ModelSpec.FeatureSpec::name).toList(), u.lifetime()[k], r.lifetime()[k],
                            LIFETIME_TOLERANCE));
                    worstScore = Math.max(worstScore, compare(u, k, "scores", served.outputNames(), u.scores()[k],
                            r.scores()[k], SCORE_TOLERANCE));
                    events++;
                }
                for (int z = 0; z < u.stateFinal().length; z++) {
                    worstState = Math.max(worstState, Math.abs(u.stateFinal()[z] - r.stateFinal()[z]));
                }
            }
        }
        assertThat(worstState).as("max |python - java| of state_final").isLessThanOrEqualTo(SCORE_TOLERANCE);
        System.out.printf("golden-step %s: %d users, %d events; max |python - java| lifetime %.3g, scores %.3g, "
                + "state_final %.3g%n", dir, users.size(), events, worstLifetime, worstScore, worstState);
    }

    /** One user's events one by one, as the job applies them, at batch size 1. */
    private static Replay replay(User u, OnnxScorer scorer) {
        FeatureEncoder encoder = new FeatureEncoder(spec);
        FeatureBatch batch = FeatureBatch.forServed(spec, served, 1);
        Step step = new Step(u);
        int count = u.events().size();
        float[][] lifetime = new float[count][];
        float[][] scores = new float[count][];
        float[][] into = new float[served.outputs().size()][1];
        for (int k = 0; k < count; k++) {
            batch.clear();
            step.encode(k, encoder, batch);
            scorer.score(batch, into);
            step.advance(batch, 0);
            lifetime[k] = batch.lifetimeRow(0);
            scores[k] = column(into, 0);
        }
        return new Replay(lifetime, scores, step.state);
    }

    private static float[] column(float[][] into, int row) {
        float[] out = new float[into.length];
        for (int o = 0; o < into.length; o++) out[o] = into[o][row];
        return out;
    }

    /** The per-user state the job keeps between events: the window's and the record's bytes, and the state. */
    private static final class Step {
        final User user;
        final PackedWindow view = PackedWindow.forSpec(spec, spec.maxEvents(), spec.horizonMs());
        final Lifetime record = Lifetime.forSpec(spec);
        byte[] window;
        final byte[] lifetimeBytes = new byte[Lifetime.bytes(spec.vocabulary().size())];
        final float[] state = new float[served.stateSize()];
        WindowEvent event;

        Step(User user) {
            this.user = user;
        }

        /** Appends event {@code k} and encodes it into the batch's next row, state included. */
        void encode(int k, FeatureEncoder encoder, FeatureBatch batch) {
            event = user.events().get(k);
            view.wrap(window == null ? null : window.clone());
            if (!view.append(event.itemId, event.categoryId, event.typeId, event.eventTime)) {
                fail("golden-step line %d event %d duplicates an earlier one: the contract drops exact duplicates "
                        + "before anything, so golden-step should not list it", user.line(), k);
            }
            window = view.bytes();
            record.readFrom(lifetimeBytes, 0);
            if (record.resetIfGap(event.eventTime, served.resetGapMs())) {
                Arrays.fill(state, 0f);
            }
            int row = encoder.add(view, batch);
            encoder.addLifetime(record, event.eventTime, event.typeId, batch, row);
            batch.setState(row, state);
        }

        /** After scoring: the state the step graph returned, and the event applied to the record. */
        void advance(FeatureBatch batch, int row) {
            batch.copyStateOut(row, state);
            record.apply(event.eventTime, event.typeId);
            record.writeTo(lifetimeBytes, 0);
        }
    }

    @Test
    void manyUsersPerCallScoreAsOneUserPerCall() {
        try (OnnxScorer scorer = new OnnxScorer(bundle, Scoring.INCREMENTAL, 1)) {
            List<Replay> alone = new ArrayList<>();
            for (User u : users) alone.add(replay(u, scorer));

            FeatureEncoder encoder = new FeatureEncoder(spec);
            FeatureBatch batch = FeatureBatch.forServed(spec, served, users.size());
            float[][] into = new float[served.outputs().size()][users.size()];
            List<Step> steps = users.stream().map(Step::new).toList();
            int[] userOfRow = new int[users.size()];
            int longest = users.stream().mapToInt(u -> u.events().size()).max().orElse(0);
            double worst = 0;
            int calls = 0;
            for (int k = 0; k < longest; k++) {
                // One row per user with a k-th event: the batch shrinks as users run out, as real batches vary.
                batch.clear();
                for (int u = 0; u < users.size(); u++) {
                    if (k < users.get(u).events().size()) {
                        userOfRow[batch.size] = u;
                        steps.get(u).encode(k, encoder, batch);
                    }
                }
                scorer.score(batch, into);
                calls++;
                for (int row = 0; row < batch.size; row++) {
                    int u = userOfRow[row];
                    steps.get(u).advance(batch, row);
                    float[] want = alone.get(u).scores()[k];
                    for (int o = 0; o < want.length; o++) {
                        double diff = Math.abs(want[o] - into[o][row]);
                        worst = Math.max(worst, diff);
                        assertThat(diff).as("user line %d event %d output %s: batched %s, alone %s",
                                users.get(u).line(), k, served.outputNames().get(o), into[o][row], want[o])
                                .isLessThanOrEqualTo(1e-6);
                    }
                    assertThat(batch.lifetimeRow(row)).as("lifetime, user line %d event %d", users.get(u).line(), k)
                            .containsExactly(alone.get(u).lifetime()[k]);
                }
            }
            for (int u = 0; u < users.size(); u++) {
                float[] a = alone.get(u).stateFinal();
                float[] b = steps.get(u).state;
                for (int z = 0; z < a.length; z++) worst = Math.max(worst, Math.abs(a[z] - b[z]));
            }
            assertThat(worst).isLessThanOrEqualTo(1e-6);
            System.out.printf("golden-step %s: %d users batched over %d calls; max |batched - alone| = %.3g%n", dir,
                    users.size(), calls, worst);
        }
    }

    /**
     * The served reasons work on the real step graph: each user's last event gets reasons whose drops equal the
     * occlusions scored one by one, and texts with every placeholder filled.
     */
    @Test
    void reasonsExplainTheStepGraphsScores() {
        try (OnnxScorer scorer = new OnnxScorer(bundle, Scoring.INCREMENTAL, 1)) {
            FeatureEncoder encoder = new FeatureEncoder(spec);
            int rows = Math.min(8, users.size());
            FeatureBatch batch = FeatureBatch.forServed(spec, served, rows);
            String[] types = new String[rows];
            for (int u = 0; u < rows; u++) {
                Step step = new Step(users.get(u));
                int last = users.get(u).events().size() - 1;
                FeatureBatch one = FeatureBatch.forServed(spec, served, 1);
                for (int k = 0; k < last; k++) {
                    one.clear();
                    step.encode(k, encoder, one);
                    scorer.score(one);
                    step.advance(one, 0);
                }
                step.encode(last, encoder, batch);
                types[u] = spec.vocabulary().get(step.event.typeId - 1);
            }
            float[][] scores = scorer.score(batch);
            int[] all = java.util.stream.IntStream.range(0, rows).toArray();
            dev.seqscore.reasons.Reason[][] reasons = new dev.seqscore.reasons.Explainer(spec, served,
                    served.reasonTop(), 4).explain(batch, all, rows, scores, types, scorer);
            for (int row = 0; row < rows; row++) {
                assertThat(reasons[row]).isNotEmpty();
                for (dev.seqscore.reasons.Reason r : reasons[row]) {
                    ModelSpec.ReasonGroup g = served.reasonGroups().stream().filter(x -> x.name().equals(r.group))
                            .findFirst().orElseThrow();
                    FeatureBatch one = FeatureBatch.forServed(spec, served, 1);
                    batch.copyRow(row, one, 0);
                    one.size = 1;
                    if (g.sequence()) {
                        for (int p = 0; p < one.maxEvents - 1; p++) {
                            one.eventType[p] = 0;
                            one.itemBucket[p] = 0;
                            one.categoryBucket[p] = 0;
                            one.mask[p] = 0;
                            Arrays.fill(one.seqNumeric, p * one.sequenceFeatures, (p + 1) * one.sequenceFeatures, 0f);
                        }
                    }
                    for (int f : g.profileIndices()) one.profile[f] = 0;
                    if (g.history()) {
                        Arrays.fill(one.lifetime, 0f);
                        Arrays.fill(one.state, 0f);
                    }
                    float occluded = scorer.score(one)[r.output][0];
                    assertThat(r.drop).as("row %d %s", row, r).isCloseTo(scores[r.output][row] - occluded,
                            org.assertj.core.api.Assertions.within(1e-5f));
                    assertThat(r.text).doesNotContain("{");
                }
            }
            System.out.printf("golden-step %s reasons, user 1: %s%n", dir, Arrays.toString(reasons[0]));
        }
    }

    private static double compare(User u, int k, String what, List<String> names, float[] want, float[] got,
                                  double tolerance) {
        assertThat(got).as("line %d event %d %s width", u.line(), k, what).hasSameSizeAs(want);
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            double diff = Math.abs(want[i] - got[i]);
            worst = Math.max(worst, diff);
            if (!(diff <= tolerance)) {
                fail("golden-step line %d (user %s) event %d of %d %s[%s]: python %s, java %s", u.line(), u.id(), k,
                        u.events().size(), what, names.get(i), want[i], got[i]);
            }
        }
        return worst;
    }
}
