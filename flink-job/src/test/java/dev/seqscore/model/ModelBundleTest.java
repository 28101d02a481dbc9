package dev.seqscore.model;

import dev.seqscore.features.Scoring;
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

    // ---------------------------------------------------------------- format 3: the step graph

    @Test
    void loadsAndValidatesBothGraphsOfAStreamingBundle() {
        Path dir = TestBundles.tinyStreaming(tmp.resolve("b"));
        ModelBundle bundle = ModelBundle.load(dir);
        bundle.validate();
        assertThat(bundle.hasStreaming()).isTrue();
        assertThat(bundle.onnxPath(Scoring.INCREMENTAL)).isEqualTo(dir.resolve("step.onnx").toString());
        assertThat(bundle.onnxPath(Scoring.WINDOWED)).isEqualTo(dir.resolve("model.onnx").toString());
        assertThat(bundle.onnxBytes(Scoring.INCREMENTAL)).isEqualTo(TinyOnnx.stepModel(5, 6, 27, 10, 4));
        assertThat(bundle.served(Scoring.INCREMENTAL).stateSize()).isEqualTo(4);
        assertThat(bundle.toString()).contains("step.onnx");
    }

    @Test
    void aBundleWithoutAStreamingModelNamesTheFix() {
        Path dir = TestBundles.tiny(tmp.resolve("b"));
        ModelBundle bundle = ModelBundle.load(dir);
        assertThat(bundle.hasStreaming()).isFalse();
        assertThatThrownBy(() -> bundle.served(Scoring.INCREMENTAL)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("bundle " + dir + " (format 1) has no streaming model: use --scoring windowed or a bundle "
                        + "exported by this version of model-export");
        assertThatThrownBy(() -> bundle.onnxPath(Scoring.INCREMENTAL)).hasMessageContaining("--scoring windowed");
    }

    @Test
    void theStepGraphTravelsInsideTheSerializedBundle() throws Exception {
        Path dir = TestBundles.tinyStreaming(tmp.resolve("b"));
        ModelBundle bundle = ModelBundle.load(dir);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(bundle);
        }
        Files.delete(dir.resolve("step.onnx"));
        ModelBundle copy;
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            copy = (ModelBundle) in.readObject();
        }
        assertThat(copy.onnxBytes(Scoring.INCREMENTAL)).isEqualTo(bundle.onnxBytes(Scoring.INCREMENTAL));
        copy.validate();
    }

    @Test
    void missingOrEmptyStepGraph() throws Exception {
        Path dir = TestBundles.tinyStreaming(tmp.resolve("b"));
        Files.write(dir.resolve("step.onnx"), new byte[0]);
        assertThatThrownBy(() -> ModelBundle.load(dir)).hasMessageEndingWith("step.onnx is empty");
        Files.delete(dir.resolve("step.onnx"));
        assertThatThrownBy(() -> ModelBundle.load(dir)).hasMessage("model bundle " + dir + " has no step.onnx (the "
                + "streaming.onnx_file named by " + dir.resolve("model-spec.json") + ")");
    }

    @Test
    void corruptStepGraphFailsValidationNamingTheFile() {
        byte[] garbage = new byte[4096];
        new Random(2).nextBytes(garbage);
        Path dir = TestBundles.writeStep(TestBundles.tinyStreaming(tmp.resolve("b")), garbage);
        ModelBundle bundle = ModelBundle.load(dir);
        String step = dir.resolve("step.onnx").toString();
        assertThatThrownBy(bundle::validate).isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("ONNX Runtime cannot load " + step);
        assertThatThrownBy(() -> new OnnxScorer(bundle, Scoring.INCREMENTAL, 1))
                .hasMessageStartingWith("ONNX Runtime cannot load " + step);
        try (OnnxScorer windowed = new OnnxScorer(bundle)) {
            assertThat(windowed.outputNames()).as("the windowed graph is fine").hasSize(2);
        }
    }

    @Test
    void stepGraphDisagreeingWithTheSpec() {
        Path dir = TestBundles.writeStep(TestBundles.tinyStreaming(tmp.resolve("b")),
                TinyOnnx.stepModel(5, 6, 27, 10, 8));
        String step = dir.resolve("step.onnx").toString();
        assertThatThrownBy(ModelBundle.load(dir)::validate).hasMessage(step + " input 'state' has shape [-1, 8] but "
                + dir.resolve("model-spec.json") + " says [batch, 4]");

        TestBundles.writeStep(dir, TinyOnnx.stepModel(5, 6, 27, 9, 4));
        assertThatThrownBy(ModelBundle.load(dir)::validate).hasMessageContaining(step + " input 'lifetime' has shape "
                + "[-1, 9]");

        TestBundles.writeStep(dir, TinyOnnx.stepModel(5, 6, 27, 10, 4, "hidden", "state_out"));
        assertThatThrownBy(ModelBundle.load(dir)::validate)
                .hasMessageContaining(step + " has no input 'state' but " + dir.resolve("model-spec.json"));

        // The windowed graph where the step graph should be.
        TestBundles.writeStep(dir, TinyOnnx.model(5, 6, 27));
        assertThatThrownBy(ModelBundle.load(dir)::validate).hasMessageContaining(step + " has no input 'lifetime'");
    }

    @Test
    void stepGraphWithoutTheStateOutput() {
        Path dir = TestBundles.writeStep(TestBundles.tinyStreaming(tmp.resolve("b")),
                TinyOnnx.stepModel(5, 6, 27, 10, 4, "state", "next_state"));
        assertThatThrownBy(ModelBundle.load(dir)::validate).hasMessage(dir.resolve("step.onnx") + " has no output "
                + "'state_out' but " + dir.resolve("model-spec.json") + " lists it");
    }
}
