package dev.seqscore.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The committed default bundle loads and validates, and edits of its spec that the graph contradicts are caught. */
class ModelBundleDefaultTest {
    @TempDir
    Path tmp;

    @Test
    void defaultBundleValidates() {
        ModelBundle bundle = ModelBundle.load(TestBundles.defaultBundle());
        bundle.validate();
        assertThat(bundle.spec().outputs()).extracting(o -> o.name()).containsExactly("purchase_30m", "churn_24h");
    }

    @Test
    void theJobJarCarriesTheDefaultBundle() throws Exception {
        ModelBundle packaged = ModelBundle.locate(null);
        ModelBundle committed = ModelBundle.load(TestBundles.defaultBundle());

        assertThat(packaged.onnxPath()).contains(ModelBundle.PACKAGED);
        assertThat(packaged.spec().modelVersion()).isEqualTo(committed.spec().modelVersion());
        assertThat(packaged.onnxBytes()).isEqualTo(committed.onnxBytes());
        packaged.validate();
    }

    @Test
    void aBundleIsFoundByPathOrByAFileSystemUri() throws Exception {
        Path dir = copyDefault();
        String version = ModelBundle.load(TestBundles.defaultBundle()).spec().modelVersion();

        assertThat(ModelBundle.locate(dir.toString()).spec().modelVersion()).isEqualTo(version);
        assertThat(ModelBundle.locate(dir.toUri().toString()).spec().modelVersion()).isEqualTo(version);
    }

    @Test
    void aUriNoFileSystemServesFailsNamingIt() {
        assertThatThrownBy(() -> ModelBundle.locate("nosuchfs://bucket/models/default"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("nosuchfs://bucket/models/default");
    }

    @Test
    void specWithAnotherWindowLengthIsRefused() throws Exception {
        Path dir = copyDefault();
        ObjectNode spec = readSpec(dir);
        int n = spec.get("window").get("max_events").asInt();
        int other = n - 10;
        ((ObjectNode) spec.get("window")).put("max_events", other);
        List<JsonNode> inputs = new ArrayList<>();
        spec.get("inputs").forEach(inputs::add);
        if (spec.has("streaming")) {
            spec.get("streaming").get("inputs").forEach(inputs::add);
        }
        for (JsonNode input : inputs) {
            ArrayNode shape = (ArrayNode) input.get("shape");
            if (shape.size() > 1 && shape.get(1).asInt() == n) shape.set(1, other);
        }
        writeSpec(dir, spec);
        assertThatThrownBy(ModelBundle.load(dir)::validate)
                .hasMessageContaining(dir.resolve("model.onnx") + " input 'event_type' has shape [-1, " + n + "] but "
                        + dir.resolve("model-spec.json") + " says [batch, " + other + "]");
    }

    @Test
    void specNamingAnOutputTheGraphLacksIsRefused() throws Exception {
        Path dir = copyDefault();
        ObjectNode spec = readSpec(dir);
        ((ObjectNode) spec.get("outputs").get(1)).put("name", "churn_7d");
        writeSpec(dir, spec);
        assertThatThrownBy(ModelBundle.load(dir)::validate)
                .hasMessageContaining(dir.resolve("model.onnx") + " has no output 'churn_7d'");
    }

    private Path copyDefault() throws Exception {
        Path src = TestBundles.defaultBundle();
        Path dir = Files.createDirectories(tmp.resolve("copy"));
        Files.copy(src.resolve("model-spec.json"), dir.resolve("model-spec.json"));
        // Both graphs of a format 3 bundle; the windowed one alone of an older one.
        try (var graphs = Files.newDirectoryStream(src, "*.onnx")) {
            for (Path g : graphs) {
                Files.copy(g, dir.resolve(g.getFileName()));
            }
        }
        return dir;
    }

    private static ObjectNode readSpec(Path dir) throws Exception {
        return (ObjectNode) new ObjectMapper().readTree(dir.resolve("model-spec.json").toFile());
    }

    private static void writeSpec(Path dir, ObjectNode spec) throws Exception {
        new ObjectMapper().writerWithDefaultPrettyPrinter().writeValue(dir.resolve("model-spec.json").toFile(), spec);
    }
}
