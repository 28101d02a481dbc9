package dev.seqscore.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OrtEnvironment;
import dev.seqscore.avro.Alert;
import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.WindowEvent;
import dev.seqscore.model.unload.JobUnload;
import java.nio.file.Path;
import java.util.List;
import org.apache.avro.NameValidator;
import org.apache.avro.Schema;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * With ONNX Runtime, Avro and Jackson on the application class path, as in the demo, the backtest and the MiniCluster
 * tests, many jobs share them in one JVM: the release that a finished job's hook runs must leave them untouched, or
 * the next job would score on a freed environment. The private-copy side is {@link ClassLoaderReleaseITCase}.
 */
class ClassLoaderReleaseTest {
    @TempDir
    Path tmp;

    @Test
    void releaseLeavesSharedLibrariesAsTheyWere() {
        ModelBundle bundle = ModelBundle.load(TestBundles.tiny(tmp.resolve("b")));
        FeatureEncoder encoder = new FeatureEncoder(bundle.spec());
        FeatureBatch batch = encoder.newBatch(1);
        encoder.add(List.of(new WindowEvent("i", "c", 1, 1_511_539_200_000L)), batch);
        float[][] before;
        try (OnnxScorer scorer = new OnnxScorer(bundle)) {
            before = scorer.score(batch);
        }
        OrtEnvironment shared = OrtEnvironment.getEnvironment();
        new Schema.Parser().parse(Alert.getClassSchema().toString());
        NameValidator previous = Schema.getNameValidator();
        // Not the thread local's initial value, so that clearing it would show.
        Schema.setNameValidator(NameValidator.STRICT_VALIDATOR);
        try {
            assertThat(JobUnload.ortIsPrivateCopy()).isFalse();
            JobUnload.release();
            assertThat(JobUnload.releaseIfIdle()).isFalse();
            assertThat(JobUnload.clearThreadLocalCaches()).isZero();

            assertThat(OrtEnvironment.getEnvironment()).as("the shared environment was not replaced")
                    .isSameAs(shared);
            assertThat(Schema.getNameValidator()).as("Avro's thread local was not cleared")
                    .isSameAs(NameValidator.STRICT_VALIDATOR);
            try (OnnxScorer next = new OnnxScorer(bundle)) {
                assertThat(next.score(batch)).isDeepEqualTo(before);
            }
        } finally {
            Schema.setNameValidator(previous);
        }
    }
}
