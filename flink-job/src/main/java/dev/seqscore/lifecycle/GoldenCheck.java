package dev.seqscore.lifecycle;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.GoldenHistories;
import dev.seqscore.features.Lifetime;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.PackedWindow;
import dev.seqscore.features.Scoring;
import dev.seqscore.features.WindowEvent;
import dev.seqscore.features.WindowRule;
import dev.seqscore.model.ModelBundle;
import dev.seqscore.model.OnnxScorer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A bundle checked against its own golden vectors, the scores Python recorded when it exported the bundle, through
 * the session that will serve it: what a running job does before it swaps to a published bundle, so that a bundle
 * whose graph, spec or features disagree is refused instead of served. The streaming model replays each golden user
 * event by event as the job does (window, lifetime record, reset rule, state fed back); the windowed model scores each
 * golden window.
 */
public final class GoldenCheck {
    /** As the parity tests: ONNX Runtime's kernels differ from PyTorch's in the last digits. */
    public static final double TOLERANCE = 1e-4;
    private static final ObjectMapper JSON = new ObjectMapper();

    private GoldenCheck() {}

    /** The golden file the bundle's served model is checked with. */
    public static String fileOf(ModelSpec spec, Scoring scoring) {
        if (scoring == Scoring.INCREMENTAL) {
            return spec.streaming().map(ModelSpec.Streaming::goldenFile).filter(f -> f != null)
                    .orElse("golden-step.jsonl");
        }
        return "golden.jsonl";
    }

    /**
     * Reads the golden file of the bundle at {@code location} and scores it with {@code scorer}.
     *
     * @return how many events were compared
     * @throws IllegalArgumentException naming the first disagreement, or a missing or unreadable golden file
     */
    public static int verify(String location, ModelBundle bundle, Scoring scoring, OnnxScorer scorer) {
        String name = fileOf(bundle.spec(), scoring);
        byte[] bytes = ModelBundle.readFile(location, name);
        if (bytes == null || bytes.length == 0) {
            throw new IllegalArgumentException("model bundle " + location + " has no " + name + ": its golden "
                    + "vectors are how a job checks a bundle before serving it; export the bundle with model-export, "
                    + "which writes them");
        }
        List<JsonNode> lines = new ArrayList<>();
        try {
            for (String text : new String(bytes, StandardCharsets.UTF_8).split("\n")) {
                if (!text.isBlank()) {
                    lines.add(JSON.readTree(text));
                }
            }
        } catch (IOException e) {
            throw new IllegalArgumentException(location + "/" + name + " is not JSON lines: " + e.getMessage(), e);
        }
        if (lines.isEmpty()) {
            throw new IllegalArgumentException(location + "/" + name + " holds no golden vectors");
        }
        try {
            return scoring == Scoring.INCREMENTAL ? steps(location + "/" + name, bundle.spec(), lines, scorer)
                    : windows(location + "/" + name, bundle.spec(), lines, scorer);
        } catch (RuntimeException e) {
            if (e instanceof IllegalArgumentException) {
                throw e;
            }
            throw new IllegalArgumentException(location + "/" + name + " cannot be replayed: " + e, e);
        }
    }

