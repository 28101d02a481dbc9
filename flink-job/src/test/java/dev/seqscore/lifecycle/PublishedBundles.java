package dev.seqscore.lifecycle;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.seqscore.model.ModelBundle;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Bundles to publish to a running scorer: copies of a bundle directory with everything a publish reads (spec, graphs,
 * golden vectors), as a retrain writes them, with the spec or a golden file edited.
 */
public final class PublishedBundles {
    private PublishedBundles() {}

    /** The same weights under another model version: what a retrain that learned nothing new would publish. */
    public static Path retrained(Path from, Path target, String suffix) {
        return copy(from, target, spec -> {
            spec.put("model_version", spec.get("model_version").asText() + suffix);
            if (spec.has("streaming")) {
                ObjectNode st = (ObjectNode) spec.get("streaming");
                st.put("model_version", st.get("model_version").asText() + suffix);
            }
        });
    }

    /** A copy with its spec edited. */
    public static Path copy(Path from, Path target, Consumer<ObjectNode> editSpec) {
        try {
            Files.createDirectories(target);
            try (Stream<Path> files = Files.list(from)) {
                for (Path f : files.toList()) {
                    String name = f.getFileName().toString();
                    if (Files.isRegularFile(f) && !name.endsWith(".pt")) {
                        Files.copy(f, target.resolve(name));
                    }
                }
            }
            ObjectMapper mapper = new ObjectMapper();
            ObjectNode spec = (ObjectNode) mapper.readTree(target.resolve(ModelBundle.SPEC_FILE).toFile());
            editSpec.accept(spec);
            mapper.writerWithDefaultPrettyPrinter().writeValue(target.resolve(ModelBundle.SPEC_FILE).toFile(), spec);
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Changes the first recorded score of a golden file, as a bundle whose graph is not the one trained would. */
    public static void corruptGolden(Path bundle, String goldenFile) {
        try {
            Path f = bundle.resolve(goldenFile);
            String text = Files.readString(f);
            String first = goldenFile.contains("step") ? "\"scores\":[[" : "\"purchase_30m\":";
            int at = text.indexOf(first) + first.length();
            int end = at;
            while (Character.isDigit(text.charAt(end)) || text.charAt(end) == '.' || text.charAt(end) == 'e'
                    || text.charAt(end) == '-') {
                end++;
            }
            double v = Double.parseDouble(text.substring(at, end));
            Files.writeString(f, text.substring(0, at) + (v + 0.05) + text.substring(end));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
