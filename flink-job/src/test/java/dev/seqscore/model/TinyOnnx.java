package dev.seqscore.model;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Writes a tiny ONNX model in the contract's signature (protobuf by hand: the build has no ONNX library), so the
 * scorer and the bundle checks can be tested without the trained bundle; {@link #stepModel} is a step graph of the
 * streaming model. Its outputs are simple enough to recompute:
 * <pre>
 *   purchase_30m = sigmoid(mean(profile, axis 1) + mean(seq_numeric, axes 1, 2))
 *   churn_24h    = sigmoid(0.2 * mean((event_type + 0.001 item_bucket + 0.0003 category_bucket) * mask, axis 1))
 * </pre>
 */
final class TinyOnnx {
    private static final int FLOAT = 1, INT64 = 7;

    private TinyOnnx() {}

    /** The model for N, S, P, with {@code maskLength} as mask's static second dimension (normally N). */
    static byte[] model(int n, int s, int p, int maskLength, String maskName) {
        Proto graph = new Proto();
        graph.msg(1, node("Cast", new String[] {"event_type"}, "et", intAttr("to", FLOAT)));
        graph.msg(1, node("Cast", new String[] {"item_bucket"}, "ib", intAttr("to", FLOAT)));
        graph.msg(1, node("Cast", new String[] {"category_bucket"}, "cb", intAttr("to", FLOAT)));
        graph.msg(1, node("Mul", new String[] {"ib", "k"}, "ibk"));
        graph.msg(1, node("Mul", new String[] {"cb", "k3"}, "cbk"));
        graph.msg(1, node("Add", new String[] {"et", "ibk"}, "ids1"));
        graph.msg(1, node("Add", new String[] {"ids1", "cbk"}, "ids"));
        graph.msg(1, node("Mul", new String[] {"ids", maskName}, "masked"));
        graph.msg(1, node("ReduceMean", new String[] {"masked"}, "mm", intsAttr("axes", 1), intAttr("keepdims", 0)));
        graph.msg(1, node("Mul", new String[] {"mm", "k2"}, "churn_logit"));
        graph.msg(1, node("Sigmoid", new String[] {"churn_logit"}, "churn_24h"));
        graph.msg(1, node("ReduceMean", new String[] {"profile"}, "pm", intsAttr("axes", 1), intAttr("keepdims", 0)));
        graph.msg(1, node("ReduceMean", new String[] {"seq_numeric"}, "sm", intsAttr("axes", 1, 2),
                intAttr("keepdims", 0)));
        graph.msg(1, node("Add", new String[] {"pm", "sm"}, "purchase_logit"));
        graph.msg(1, node("Sigmoid", new String[] {"purchase_logit"}, "purchase_30m"));
        graph.str(2, "tiny");
        graph.msg(5, scalar("k", 0.001f));
        graph.msg(5, scalar("k2", 0.2f));
        graph.msg(5, scalar("k3", 0.0003f));
        graph.msg(11, valueInfo("event_type", INT64, "batch", n));
        graph.msg(11, valueInfo("item_bucket", INT64, "batch", n));
        graph.msg(11, valueInfo("category_bucket", INT64, "batch", n));
        graph.msg(11, valueInfo("seq_numeric", FLOAT, "batch", n, s));
        graph.msg(11, valueInfo(maskName, FLOAT, "batch", maskLength));
        graph.msg(11, valueInfo("profile", FLOAT, "batch", p));
        graph.msg(12, valueInfo("purchase_30m", FLOAT, "batch"));
        graph.msg(12, valueInfo("churn_24h", FLOAT, "batch"));

        return modelOf(graph);
    }

    private static byte[] modelOf(Proto graph) {
        Proto opset = new Proto();
        opset.str(1, "");
        opset.varint(2, 17);
        Proto model = new Proto();
        model.varint(1, 8);
        model.str(2, "seqscore-tests");
        model.msg(7, graph);
        model.msg(8, opset);
        return model.bytes();
    }

    static byte[] model(int n, int s, int p) {
        return model(n, s, p, n, "mask");
    }

    /**
     * A step graph in the streaming model's signature (the six inputs, {@code lifetime} [batch, F], {@code state}
     * [batch, Z] to {@code scores} [batch, 2] and {@code state_out} [batch, Z]), with {@code stateName} and
     * {@code stateOutName} as the names of the state's input and output (normally "state" and "state_out"):
     * <pre>
     *   purchase  = sigmoid(mean(profile) + mean(seq_numeric) + mean(lifetime) + mean(state))
     *   churn     = sigmoid(0.2 * mean((event_type + 0.001 item_bucket + 0.0003 category_bucket) * mask) - mean(state))
     *   state_out = tanh(0.5 * state + mean(lifetime) + w),  w[k] = 0.1 (k + 1) - 0.2
     * </pre>
     */
    static byte[] stepModel(int n, int s, int p, int f, int z, String stateName, String stateOutName) {
        Proto graph = new Proto();
        graph.msg(1, node("Cast", new String[] {"event_type"}, "et", intAttr("to", FLOAT)));
        graph.msg(1, node("Cast", new String[] {"item_bucket"}, "ib", intAttr("to", FLOAT)));
        graph.msg(1, node("Cast", new String[] {"category_bucket"}, "cb", intAttr("to", FLOAT)));
        graph.msg(1, node("Mul", new String[] {"ib", "k"}, "ibk"));
        graph.msg(1, node("Mul", new String[] {"cb", "k3"}, "cbk"));
        graph.msg(1, node("Add", new String[] {"et", "ibk"}, "ids1"));
        graph.msg(1, node("Add", new String[] {"ids1", "cbk"}, "ids"));
        graph.msg(1, node("Mul", new String[] {"ids", "mask"}, "masked"));
        graph.msg(1, node("ReduceMean", new String[] {"masked"}, "mm", intsAttr("axes", 1), intAttr("keepdims", 1)));
        graph.msg(1, node("ReduceMean", new String[] {"profile"}, "pm", intsAttr("axes", 1), intAttr("keepdims", 1)));
        graph.msg(1, node("ReduceMean", new String[] {"seq_numeric"}, "sm1", intsAttr("axes", 2),
                intAttr("keepdims", 0)));
        graph.msg(1, node("ReduceMean", new String[] {"sm1"}, "sm", intsAttr("axes", 1), intAttr("keepdims", 1)));
        graph.msg(1, node("ReduceMean", new String[] {"lifetime"}, "lm", intsAttr("axes", 1), intAttr("keepdims", 1)));
        graph.msg(1, node("ReduceMean", new String[] {stateName}, "stm", intsAttr("axes", 1),
                intAttr("keepdims", 1)));
        graph.msg(1, node("Add", new String[] {"pm", "sm"}, "pl1"));
        graph.msg(1, node("Add", new String[] {"pl1", "lm"}, "pl2"));
        graph.msg(1, node("Add", new String[] {"pl2", "stm"}, "pl"));
        graph.msg(1, node("Sigmoid", new String[] {"pl"}, "purchase"));
        graph.msg(1, node("Mul", new String[] {"mm", "k2"}, "cl1"));
        graph.msg(1, node("Sub", new String[] {"cl1", "stm"}, "cl"));
        graph.msg(1, node("Sigmoid", new String[] {"cl"}, "churn"));
        graph.msg(1, node("Concat", new String[] {"purchase", "churn"}, "scores", intAttr("axis", 1)));
        graph.msg(1, node("Mul", new String[] {stateName, "half"}, "hs1"));
        graph.msg(1, node("Add", new String[] {"hs1", "lm"}, "hs2"));
        graph.msg(1, node("Add", new String[] {"hs2", "w"}, "hs"));
        graph.msg(1, node("Tanh", new String[] {"hs"}, stateOutName));
        graph.str(2, "tiny-step");
        graph.msg(5, scalar("k", 0.001f));
        graph.msg(5, scalar("k2", 0.2f));
        graph.msg(5, scalar("k3", 0.0003f));
        graph.msg(5, scalar("half", 0.5f));
        float[] w = new float[z];
        for (int i = 0; i < z; i++) w[i] = stepWeight(i);
        graph.msg(5, vector("w", w));
        graph.msg(11, valueInfo("event_type", INT64, "batch", n));
        graph.msg(11, valueInfo("item_bucket", INT64, "batch", n));
        graph.msg(11, valueInfo("category_bucket", INT64, "batch", n));
        graph.msg(11, valueInfo("seq_numeric", FLOAT, "batch", n, s));
        graph.msg(11, valueInfo("mask", FLOAT, "batch", n));
        graph.msg(11, valueInfo("profile", FLOAT, "batch", p));
        graph.msg(11, valueInfo("lifetime", FLOAT, "batch", f));
        graph.msg(11, valueInfo(stateName, FLOAT, "batch", z));
        graph.msg(12, valueInfo("scores", FLOAT, "batch", 2));
        graph.msg(12, valueInfo(stateOutName, FLOAT, "batch", z));
        return modelOf(graph);
    }

    static byte[] stepModel(int n, int s, int p, int f, int z) {
        return stepModel(n, s, p, f, z, "state", "state_out");
    }

    private static float stepWeight(int k) {
        return 0.1f * (k + 1) - 0.2f;
    }

    /**
     * {@link #stepModel}'s formula in double for one row of a streaming batch: {@code [purchase, churn, state_out...]}.
     */
    static double[] expectedStep(dev.seqscore.features.FeatureBatch b, int row) {
        int n = b.maxEvents, s = b.sequenceFeatures, p = b.profileFeatures, f = b.lifetimeFeatures, z = b.stateSize;
        double pm = 0;
        for (int i = 0; i < p; i++) pm += b.profile[row * p + i];
        double sm = 0;
        for (int i = 0; i < n * s; i++) sm += b.seqNumeric[row * n * s + i];
        double mm = 0;
        for (int i = 0; i < n; i++) {
            int j = row * n + i;
            mm += (b.eventType[j] + 0.001 * b.itemBucket[j] + 0.0003 * b.categoryBucket[j]) * b.mask[j];
        }
        double lm = 0;
        for (int i = 0; i < f; i++) lm += b.lifetime[row * f + i];
        lm /= f;
        double stm = 0;
        for (int i = 0; i < z; i++) stm += b.state[row * z + i];
        stm /= z;
        double[] out = new double[2 + z];
        out[0] = sigmoid(pm / p + sm / (n * s) + lm + stm);
        out[1] = sigmoid(0.2 * mm / n - stm);
        for (int i = 0; i < z; i++) {
            out[2 + i] = Math.tanh(0.5 * b.state[row * z + i] + lm + stepWeight(i));
        }
        return out;
    }

    /** The formula above, in double, for one row of the batch arrays. */
    static double[] expected(long[] et, long[] ib, long[] cb, float[] seq, float[] mask, float[] prof, int row,
                             int n, int s, int p) {
        double pm = 0;
        for (int i = 0; i < p; i++) pm += prof[row * p + i];
        double sm = 0;
        for (int i = 0; i < n * s; i++) sm += seq[row * n * s + i];
        double mm = 0;
        for (int i = 0; i < n; i++) {
            int j = row * n + i;
            mm += (et[j] + 0.001 * ib[j] + 0.0003 * cb[j]) * mask[j];
        }
        return new double[] {sigmoid(pm / p + sm / (n * s)), sigmoid(0.2 * mm / n)};
    }

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    private static Proto node(String op, String[] inputs, String output, Proto... attributes) {
        Proto node = new Proto();
        for (String in : inputs) node.str(1, in);
        node.str(2, output);
        node.str(3, output + "_node");
        node.str(4, op);
        for (Proto a : attributes) node.msg(5, a);
        return node;
    }

    private static Proto intAttr(String name, long value) {
        Proto a = new Proto();
        a.str(1, name);
        a.varint(3, value);
        a.varint(20, 2);
        return a;
    }

    private static Proto intsAttr(String name, long... values) {
        Proto a = new Proto();
        a.str(1, name);
        for (long v : values) a.varint(8, v);
        a.varint(20, 7);
        return a;
    }

    private static Proto scalar(String name, float value) {
        Proto t = new Proto();
        t.varint(2, FLOAT);
        Proto data = new Proto();
        int bits = Float.floatToIntBits(value);
        for (int i = 0; i < 4; i++) data.out.write((bits >>> (8 * i)) & 0xff);
        t.msg(4, data);
        t.str(8, name);
        return t;
    }

    private static Proto vector(String name, float... values) {
        Proto t = new Proto();
        t.varint(1, values.length);
        t.varint(2, FLOAT);
        Proto data = new Proto();
        for (float v : values) {
            int bits = Float.floatToIntBits(v);
            for (int i = 0; i < 4; i++) data.out.write((bits >>> (8 * i)) & 0xff);
        }
        t.msg(4, data);
        t.str(8, name);
        return t;
    }

    /** Dimensions: a String is a symbolic dimension, an Integer a static one. */
    private static Proto valueInfo(String name, int elemType, Object... dims) {
        Proto shape = new Proto();
        for (Object d : dims) {
            Proto dim = new Proto();
            if (d instanceof String param) dim.str(2, param);
            else dim.varint(1, (Integer) d);
            shape.msg(1, dim);
        }
        Proto tensor = new Proto();
        tensor.varint(1, elemType);
        tensor.msg(2, shape);
        Proto type = new Proto();
        type.msg(1, tensor);
        Proto vi = new Proto();
        vi.str(1, name);
        vi.msg(2, type);
        return vi;
    }

    /** Just enough of the protobuf wire format: varints and length-delimited fields. */
    private static final class Proto {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        void rawVarint(long v) {
            while ((v & ~0x7fL) != 0) {
                out.write((int) ((v & 0x7f) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
        }

        void varint(int field, long v) {
            rawVarint((long) field << 3);
            rawVarint(v);
        }

        void bytes(int field, byte[] b) {
            rawVarint(((long) field << 3) | 2);
            rawVarint(b.length);
            out.writeBytes(b);
        }

        void str(int field, String s) {
            bytes(field, s.getBytes(StandardCharsets.UTF_8));
        }

        void msg(int field, Proto m) {
            bytes(field, m.bytes());
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }
}
