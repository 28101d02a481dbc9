package dev.seqscore.features;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The click histories of a bundle's {@code golden.jsonl} (the parity vectors Python writes for each window), as the
 * {@link WindowEvent}s Java scores: one reading for the parity tests and the benchmark.
 */
public final class GoldenHistories {
    private GoldenHistories() {}

    /** The {@code history} of one parsed golden line, oldest first; an unknown event type becomes type id 0. */
    public static List<WindowEvent> of(JsonNode line, ModelSpec spec) {
        List<WindowEvent> history = new ArrayList<>();
        for (JsonNode e : line.get("history")) {
            JsonNode category = e.get("category_id");
            history.add(new WindowEvent(e.get("item_id").asText(),
                    category == null || category.isNull() ? "" : category.asText(),
                    spec.typeId(e.get("event_type").asText()), e.get("event_time").asLong()));
        }
        return history;
    }

    /** Every non-blank line's history, in file order. */
    public static List<List<WindowEvent>> read(Path goldenJsonl, ModelSpec spec) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        List<List<WindowEvent>> out = new ArrayList<>();
        for (String text : Files.readAllLines(goldenJsonl, StandardCharsets.UTF_8)) {
            if (!text.isBlank()) {
                out.add(of(mapper.readTree(text), spec));
            }
        }
        return out;
    }
}
