package dev.seqscore.model;

import dev.seqscore.features.Scoring;
import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import ai.onnxruntime.ValueInfo;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.model.unload.JobUnload;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model bundle ({@code models/<name>/}: {@code model-spec.json} plus the ONNX files it names: the windowed graph and,
 * from format 3, the streaming model's step graph) held in memory.
 *
 * <p>{@link Serializable} with the ONNX bytes inside, so that it ships with the job graph to the TaskManagers and no
 * TaskManager needs the bundle on its file system. The client calls {@link #validate()} before submitting, so a
 * corrupt model or a spec that does not match a graph fails there, with a message naming the file.
 */
public final class ModelBundle implements Serializable {
    private static final long serialVersionUID = 1L;

    public static final String SPEC_FILE = "model-spec.json";
    /** Where the build puts {@code models/default} inside the job jar. */
    public static final String PACKAGED = "seqscore/models/default/";

    private final ModelSpec spec;
    private final byte[] onnx;
    private final String onnxPath;
    /** The step graph; null without a streaming model. */
    private final byte[] stepOnnx;
    private final String stepOnnxPath;
    /**
     * Here so that every operator carrying a model carries one: deserialized with the operators in a JobManager, it
     * lets the job's class loader go once Flink drops them ({@link JobUnload.OnJobManagerDrop}).
     */
    @SuppressWarnings("unused")
    private final JobUnload.OnJobManagerDrop unloadOnJobManagerDrop = new JobUnload.OnJobManagerDrop();

    private ModelBundle(ModelSpec spec, byte[] onnx, String onnxPath, byte[] stepOnnx, String stepOnnxPath) {
        this.spec = spec;
        this.onnx = onnx;
        this.onnxPath = onnxPath;
        this.stepOnnx = stepOnnx;
        this.stepOnnxPath = stepOnnxPath;
    }

    /**
     * Reads a bundle directory and validates its spec. Does not open the ONNX graph; see {@link #validate()}.
     *
     * @throws IllegalArgumentException naming the directory or file, if anything is missing, unreadable or invalid
     */
    public static ModelBundle load(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            throw new IllegalArgumentException("model bundle directory " + dir + " does not exist");
        }
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("model bundle " + dir + " is not a directory");
        }
        Path specFile = dir.resolve(SPEC_FILE);
        if (!Files.isRegularFile(specFile)) {
            throw new IllegalArgumentException("model bundle " + dir + " has no " + SPEC_FILE);
        }
        ModelSpec spec = ModelSpec.load(specFile);
        Path onnxFile = dir.resolve(spec.onnxFile());
        byte[] bytes = readGraph(dir, onnxFile, "onnx_file", specFile);
        String stepName = spec.streaming().map(ModelSpec.Streaming::onnxFile).orElse(null);
        Path stepFile = stepName == null ? null : dir.resolve(stepName);
        byte[] step = stepFile == null ? null : readGraph(dir, stepFile, "streaming.onnx_file", specFile);
        return new ModelBundle(spec, bytes, onnxFile.toString(), step, stepFile == null ? null : stepFile.toString());
    }

    private static byte[] readGraph(Path dir, Path file, String key, Path specFile) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("model bundle " + dir + " has no " + file.getFileName()
                    + " (the " + key + " named by " + specFile + ")");
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + file + ": " + e, e);
        }
        if (bytes.length == 0) {
            throw new IllegalArgumentException(file + " is empty");
        }
        return bytes;
    }

    /**
     * The bundle at {@code location}: null for the one packaged in the job jar; a local directory; or a URI that
     * Flink's file systems read (file://, s3://, hdfs://), so that a client without the model directory, or
     * application mode, can still submit.
     */
    public static ModelBundle locate(String location) {
        if (location == null) {
            return packaged();
        }
        URI uri = uriOf(location);
        if (uri == null || uri.getScheme() == null) {
            return load(Path.of(location));
        }
        if (uri.getScheme().equals("file")) {
            return load(Path.of(uri));
        }
        org.apache.flink.core.fs.Path dir = new org.apache.flink.core.fs.Path(uri);
        return fromFiles(location, name -> {
            org.apache.flink.core.fs.Path file = new org.apache.flink.core.fs.Path(dir, name);
            try (InputStream in = file.getFileSystem().open(file)) {
                return in.readAllBytes();
            } catch (FileNotFoundException e) {
                return null;
            }
        });
    }

    /**
     * Another file of the bundle at {@code location} (as {@link #locate} reads it), such as its golden vectors; null
     * when the bundle has no such file.
     *
     * @throws IllegalArgumentException if the location cannot be read
     */
    public static byte[] readFile(String location, String name) {
        try {
            if (location == null) {
                try (InputStream in = ModelBundle.class.getClassLoader().getResourceAsStream(PACKAGED + name)) {
                    return in == null ? null : in.readAllBytes();
                }
            }
            URI uri = uriOf(location);
            if (uri == null || uri.getScheme() == null || uri.getScheme().equals("file")) {
                Path file = (uri == null ? Path.of(location) : Path.of(uri)).resolve(name);
                return Files.isRegularFile(file) ? Files.readAllBytes(file) : null;
            }
            org.apache.flink.core.fs.Path file =
                    new org.apache.flink.core.fs.Path(new org.apache.flink.core.fs.Path(uri), name);
            try (InputStream in = file.getFileSystem().open(file)) {
                return in.readAllBytes();
            } catch (FileNotFoundException e) {
                return null;
            }
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + name + " of model bundle " + location + ": " + e, e);
        }
    }

    /** The bundle the build copied from {@code models/default} into the jar. */
    public static ModelBundle packaged() {
        ClassLoader loader = ModelBundle.class.getClassLoader();
        return fromFiles("the job jar's " + PACKAGED, name -> {
            try (InputStream in = loader.getResourceAsStream(PACKAGED + name)) {
                return in == null ? null : in.readAllBytes();
            }
        });
    }

    /** Reads a file of a bundle by name; null when it does not exist. */
    private interface FileSource {
        byte[] read(String name) throws IOException;
    }

    private static ModelBundle fromFiles(String where, FileSource files) {
        try {
            byte[] specBytes = files.read(SPEC_FILE);
            if (specBytes == null) {
                throw new IllegalArgumentException("model bundle " + where + " has no " + SPEC_FILE);
            }
            String specSource = where + "/" + SPEC_FILE;
            ModelSpec spec = ModelSpec.parse(new String(specBytes, StandardCharsets.UTF_8), specSource);
            byte[] bytes = readGraph(where, files, spec.onnxFile(), "onnx_file", specSource);
            String stepName = spec.streaming().map(ModelSpec.Streaming::onnxFile).orElse(null);
            byte[] step = stepName == null ? null
                    : readGraph(where, files, stepName, "streaming.onnx_file", specSource);
            return new ModelBundle(spec, bytes, where + "/" + spec.onnxFile(), step,
                    stepName == null ? null : where + "/" + stepName);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read model bundle " + where + ": " + e, e);
        }
    }

    private static byte[] readGraph(String where, FileSource files, String name, String key, String specSource)
            throws IOException {
        byte[] bytes = files.read(name);
        if (bytes == null) {
            throw new IllegalArgumentException("model bundle " + where + " has no " + name + " (the " + key
                    + " named by " + specSource + ")");
        }
        if (bytes.length == 0) {
            throw new IllegalArgumentException(where + "/" + name + " is empty");
        }
        return bytes;
    }

    private static URI uriOf(String location) {
        try {
            URI uri = new URI(location);
            // A Windows drive letter or a bare path is not a scheme worth a file system lookup.
            return uri.getScheme() != null && uri.getScheme().length() > 1 ? uri : null;
        } catch (URISyntaxException e) {
            return null;
        }
    }

    public ModelSpec spec() {
        return spec;
    }

    /** Where the windowed ONNX graph was read from, for messages. */
    public String onnxPath() {
        return onnxPath;
    }

    /** Where the graph that {@code scoring} serves was read from. */
    public String onnxPath(Scoring scoring) {
        return scoring == Scoring.INCREMENTAL ? stepOnnxPath() : onnxPath;
    }

    private String stepOnnxPath() {
        served(Scoring.INCREMENTAL); // throws the message naming the fix when there is no step graph
        return stepOnnxPath;
    }

    public int onnxSize() {
        return onnx.length;
    }

    /** Whether the bundle has a streaming model, so that it can serve {@link Scoring#INCREMENTAL}. */
    public boolean hasStreaming() {
        return stepOnnx != null;
    }

    /**
     * The parts of the model that {@code scoring} serves.
     *
     * @throws IllegalArgumentException naming the fix, for {@link Scoring#INCREMENTAL} on a bundle without a
     *                                  streaming model
     */
    public ModelSpec.Served served(Scoring scoring) {
        return spec.served(scoring);
    }

    /** The windowed ONNX graph's bytes, shared rather than copied: it may be megabytes, and sessions only read it. */
    byte[] onnxBytes() {
        return onnx;
    }

    /** The bytes of the graph that {@code scoring} serves, shared as {@link #onnxBytes()}. */
    byte[] onnxBytes(Scoring scoring) {
        if (scoring == Scoring.INCREMENTAL) {
            served(scoring);
            return stepOnnx;
        }
        return onnx;
    }

    /**
     * Opens an ONNX Runtime session on each graph (the windowed one, and the step graph if there is one), checks its
     * inputs and outputs against the spec, and closes it. Leaves nothing behind that would keep a job's class loader
     * alive: when ONNX Runtime came in the job jar (as when a JobManager runs the job's main()), its environment is
     * released again afterwards.
     *
     * @throws IllegalArgumentException if ONNX Runtime cannot load a graph, or a graph does not match the spec
     */
    public void validate() {
        OrtEnvironment env = OrtRuntime.acquire();
        String checking = onnxPath;
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            // Basic optimisation is enough to check loadability; the scorer applies ALL.
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.BASIC_OPT);
            options.setIntraOpNumThreads(1);
            for (Scoring scoring : hasStreaming() ? List.of(Scoring.WINDOWED, Scoring.INCREMENTAL)
                    : List.of(Scoring.WINDOWED)) {
                checking = onnxPath(scoring);
                try (OrtSession session = openSession(env, options, scoring)) {
                    checkSignature(session, scoring);
                }
            }
        } catch (OrtException e) {
            throw new IllegalArgumentException("ONNX Runtime failed while checking " + checking + ": "
                    + e.getMessage(), e);
        } finally {
            OrtRuntime.unused();
            JobUnload.releaseIfIdle();
        }
    }

    /** A session on the windowed graph; a graph ONNX Runtime cannot load becomes an exception naming the file. */
    OrtSession openSession(OrtEnvironment env, OrtSession.SessionOptions options) {
        return openSession(env, options, Scoring.WINDOWED);
    }

    /** A session on the graph that {@code scoring} serves. */
    OrtSession openSession(OrtEnvironment env, OrtSession.SessionOptions options, Scoring scoring) {
        byte[] graph = onnxBytes(scoring);
        try {
            return env.createSession(graph, options);
        } catch (OrtException e) {
            throw new IllegalArgumentException("ONNX Runtime cannot load " + onnxPath(scoring) + " (corrupt or not "
                    + "an ONNX model?): " + e.getMessage(), e);
        }
    }

    /** {@link #checkSignature(OrtSession, Scoring)} of the windowed graph. */
    void checkSignature(OrtSession session) throws OrtException {
        checkSignature(session, Scoring.WINDOWED);
    }

    /**
     * Fails unless the session's graph takes exactly the inputs the spec declares for {@code scoring} and yields (at
     * least) its outputs: the windowed model's probabilities, or the step graph's {@code scores} and
     * {@code state_out}.
     */
    void checkSignature(OrtSession session, Scoring scoring) throws OrtException {
        ModelSpec.Served served = served(scoring);
        String path = onnxPath(scoring);
        Map<String, NodeInfo> in = session.getInputInfo();
        Set<String> specInputs = new HashSet<>();
        for (ModelSpec.TensorSpec t : served.inputs()) {
            specInputs.add(t.name());
            check(path, in.get(t.name()), t, "input");
        }
        for (String name : in.keySet()) {
            if (!specInputs.contains(name)) {
                throw new IllegalArgumentException(path + " has input '" + name + "', which " + spec.source()
                        + " does not list" + (scoring == Scoring.INCREMENTAL ? " in streaming.inputs" : "")
                        + ", so the job cannot feed it");
            }
        }
        Map<String, NodeInfo> out = session.getOutputInfo();
        for (ModelSpec.TensorSpec o : served.graphOutputs()) {
            check(path, out.get(o.name()), o, "output");
        }
    }

    private void check(String path, NodeInfo node, ModelSpec.TensorSpec want, String kind) {
        if (node == null) {
            throw new IllegalArgumentException(path + " has no " + kind + " '" + want.name() + "' but "
                    + spec.source() + " lists it");
        }
        ValueInfo info = node.getInfo();
        if (!(info instanceof TensorInfo tensor)) {
            throw new IllegalArgumentException(path + " " + kind + " '" + want.name() + "' is " + info
                    + ", not a tensor");
        }
        OnnxJavaType wantType = switch (want.dtype()) {
            case "int64" -> OnnxJavaType.INT64;
            case "float32" -> OnnxJavaType.FLOAT;
            default -> throw new IllegalArgumentException(spec.source() + " " + kind + " '" + want.name()
                    + "' has dtype " + want.dtype() + ", which this job does not feed");
        };
        if (tensor.type != wantType) {
            throw new IllegalArgumentException(path + " " + kind + " '" + want.name() + "' has type "
                    + tensor.type + " but " + spec.source() + " says " + want.dtype());
        }
        long[] shape = tensor.getShape();
        boolean ok = shape.length == want.rank();
        for (int d = 0; ok && d < shape.length; d++) {
            // A named dimension in the spec must be dynamic in the graph: the job varies the batch size.
            ok = shape[d] == want.dim(d);
        }
        if (!ok) {
            throw new IllegalArgumentException(path + " " + kind + " '" + want.name() + "' has shape "
                    + Arrays.toString(shape) + " but " + spec.source() + " says " + want.shapeString());
        }
    }

    @Override
    public String toString() {
        return "ModelBundle{" + onnxPath + ", " + onnx.length + " bytes" + (stepOnnx == null ? ""
                : ", " + stepOnnxPath + ", " + stepOnnx.length + " bytes") + ", " + spec + "}";
    }

    /** The spec's output names, in order. */
    List<String> outputNames() {
        return spec.outputs().stream().map(ModelSpec.OutputSpec::name).toList();
    }
}
