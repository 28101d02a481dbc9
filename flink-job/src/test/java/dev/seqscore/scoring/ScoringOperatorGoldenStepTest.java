package dev.seqscore.scoring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.Scoring;
import dev.seqscore.testing.Clicks;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The Java operator serves the streaming model as Python trained it: the events of every user of the bundle's
 * {@code golden-step.jsonl}, interleaved in event time and fed to {@link ScoringOperator} ({@code --scoring
 * incremental}, the job's defaults, batches shared by the users) behind a watermark that moves in steps, so windows
 * clear in between while lifetime records and model states go on, score every event as Python's step-by-step
 * forward did, within 1e-4. Skipped when the bundle has no streaming model.
 */
class ScoringOperatorGoldenStepTest {
    private static final double SCORE_TOLERANCE = 1e-4;
    /** Events sent between two watermarks. */
    private static final int EVENTS_PER_WATERMARK = 150;

    private record Golden(String user, List<Clicks.Builder> events, float[][] scores) {}

    @Test
    void everyGoldenUsersScoresEqualPythonsStepByStepScores() throws Exception {
        ScoringFixture.assumeStreaming();
        ModelSpec spec = ScoringFixture.spec();
        ModelSpec.Streaming st = spec.streaming().orElseThrow();
        Path file = ScoringFixture.bundleDir().resolve(st.goldenFile() == null ? "golden-step.jsonl" : st.goldenFile());
        Map<String, Golden> golden = read(file);
        assertThat(golden).as("golden users").hasSizeGreaterThanOrEqualTo(30);

        List<Clicks.Builder> all = new ArrayList<>();
        golden.values().forEach(g -> all.addAll(g.events()));
        all.sort(Comparator.comparingLong(Clicks.Builder::millis)); // stable: each user's order within a time
        try (ScoringHarness h = ScoringHarness.open(ScoringFixture.settings(Scoring.INCREMENTAL).maxBatch(16)
                .build())) {
            for (int i = 0; i < all.size(); i++) {
                h.send(all.get(i));
                if (i % EVENTS_PER_WATERMARK == EVENTS_PER_WATERMARK - 1) {
                    h.watermark(all.get(i).millis() - 1);
                }
            }
            h.watermark(all.get(all.size() - 1).millis());

            assertThat(h.scored()).as("scored events").hasSameSizeAs(all);
            double worst = 0;
            for (Golden g : golden.values()) {
                List<ScoredEvent> out = h.scored(g.user());
                assertThat(out).as("scored events of %s", g.user()).hasSize(g.events().size());
                for (int k = 0; k < out.size(); k++) {
                    ScoredEvent s = out.get(k);
                    assertThat(s.eventTime).isEqualTo(g.events().get(k).millis());
                    for (int o = 0; o < s.scores.length; o++) {
                        double diff = Math.abs(s.scores[o] - g.scores()[k][o]);
                        worst = Math.max(worst, diff);
                        if (!(diff <= SCORE_TOLERANCE)) {
                            fail("golden-step user %s event %d of %d, output %d: python %s, operator %s", g.user(),
                                    k, out.size(), o, g.scores()[k][o], s.scores[o]);
                        }
                    }
                }
            }
            System.out.printf("golden-step through the operator: %d users, %d events, max |python - java| %.3g%n",
                    golden.size(), all.size(), worst);
        }
    }

    private static Map<String, Golden> read(Path file) throws Exception {
        ObjectMapper mapper = new ObjectMapper();
        Map<String, Golden> out = new LinkedHashMap<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode g = mapper.readTree(line);
            String user = g.get("user_id").asText();
            List<Clicks.Builder> events = new ArrayList<>();
            long offset = 0;
            for (JsonNode e : g.get("events")) {
                JsonNode category = e.get("category_id");
                events.add(Clicks.click(user).type(e.get("event_type").asText()).item(e.get("item_id").asText())
                        .category(category == null || category.isNull() ? null : category.asText())
                        .atMillis(e.get("event_time").asLong()).offset(offset++));
            }
            JsonNode scores = g.get("scores");
            float[][] s = new float[scores.size()][];
            for (int k = 0; k < s.length; k++) {
                s[k] = new float[scores.get(k).size()];
                for (int o = 0; o < s[k].length; o++) {
                    s[k][o] = (float) scores.get(k).get(o).asDouble();
                }
            }
            assertThat(out.put(user, new Golden(user, events, s))).as("one line per user: %s", user).isNull();
        }
        return out;
    }
}
