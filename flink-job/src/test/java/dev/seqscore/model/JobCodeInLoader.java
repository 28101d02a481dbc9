package dev.seqscore.model;

import dev.seqscore.avro.Alert;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.WindowEvent;
import dev.seqscore.model.unload.JobUnload;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.ObjectStreamClass;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.avro.Schema;

/**
 * What a JobManager and a TaskManager do with the job's classes, for {@link ClassLoaderReleaseITCase} to run inside
 * a class loader over the shaded jar. Each step is a {@link Callable} so that only JDK types cross the loader
 * boundary.
 */
public final class JobCodeInLoader {
    private JobCodeInLoader() {}

    /** The JobManager running the job's main(): load and validate the bundle. */
    public static final class Validate implements Callable<Object> {
        private final Path dir;

        public Validate(Path dir) {
            this.dir = dir;
        }

        @Override
        public Object call() {
            ModelBundle.load(dir).validate();
            return null;
        }
    }

    /** A scorer task's open(): a session on the bundle, used once; returned open. */
    public static final class OpenScorer implements Callable<AutoCloseable> {
        private final Path dir;

        public OpenScorer(Path dir) {
            this.dir = dir;
        }

        @Override
        public AutoCloseable call() {
            ModelBundle bundle = ModelBundle.load(dir);
            OnnxScorer scorer = new OnnxScorer(bundle);
            FeatureEncoder encoder = new FeatureEncoder(bundle.spec());
            FeatureBatch batch = encoder.newBatch(1);
            encoder.add(List.of(new WindowEvent("item", "category", 1, 1_511_539_200_000L)), batch);
            float[][] scores = scorer.score(batch);
            if (scores.length != bundle.spec().outputs().size() || scores[0].length != 1) {
                throw new IllegalStateException("scored " + scores.length + " outputs");
            }
            return scorer;
        }
    }

    /** What Flink's AvroSerializer does when it is deserialized: parse a schema on the calling thread. */
    public static final class ParseAvroSchema implements Callable<Object> {
        @Override
        public Object call() {
            return new Schema.Parser().parse(Alert.getClassSchema().toString()).getFullName();
        }
    }

    /** The JobMaster deserializing the job's operators: a copy of the bundle through Java serialization. */
    public static final class DeserializeBundle implements Callable<Object> {
        private final Path dir;

        public DeserializeBundle(Path dir) {
            this.dir = dir;
        }

        @Override
        public Object call() throws IOException, ClassNotFoundException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
                out.writeObject(ModelBundle.load(dir));
            }
            try (ObjectInputStream in = new LoaderObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
                return in.readObject();
            }
        }
    }

    /** Flink's user-code class loader release hook, as the scorer registers it. */
    public static final class Release implements Callable<Object> {
        @Override
        public Object call() {
            JobUnload.release();
            return null;
        }
    }

    /** Resolves classes in this class's loader, as Flink's deserialization does with the user-code loader. */
    private static final class LoaderObjectInputStream extends ObjectInputStream {
        LoaderObjectInputStream(InputStream in) throws IOException {
            super(in);
        }

        @Override
        protected Class<?> resolveClass(ObjectStreamClass desc) throws ClassNotFoundException {
            return Class.forName(desc.getName(), false, JobCodeInLoader.class.getClassLoader());
        }
    }
}
