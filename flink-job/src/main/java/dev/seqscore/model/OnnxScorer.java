package dev.seqscore.model;

import dev.seqscore.features.Scoring;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.ModelSpec;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Runs one of the bundle's ONNX models on a {@link FeatureBatch}: one ONNX Runtime session per task, created in
 * {@code open()} and closed in {@code close()}. A single event is a batch of one. {@link Scoring#WINDOWED} runs the
 * windowed graph; {@link Scoring#INCREMENTAL} the step graph, which also reads the batch's lifetime and state rows and
 * writes each row's next state into {@link FeatureBatch#stateOut}.
 *
 * <p>Feeds the batch through reusable direct buffers (ONNX Runtime reads them in place) with the batch's row count as
 * dimension 0. The step graph also writes its two outputs into reusable direct buffers (ORT's pinned outputs): no
 * output allocation in ORT and no copy into a fresh Java buffer per call (docs/benchmarks.md, "Streaming model").
 * Not thread-safe.
 */
public final class OnnxScorer implements AutoCloseable {
    private final ModelSpec spec;
    private final ModelSpec.Served served;
    private final boolean incremental;
    private final OrtEnvironment env;
    private final OrtSession session;
    private final List<String> outputNames;
    private final Set<String> requestedOutputs;
    private final int n;
    private final int s;
    private final int p;
    private final int f;
    private final int z;

    private boolean closed;
    private int bufferRows;
    private LongBuffer eventType;
    private LongBuffer itemBucket;
    private LongBuffer categoryBucket;
    private FloatBuffer seqNumeric;
    private FloatBuffer mask;
    private FloatBuffer profile;
    private FloatBuffer lifetime;
    private FloatBuffer state;
    /** The step graph's pinned outputs: [rows, O] scores and [rows, Z] next states. */
    private FloatBuffer scoresOut;
    private FloatBuffer stateOut;

    /** A windowed scorer with one intra-op thread: Flink's parallelism, not ONNX Runtime's, should use the cores. */
    public OnnxScorer(ModelBundle bundle) {
        this(bundle, Scoring.WINDOWED, 1);
    }

    /** A scorer of the windowed graph. */
    public OnnxScorer(ModelBundle bundle, int intraOpThreads) {
        this(bundle, Scoring.WINDOWED, intraOpThreads);
    }

    /**
     * @throws IllegalArgumentException if the bundle has no model for {@code scoring} (the message names the fix),
     *                                  ONNX Runtime cannot load the graph or it does not match the spec
     */
    public OnnxScorer(ModelBundle bundle, Scoring scoring, int intraOpThreads) {
        if (intraOpThreads <= 0) {
            throw new IllegalArgumentException("intraOpThreads must be positive, got " + intraOpThreads);
        }
        this.spec = bundle.spec();
        this.served = bundle.served(scoring);
        this.incremental = served.incremental();
        this.n = spec.maxEvents();
        this.s = spec.sequenceFeatures().size();
        this.p = spec.profileFeatures().size();
        this.f = served.lifetimeFeatures().size();
        this.z = served.stateSize();
        this.outputNames = served.outputNames();
        this.requestedOutputs = new LinkedHashSet<>(outputNames); // the windowed graph's; the step graph's are pinned
        this.env = OrtRuntime.acquire();
        try {
            this.session = openChecked(bundle, scoring, env, intraOpThreads);
        } catch (RuntimeException e) {
            OrtRuntime.unused();
            throw e;
        }
    }

    private static OrtSession openChecked(ModelBundle bundle, Scoring scoring, OrtEnvironment env,
                                          int intraOpThreads) {
        OrtSession opened;
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(intraOpThreads);
            options.setInterOpNumThreads(1);
            options.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            opened = bundle.openSession(env, options, scoring);
        } catch (OrtException e) {
            throw new IllegalArgumentException("cannot configure an ONNX Runtime session for "
                    + bundle.onnxPath(scoring) + ": " + e.getMessage(), e);
        }
        try {
            bundle.checkSignature(opened, scoring);
        } catch (RuntimeException | OrtException e) {
            closeQuietly(opened, e);
            if (e instanceof RuntimeException re) throw re;
            throw new IllegalArgumentException("cannot read the signature of " + bundle.onnxPath(scoring) + ": "
                    + e.getMessage(), e);
        }
        return opened;
    }

    private static void closeQuietly(OrtSession session, Exception cause) {
        try {
            session.close();
        } catch (OrtException suppressed) {
            cause.addSuppressed(suppressed);
        }
    }

    public ModelSpec spec() {
        return spec;
    }

    /** The model this scorer runs. */
    public ModelSpec.Served served() {
        return served;
    }

    /** Output names in spec order: the first index of {@link #score(FeatureBatch)}'s result. */
    public List<String> outputNames() {
        return outputNames;
    }

    /** Scores the batch's rows: {@code result[output][row]}, outputs in spec order, each of length {@code size}. */
    public float[][] score(FeatureBatch batch) {
        float[][] out = new float[outputNames.size()][batch.size];
        score(batch, out);
        return out;
    }

    /**
     * Scores the batch's rows into {@code into[output][row]} for rows {@code [0, batch.size)}; each
     * {@code into[output]} must have at least {@code batch.size} entries. Lets a caller reuse its result arrays. The
     * step graph also writes each scored row's next state into {@code batch.stateOut}.
     */
    public void score(FeatureBatch batch, float[][] into) {
        int rows = batch.size;
        checkShapes(batch, into, rows);
        if (rows == 0) {
            return;
        }
        ensureBuffers(batch.capacity);
        long[] seqShape = {rows, n};
        OnnxTensor[] tensors = new OnnxTensor[incremental ? 10 : 6];
        try {
            tensors[0] = OnnxTensor.createTensor(env, fill(eventType, batch.eventType, rows * n), seqShape);
            tensors[1] = OnnxTensor.createTensor(env, fill(itemBucket, batch.itemBucket, rows * n), seqShape);
            tensors[2] = OnnxTensor.createTensor(env, fill(categoryBucket, batch.categoryBucket, rows * n), seqShape);
            tensors[3] = OnnxTensor.createTensor(env, fill(seqNumeric, batch.seqNumeric, rows * n * s),
                    new long[] {rows, n, s});
            tensors[4] = OnnxTensor.createTensor(env, fill(mask, batch.mask, rows * n), seqShape);
            tensors[5] = OnnxTensor.createTensor(env, fill(profile, batch.profile, rows * p), new long[] {rows, p});
            if (incremental) {
                tensors[6] = OnnxTensor.createTensor(env, fill(lifetime, batch.lifetime, rows * f),
                        new long[] {rows, f});
                tensors[7] = OnnxTensor.createTensor(env, fill(state, batch.state, rows * z), new long[] {rows, z});
                int outputs = outputNames.size();
                tensors[8] = OnnxTensor.createTensor(env, cut(scoresOut, rows * outputs), new long[] {rows, outputs});
                tensors[9] = OnnxTensor.createTensor(env, cut(stateOut, rows * z), new long[] {rows, z});
                Map<String, OnnxTensor> inputs = Map.of("event_type", tensors[0], "item_bucket", tensors[1],
                        "category_bucket", tensors[2], "seq_numeric", tensors[3], "mask", tensors[4],
                        "profile", tensors[5], ModelSpec.LIFETIME_INPUT, tensors[6], ModelSpec.STATE_INPUT, tensors[7]);
                // The pinned values stay ours: closing the result does not close them, the finally block does.
                try (OrtSession.Result ignored = session.run(inputs,
                        Map.of(ModelSpec.SCORES_OUTPUT, tensors[8], ModelSpec.STATE_OUTPUT, tensors[9]))) {
                    readStep(batch, into, rows);
                }
            } else {
                Map<String, OnnxTensor> inputs = Map.of("event_type", tensors[0], "item_bucket", tensors[1],
                        "category_bucket", tensors[2], "seq_numeric", tensors[3], "mask", tensors[4],
                        "profile", tensors[5]);
                try (OrtSession.Result result = session.run(inputs, requestedOutputs)) {
                    readWindowed(result, into, rows);
                }
            }
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime failed scoring " + rows + " rows with model "
                    + served.modelVersion() + ": " + e.getMessage(), e);
        } finally {
            for (OnnxTensor t : tensors) {
                if (t != null) {
                    t.close();
                }
            }
        }
    }

    private void checkShapes(FeatureBatch batch, float[][] into, int rows) {
        if (batch.maxEvents != n || batch.sequenceFeatures != s || batch.profileFeatures != p
                || (incremental && (batch.lifetimeFeatures != f || batch.stateSize != z))) {
            throw new IllegalArgumentException("feature batch is shaped N=" + batch.maxEvents + ", S="
                    + batch.sequenceFeatures + ", P=" + batch.profileFeatures
                    + (incremental ? ", F=" + batch.lifetimeFeatures + ", Z=" + batch.stateSize : "")
                    + " but the model needs N=" + n + ", S=" + s + ", P=" + p
                    + (incremental ? ", F=" + f + ", Z=" + z : ""));
        }
        if (into.length != outputNames.size()) {
            throw new IllegalArgumentException("need " + outputNames.size() + " result arrays, got " + into.length);
        }
        for (float[] o : into) {
            if (o.length < rows) {
                throw new IllegalArgumentException("result array of " + o.length + " for " + rows + " rows");
            }
        }
    }

    private void readWindowed(OrtSession.Result result, float[][] into, int rows) {
        for (int o = 0; o < outputNames.size(); o++) {
            FloatBuffer scores = output(result, outputNames.get(o), rows);
            scores.get(into[o], 0, rows);
        }
    }

    /** The pinned {@code scores} [rows, O] transposed into {@code into[o][row]}; {@code state_out} into the batch. */
    private void readStep(FeatureBatch batch, float[][] into, int rows) {
        int outputs = outputNames.size();
        for (int row = 0; row < rows; row++) {
            for (int o = 0; o < outputs; o++) {
                into[o][row] = scoresOut.get(row * outputs + o);
            }
        }
        stateOut.get(0, batch.stateOut, 0, rows * z);
    }

    private static FloatBuffer output(OrtSession.Result result, String name, int values) {
        OnnxValue value = result.get(name).orElseThrow(() ->
                new IllegalStateException("ONNX Runtime returned no output '" + name + "'"));
        FloatBuffer buffer = ((OnnxTensor) value).getFloatBuffer();
        if (buffer.remaining() != values) {
            throw new IllegalStateException("output '" + name + "' has " + buffer.remaining() + " values where "
                    + values + " were expected");
        }
        return buffer;
    }

    private void ensureBuffers(int rows) {
        if (rows <= bufferRows) {
            return;
        }
        eventType = directLongs(rows * n);
        itemBucket = directLongs(rows * n);
        categoryBucket = directLongs(rows * n);
        seqNumeric = directFloats(rows * n * s);
        mask = directFloats(rows * n);
        profile = directFloats(rows * p);
        lifetime = directFloats(rows * f);
        state = directFloats(rows * z);
        scoresOut = directFloats(incremental ? rows * outputNames.size() : 0);
        stateOut = directFloats(rows * z);
        bufferRows = rows;
    }

    private static LongBuffer directLongs(int count) {
        return ByteBuffer.allocateDirect(count * Long.BYTES).order(ByteOrder.nativeOrder()).asLongBuffer();
    }

    private static FloatBuffer directFloats(int count) {
        return ByteBuffer.allocateDirect(count * Float.BYTES).order(ByteOrder.nativeOrder()).asFloatBuffer();
    }

    private static LongBuffer fill(LongBuffer buffer, long[] data, int count) {
        // The tensor's element count must equal remaining(), so the buffer is cut to exactly the used rows.
        buffer.clear();
        buffer.put(data, 0, count);
        buffer.flip();
        return buffer;
    }

    /** The buffer's first {@code count} values: a pinned output's element count must equal its shape's. */
    private static FloatBuffer cut(FloatBuffer buffer, int count) {
        buffer.clear();
        buffer.limit(count);
        return buffer;
    }

    private static FloatBuffer fill(FloatBuffer buffer, float[] data, int count) {
        buffer.clear();
        buffer.put(data, 0, count);
        buffer.flip();
        return buffer;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        // The environment is shared by every scorer of this copy of ORT, so only the session closes; the environment
        // goes with the class loader (model.unload.JobUnload).
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException("cannot close the ONNX Runtime session: " + e.getMessage(), e);
        } finally {
            OrtRuntime.unused();
        }
    }
}
