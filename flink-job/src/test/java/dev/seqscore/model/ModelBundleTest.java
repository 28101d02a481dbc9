package dev.seqscore.model;

import dev.seqscore.features.SpecFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ModelBundleTest {
    @TempDir
    Path tmp;

    @Test
    void loadsAndValidatesAMatchingBundle() {
        ModelBundle bundle = ModelBundle.load(TestBundles.tiny(tmp.resolve("b")));
        bundle.validate();
        assertThat(bundle.spec().maxEvents()).isEqualTo(5);
        assertThat(bundle.onnxPath()).endsWith("model.onnx");
        assertThat(bundle.onnxSize()).isPositive();
    }

    @Test
    void survivesJavaSerializationWithTheGraphInside() throws Exception {
        Path dir = TestBundles.tiny(tmp.resolve("b"));
        ModelBundle bundle = ModelBundle.load(dir);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(bundle);
        }
        // The TaskManager has no bundle on disk: the copy must not need the files.
        Files.delete(dir.resolve("model.onnx"));
        ModelBundle copy;
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            copy = (ModelBundle) in.readObject();
        }
        assertThat(copy.onnxBytes()).isEqualTo(bundle.onnxBytes());
        copy.validate();
    }

    @Test
    void missingDirectory() {
        Path dir = tmp.resolve("nope");
        assertThatThrownBy(() -> ModelBundle.load(dir)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("model bundle directory " + dir + " does not exist");
    }

    @Test
    void directoryIsAFile() throws Exception {
        Path file = Files.writeString(tmp.resolve("file"), "x");
        assertThatThrownBy(() -> ModelBundle.load(file)).hasMessageContaining("is not a directory");
    }

    @Test
    void missingSpec() throws Exception {
        Path dir = TestBundles.tiny(tmp.resolve("b"));
        Files.delete(dir.resolve("model-spec.json"));
        assertThatThrownBy(() -> ModelBundle.load(dir)).hasMessage("model bundle " + dir + " has no model-spec.json");
    }

    @Test
    void corruptSpec() throws Exception {
        Path dir = TestBundles.tiny(tmp.resolve("b"));
        Files.writeString(dir.resolve("model-spec.json"), "{ not json");
        assertThatThrownBy(() -> ModelBundle.load(dir))
                .hasMessageContaining(dir.resolve("model-spec.json").toString()).hasMessageContaining("not valid JSON");
    }

    @Test
    void missingOnnx() throws Exception {
        Path dir = TestBundles.tiny(tmp.resolve("b"));
        Files.delete(dir.resolve("model.onnx"));
        assertThatThrownBy(() -> ModelBundle.load(dir)).hasMessageContaining("has no model.onnx")
                .hasMessageContaining(dir.toString());
    }

    @Test
    void emptyOnnx() throws Exception {
        Path dir = TestBundles.tiny(tmp.resolve("b"));
        Files.write(dir.resolve("model.onnx"), new byte[0]);
        assertThatThrownBy(() -> ModelBundle.load(dir)).hasMessageEndingWith("model.onnx is empty");
    }

    @Test
    void corruptOnnxFailsValidationAndScorerNamingTheFile() {
        byte[] garbage = new byte[4096];
        new Random(1).nextBytes(garbage);
        Path dir = TestBundles.write(tmp.resolve("b"), SpecFixtures.smallSpecJson(), garbage);
        ModelBundle bundle = ModelBundle.load(dir);
        String onnx = dir.resolve("model.onnx").toString();
        assertThatThrownBy(bundle::validate).isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("ONNX Runtime cannot load " + onnx);
        assertThatThrownBy(() -> new OnnxScorer(bundle)).hasMessageStartingWith("ONNX Runtime cannot load " + onnx);
    }

    @Test
    void staticDimensionDisagreeingWithTheSpec() {
        Path dir = TestBundles.write(tmp.resolve("b"), SpecFixtures.smallSpecJson(),
                TinyOnnx.model(4, 6, 12));
        ModelBundle bundle = ModelBundle.load(dir);
        assertThatThrownBy(bundle::validate).hasMessage(dir.resolve("model.onnx") + " input 'event_type' has shape"
                + " [-1, 4] but " + dir.resolve("model-spec.json") + " says [batch, 5]");
        assertThatThrownBy(() -> new OnnxScorer(bundle)).hasMessageContaining("input 'event_type' has shape [-1, 4]");
    }

    @Test
    void inputNameDisagreeingWithTheSpec() {
        Path dir = TestBundles.write(tmp.resolve("b"), SpecFixtures.smallSpecJson(),
                TinyOnnx.model(5, 6, 12, 5, "attention_mask"));
        assertThatThrownBy(ModelBundle.load(dir)::validate)
                .hasMessageContaining("model.onnx has no input 'mask' but " + dir.resolve("model-spec.json")
                        + " lists it");
    }

    @Test
    void specWithAnotherWindowLengthThanTheGraph() {
        // A consistent spec (N = 4 everywhere) for a graph built for N = 5.
        String spec = SpecFixtures.smallSpecJson().replace("\"max_events\": 5", "\"max_events\": 4")
                .replace("\"batch\", 5", "\"batch\", 4");
        Path dir = TestBundles.write(tmp.resolve("b"), spec, TinyOnnx.model(5, 6, 12));
        assertThatThrownBy(ModelBundle.load(dir)::validate)
                .hasMessageContaining("input 'event_type' has shape [-1, 5] but")
                .hasMessageContaining("says [batch, 4]");
    }

    @Test
    void outputMissingFromTheGraph() {
        String spec = SpecFixtures.smallSpecJson().replace("\"churn_24h\"", "\"churn_7d\"");
        Path dir = TestBundles.write(tmp.resolve("b"), spec, TinyOnnx.model(5, 6, 12));
        assertThatThrownBy(ModelBundle.load(dir)::validate).hasMessageContaining("has no output 'churn_7d'");
    }
}
