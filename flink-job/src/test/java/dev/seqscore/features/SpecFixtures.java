package dev.seqscore.features;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** The hand-made test spec (N=5, 1 h horizon, 10 min session gap, UTC+8) and edits of it. */
public final class SpecFixtures {
    private SpecFixtures() {}

    public static String smallSpecJson() {
        try (InputStream in = SpecFixtures.class.getResourceAsStream("/spec/small-spec.json")) {
            if (in == null) throw new IllegalStateException("test resource /spec/small-spec.json is missing");
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