    private static int windows(String file, ModelSpec spec, List<JsonNode> lines, OnnxScorer scorer) {
        FeatureEncoder encoder = new FeatureEncoder(spec);
        List<String> names = spec.outputs().stream().map(ModelSpec.OutputSpec::name).toList();
        int capacity = 64;
        FeatureBatch batch = encoder.newBatch(capacity);
        float[][] into = new float[names.size()][capacity];
        List<JsonNode> inBatch = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            List<WindowEvent> history = GoldenHistories.of(lines.get(i), spec);
            encoder.add(WindowRule.windowEndingAt(history, spec.maxEvents(), spec.horizonMs()), batch);
            inBatch.add(lines.get(i));
            if (batch.isFull() || i == lines.size() - 1) {
                scorer.score(batch, into);
                for (int row = 0; row < inBatch.size(); row++) {
                    JsonNode outputs = inBatch.get(row).get("outputs");
                    for (int o = 0; o < names.size(); o++) {
                        JsonNode want = outputs == null ? null : outputs.get(names.get(o));
                        if (want == null) {
                            throw new IllegalArgumentException(file + " line " + (i - inBatch.size() + row + 2)
                                    + " has no output " + names.get(o));
                        }
                        compare(file, "window " + (i - inBatch.size() + row + 1), names.get(o), want.asDouble(),
                                into[o][row]);
                    }
                }
                batch.clear();
                inBatch.clear();
            }
        }
        return lines.size();
    }

    private static void compare(String file, String where, String output, double want, float got) {
        if (!(Math.abs(want - got) <= TOLERANCE)) {
            throw new IllegalArgumentException("golden vectors disagree: " + file + " " + where + " " + output
                    + ": exported " + want + ", scored " + got + " (tolerance " + TOLERANCE + "); the graph, the spec "
                    + "or the features do not match what was trained");
        }
    }

    /** One golden user replayed as the job keeps its state between events. */
    private static final class User {
        final int line;
        final List<WindowEvent> events = new ArrayList<>();
        final JsonNode scores;
        final PackedWindow view;
        final Lifetime record;
        final byte[] lifetimeBytes;
        final float[] state;
        byte[] window;
        WindowEvent event;

        User(int line, JsonNode g, ModelSpec spec, int stateSize) {
            this.line = line;
            for (JsonNode e : g.get("events")) {
                JsonNode category = e.get("category_id");
                events.add(new WindowEvent(e.get("item_id").asText(),
                        category == null || category.isNull() ? "" : category.asText(),
                        spec.typeId(e.get("event_type").asText()), e.get("event_time").asLong()));
            }
            this.scores = g.get("scores");
            this.view = PackedWindow.forSpec(spec, spec.maxEvents(), spec.horizonMs());
            this.record = Lifetime.forSpec(spec);
            this.lifetimeBytes = new byte[Lifetime.bytes(spec.vocabulary().size())];
            this.state = new float[stateSize];
        }
    }

    private static int steps(String file, ModelSpec spec, List<JsonNode> lines, OnnxScorer scorer) {
        ModelSpec.Served served = spec.served(Scoring.INCREMENTAL);
        List<String> names = served.outputNames();
        List<User> users = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            users.add(new User(i + 1, lines.get(i), spec, served.stateSize()));
        }
        FeatureEncoder encoder = new FeatureEncoder(spec);
        FeatureBatch batch = FeatureBatch.forServed(spec, served, users.size());
        float[][] into = new float[names.size()][users.size()];
        int[] userOfRow = new int[users.size()];
        int longest = users.stream().mapToInt(u -> u.events.size()).max().orElse(0);
        int compared = 0;
        for (int k = 0; k < longest; k++) {
            // One row per user with a k-th event, as the job's batches hold at most one row per user.
            batch.clear();
            for (int u = 0; u < users.size(); u++) {
                User x = users.get(u);
                if (k >= x.events.size()) {
                    continue;
                }
                x.event = x.events.get(k);
                x.view.wrap(x.window == null ? null : x.window.clone());
                if (!x.view.append(x.event.itemId, x.event.categoryId, x.event.typeId, x.event.eventTime)) {
                    throw new IllegalArgumentException(file + " line " + x.line + " event " + k + " duplicates an "
                            + "earlier one, which the contract drops before scoring");
                }
                x.window = x.view.bytes();
                x.record.readFrom(x.lifetimeBytes, 0);
                if (x.record.resetIfGap(x.event.eventTime, served.resetGapMs())) {
                    Arrays.fill(x.state, 0f);
                }
                userOfRow[batch.size] = u;
                int row = encoder.add(x.view, batch);
                encoder.addLifetime(x.record, x.event.eventTime, x.event.typeId, batch, row);
                batch.setState(row, x.state);
            }
            scorer.score(batch, into);
            for (int row = 0; row < batch.size; row++) {
                User x = users.get(userOfRow[row]);
                batch.copyStateOut(row, x.state);
                x.record.apply(x.event.eventTime, x.event.typeId);
                x.record.writeTo(x.lifetimeBytes, 0);
                JsonNode want = x.scores == null ? null : x.scores.get(k);
                if (want == null || want.size() != names.size()) {
                    throw new IllegalArgumentException(file + " line " + x.line + " has no " + names.size()
                            + " scores for event " + k);
                }
                for (int o = 0; o < names.size(); o++) {
                    compare(file, "line " + x.line + " event " + k, names.get(o), want.get(o).asDouble(),
                            into[o][row]);
                }
                compared++;
            }
        }
        return compared;
    }
}
