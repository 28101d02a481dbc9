package dev.seqscore.model;

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
 * Runs the bundle's ONNX model on a {@link FeatureBatch}: one ONNX Runtime session per task, created in
 * {@code open()} and closed in {@code close()}. A single event is a batch of one.
 *
 * <p>Feeds the batch through reusable direct buffers (ONNX Runtime reads them in place) with the batch's row count as
 * dimension 0. Not thread-safe.
 */
public final class OnnxScorer implements AutoCloseable {
    private final ModelSpec spec;
    private final OrtEnvironment env;
    private final OrtSession session;
    private final List<String> outputNames;
    private final Set<String> requestedOutputs;
    private final int n;
    private final int s;
    private final int p;

    private boolean closed;
    private int bufferRows;
    private LongBuffer eventType;
    private LongBuffer itemBucket;
    private LongBuffer categoryBucket;
    private FloatBuffer seqNumeric;
    private FloatBuffer mask;
    private FloatBuffer profile;

    /** A scorer with one intra-op thread: Flink's parallelism, not ONNX Runtime's, should use the cores. */
    public OnnxScorer(ModelBundle bundle) {
        this(bundle, 1);
    }

    /**
     * @throws IllegalArgumentException if ONNX Runtime cannot load the graph or it does not match the spec
     */
    public OnnxScorer(ModelBundle bundle, int intraOpThreads) {
        if (intraOpThreads <= 0) {
            throw new IllegalArgumentException("intraOpThreads must be positive, got " + intraOpThreads);
        }
        this.spec = bundle.spec();
        this.n = spec.maxEvents();
        this.s = spec.sequenceFeatures().size();
        this.p = spec.profileFeatures().size();
        this.outputNames = bundle.outputNames();
        this.requestedOutputs = new LinkedHashSet<>(outputNames);
        this.env = OrtRuntime.acquire();
        try {
            this.session = openChecked(bundle, env, intraOpThreads);
        } catch (RuntimeException e) {
            OrtRuntime.unused();
            throw e;
        }
    }

    private static OrtSession openChecked(ModelBundle bundle, OrtEnvironment env, int intraOpThreads) {
        OrtSession opened;
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(intraOpThreads);
            options.setInterOpNumThreads(1);
            options.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            opened = bundle.openSession(env, options);
        } catch (OrtException e) {
            throw new IllegalArgumentException("cannot configure an ONNX Runtime session for " + bundle.onnxPath()
                    + ": " + e.getMessage(), e);
        }
        try {
            bundle.checkSignature(opened);
        } catch (RuntimeException | OrtException e) {
            closeQuietly(opened, e);
            if (e instanceof RuntimeException re) throw re;
            throw new IllegalArgumentException("cannot read the signature of " + bundle.onnxPath() + ": "
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
     * {@code into[output]} must have at least {@code batch.size} entries. Lets a caller reuse its result arrays.
     */
    public void score(FeatureBatch batch, float[][] into) {
        int rows = batch.size;
        if (batch.maxEvents != n || batch.sequenceFeatures != s || batch.profileFeatures != p) {
            throw new IllegalArgumentException("feature batch is shaped N=" + batch.maxEvents + ", S="
                    + batch.sequenceFeatures + ", P=" + batch.profileFeatures + " but the model needs N=" + n
                    + ", S=" + s + ", P=" + p);
        }
        if (into.length != outputNames.size()) {
            throw new IllegalArgumentException("need " + outputNames.size() + " result arrays, got " + into.length);
        }
        for (float[] o : into) {
            if (o.length < rows) {
                throw new IllegalArgumentException("result array of " + o.length + " for " + rows + " rows");
            }
        }
        if (rows == 0) {
            return;
        }
        ensureBuffers(batch.capacity);
        long[] seqShape = {rows, n};
        try (OnnxTensor et = OnnxTensor.createTensor(env, fill(eventType, batch.eventType, rows * n), seqShape);
             OnnxTensor ib = OnnxTensor.createTensor(env, fill(itemBucket, batch.itemBucket, rows * n), seqShape);
             OnnxTensor cb = OnnxTensor.createTensor(env, fill(categoryBucket, batch.categoryBucket, rows * n),
                     seqShape);
             OnnxTensor sq = OnnxTensor.createTensor(env, fill(seqNumeric, batch.seqNumeric, rows * n * s),
                     new long[] {rows, n, s});
             OnnxTensor mk = OnnxTensor.createTensor(env, fill(mask, batch.mask, rows * n), seqShape);
             OnnxTensor pr = OnnxTensor.createTensor(env, fill(profile, batch.profile, rows * p),
                     new long[] {rows, p});
             OrtSession.Result result = session.run(Map.of("event_type", et, "item_bucket", ib,
                     "category_bucket", cb, "seq_numeric", sq, "mask", mk, "profile", pr), requestedOutputs)) {
            for (int o = 0; o < outputNames.size(); o++) {
                String name = outputNames.get(o);
                OnnxValue value = result.get(name).orElseThrow(() ->
                        new IllegalStateException("ONNX Runtime returned no output '" + name + "'"));
                FloatBuffer scores = ((OnnxTensor) value).getFloatBuffer();
                if (scores.remaining() != rows) {
                    throw new IllegalStateException("output '" + name + "' has " + scores.remaining()
                            + " values for " + rows + " rows");
                }
                scores.get(into[o], 0, rows);
            }
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime failed scoring " + rows + " rows with model "
                    + spec.modelVersion() + ": " + e.getMessage(), e);
        }
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
        // goes with the class loader (ClassLoaderRelease).
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException("cannot close the ONNX Runtime session: " + e.getMessage(), e);
        } finally {
            OrtRuntime.unused();
        }
    }
}
