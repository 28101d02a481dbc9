package dev.seqscore.model;

import dev.seqscore.features.SpecFixtures;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/** Bundles for tests: the tiny hand-built ones, and the committed {@code models/default}. */
public final class TestBundles {
    private TestBundles() {}

    /** Writes the small test spec and a matching tiny ONNX model into {@code dir}. */
    static Path tiny(Path dir) {
        return write(dir, SpecFixtures.smallSpecJson(), TinyOnnx.model(5, 6, 12));
    }

    /**
     * Writes the format 3 test spec with a tiny windowed model and a tiny step graph ({@link TinyOnnx#stepModel}:
     * N=5, S=6, P=27, F=10, Z=4) into {@code dir}.
     */
    public static Path tinyStreaming(Path dir) {
        write(dir, SpecFixtures.smallSpecV3Json(), TinyOnnx.model(5, 6, 27));
        return writeStep(dir, TinyOnnx.stepModel(5, 6, 27, 10, 4));
    }

    static Path writeStep(Path dir, byte[] stepOnnx) {
        try {
            Files.write(dir.resolve("step.onnx"), stepOnnx);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Path write(Path dir, String specJson, byte[] onnx) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("model-spec.json"), specJson);
            Files.write(dir.resolve("model.onnx"), onnx);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The committed default bundle. Its absence is a failure, not a skip: the bundle is part of the repository and
     * the golden parity is the proof that Java and Python agree.
     */
    static Path defaultBundle() {
        Path root = repoRoot();
        Path dir = root.resolve("models/default");
        if (!Files.isRegularFile(dir.resolve("golden.jsonl")) || !Files.isRegularFile(dir.resolve("model-spec.json"))) {
            throw new AssertionError("the committed model bundle is missing: expected " + dir
                    + " with model-spec.json, model.onnx and golden.jsonl");
        }
        return dir;
    }

    static Path repoRoot() {
        String prop = System.getProperty("seqscore.repo.root");
        if (prop != null && !prop.isBlank() && Files.isDirectory(Paths.get(prop, "models"))) {
            return Paths.get(prop);
        }
        for (Path p = Paths.get(System.getProperty("user.dir")).toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isDirectory(p.resolve("models/default"))) return p;
        }
        throw new AssertionError("cannot find the repository root (set -Dseqscore.repo.root or run inside the repo)");
    }
}
