package dev.seqscore.tools.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.seqscore.model.ModelBundle;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * A shadow candidate for the benchmark: a copy of a bundle directory (spec, graphs, golden vectors) under another
 * model version, as a retrain that learned nothing new would publish. Same weights, so its cost is the serving
 * model's.
 */
final class ShadowCandidate {
    private ShadowCandidate() {}

    static Path copy(Path from, Path target, String versionSuffix) throws IOException {
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
        spec.put("model_version", spec.get("model_version").asText() + versionSuffix);
        if (spec.has("streaming")) {
            ObjectNode st = (ObjectNode) spec.get("streaming");
            st.put("model_version", st.get("model_version").asText() + versionSuffix);
        }
        mapper.writerWithDefaultPrettyPrinter().writeValue(specFile.toFile(), spec);
        return target.toAbsolutePath();
    }
}
