package dev.seqscore.offline;

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
 * Copies of a model bundle directory with everything a publish reads (spec, graphs, golden vectors; not the PyTorch
 * checkpoint): what the drill swaps between, the benchmark shadows with, and the tests publish.
 */
public final class BundleCopies {
    private BundleCopies() {}

    /**
     * The same weights under another model version ({@code model_version} and {@code streaming.model_version} with
     * {@code suffix} appended), as a retrain that learned nothing new would publish: after a swap to it each user's
     * recurrent state starts from zeros, so its scores differ from the old model's and a wrong assignment shows.
     */
    public static Path retrained(Path from, Path target, String suffix) {
        return copy(from, target, spec -> {
            spec.put("model_version", spec.get("model_version").asText() + suffix);
            if (spec.has("streaming")) {
                ObjectNode st = (ObjectNode) spec.get("streaming");
                st.put("model_version", st.get("model_version").asText() + suffix);
            }
        });
    }

    /** A copy with its spec edited; returns its absolute path. */
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
            Path specFile = target.resolve(ModelBundle.SPEC_FILE);
            ObjectNode spec = (ObjectNode) mapper.readTree(specFile.toFile());
            editSpec.accept(spec);
            mapper.writerWithDefaultPrettyPrinter().writeValue(specFile.toFile(), spec);
            return target.toAbsolutePath();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot copy model bundle " + from + " to " + target + ": " + e, e);
        }
    }
}
