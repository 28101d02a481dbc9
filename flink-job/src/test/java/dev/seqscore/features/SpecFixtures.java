package dev.seqscore.features;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** The hand-made test specs (N=5, 1 h horizon, 10 min session gap, UTC+8) and edits of them. */
public final class SpecFixtures {
    private SpecFixtures() {}

    public static String smallSpecJson() {
        return resource("/spec/small-spec.json");
    }

    /**
     * The same spec in format 2: a 10 min recent window, all 27 profile features (the 12 of format 1, then
     * recent_*, is_*, since_prev_event, same_item_count, same_category_count, event_hour_sin, event_hour_cos; the new
     * ones with mean 0 and std 1), and score quantiles for purchase_30m.
     */
    public static String smallSpecV2Json() {
        return resource("/spec/small-spec-v2.json");
    }

    public static ModelSpec smallSpecV2() {
        return ModelSpec.parse(smallSpecV2Json(), "small-spec-v2.json");
    }

    /**
     * The format 2 spec in format 3: with top-level reasons (carts, since_previous, sequence) and a streaming model
     * (step.onnx, state size 4, a 30-day reset gap, the 10 lifetime features, some standardised with mean and std
     * other than 0 and 1, and streaming reasons with a history group).
     */
    public static String smallSpecV3Json() {
        return resource("/spec/small-spec-v3.json");
    }

    public static ModelSpec smallSpecV3() {
        return ModelSpec.parse(smallSpecV3Json(), "small-spec-v3.json");
    }

    private static String resource(String name) {
        try (InputStream in = SpecFixtures.class.getResourceAsStream(name)) {
            if (in == null) throw new IllegalStateException("test resource " + name + " is missing");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static ModelSpec smallSpec() {
        return ModelSpec.parse(smallSpecJson(), "small-spec.json");
    }

    /** The small spec with the first occurrence of {@code from} replaced, which must exist. */
    public static String edited(String from, String to) {
        String json = smallSpecJson();
        if (!json.contains(from)) throw new IllegalArgumentException("small-spec.json has no '" + from + "'");
        return json.replaceFirst(java.util.regex.Pattern.quote(from), java.util.regex.Matcher.quoteReplacement(to));
    }
}
