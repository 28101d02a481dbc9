package dev.seqscore.e2e.drill;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.seqscore.model.ModelBundle;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * "Retrained" copies of a model bundle for the drill's swaps: the spec, graphs and golden vectors of a bundle
 * directory (not the PyTorch checkpoint), with a suffix appended to {@code model_version} and
 * {@code streaming.model_version}. Same weights, another version: after a swap each user's recurrent state starts
 * from zeros for the new version, so the scores differ from the old model's and a wrong version assignment shows.
 */
final class ModelCopies {
    private ModelCopies() {}

    static Path retrained(Path from, Path target, String suffix) throws IOException {
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
        spec.put("model_version", spec.get("model_version").asText() + suffix);
        if (spec.has("streaming")) {
            ObjectNode st = (ObjectNode) spec.get("streaming");
            st.put("model_version", st.get("model_version").asText() + suffix);
        }
        mapper.writerWithDefaultPrettyPrinter().writeValue(specFile.toFile(), spec);
        return target.toAbsolutePath();
    }
}
