package dev.seqscore.tools.bench;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The cost of one ONNX Runtime call of any graph at a given batch, with inputs of the graph's own shapes (ids 1,
 * small random floats; a dynamic dimension is the batch): for comparing two graphs' cost alone, such as the served
 * step graph and the K/V-cache probe ({@code bin/seqscore bench --kv-cache-probe}). One intra-op thread, as the job.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class GraphBenchmark {
    @Param({""})
    public String graph;

    @Param({"1", "64"})
    public int batch;

    private OrtEnvironment env;
    private OrtSession session;
    private Map<String, OnnxTensor> inputs;

    @Setup(Level.Trial)
    public void setUp() throws OrtException {
        env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(1);
            options.setInterOpNumThreads(1);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            session = env.createSession(graph, options);
        }
        SplittableRandom random = new SplittableRandom(7);
        inputs = new HashMap<>();
        for (Map.Entry<String, NodeInfo> e : session.getInputInfo().entrySet()) {
            TensorInfo info = (TensorInfo) e.getValue().getInfo();
            long[] shape = info.getShape().clone();
            long count = 1;
            for (int i = 0; i < shape.length; i++) {
                if (shape[i] < 0) {
                    shape[i] = batch;
                }
                count *= shape[i];
            }
            if (info.type == OnnxJavaType.INT64) {
                long[] ids = new long[(int) count];
                java.util.Arrays.fill(ids, 1L);
                inputs.put(e.getKey(), OnnxTensor.createTensor(env, LongBuffer.wrap(ids), shape));
            } else {
                float[] values = new float[(int) count];
                for (int i = 0; i < values.length; i++) {
                    values[i] = (float) (random.nextDouble() - 0.5);
                }
                inputs.put(e.getKey(), OnnxTensor.createTensor(env, FloatBuffer.wrap(values), shape));
            }
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws OrtException {
        for (OnnxTensor t : inputs.values()) {
            t.close();
        }
        session.close();
    }

    /** One call; the result is read (every output materialised) and closed, as the scorer does. */
    @Benchmark
    public float call() throws OrtException {
        try (OrtSession.Result r = session.run(inputs)) {
            return ((OnnxTensor) r.get(0)).getFloatBuffer().get(0);
        }
    }
}
