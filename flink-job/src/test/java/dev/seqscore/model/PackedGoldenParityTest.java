package dev.seqscore.model;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.features.FeatureBatch;
import dev.seqscore.features.FeatureEncoder;
import dev.seqscore.features.GoldenHistories;
import dev.seqscore.features.ModelSpec;
import dev.seqscore.features.PackedWindow;
import dev.seqscore.features.WindowEvent;
import dev.seqscore.features.WindowRule;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The window the scorer keeps in state encodes exactly as the one {@link GoldenParityTest} proves against Python:
 * for every line of {@code golden.jsonl}, the history appended one event at a time to a {@link PackedWindow} (each
 * append on a fresh view of the stored bytes, as the operator does) gives the same six tensors, bit for bit, as
 * {@link WindowRule#windowEndingAt} over the history.
 */
class PackedGoldenParityTest {
    @Test
    void packedWindowsEncodeLikeTheGoldenWindows() throws IOException {
        Path dir = TestBundles.defaultBundle();
        ModelSpec spec = ModelBundle.load(dir).spec();
        FeatureEncoder encoder = new FeatureEncoder(spec);
        FeatureBatch fromList = encoder.newBatch(1);
        FeatureBatch fromPacked = encoder.newBatch(1);
        int lines = 0;
        for (List<WindowEvent> history : GoldenHistories.read(dir.resolve("golden.jsonl"), spec)) {
            lines++;
            byte[] stored = null;
            PackedWindow view = PackedWindow.forSpec(spec, spec.maxEvents(), spec.horizonMs());
            for (WindowEvent e : history) {
                view.wrap(stored == null ? null : stored.clone());
                view.append(e.itemId, e.categoryId, e.typeId, e.eventTime);
                stored = view.bytes();
            }
            fromList.clear();
            fromPacked.clear();
            encoder.add(WindowRule.windowEndingAt(history, spec.maxEvents(), spec.horizonMs()), fromList);
            encoder.add(view.wrap(stored), fromPacked);
            String at = "golden line " + lines;
            assertThat(fromPacked.eventType).as(at).containsExactly(fromList.eventType);
            assertThat(fromPacked.itemBucket).as(at).containsExactly(fromList.itemBucket);
            assertThat(fromPacked.categoryBucket).as(at).containsExactly(fromList.categoryBucket);
            assertThat(fromPacked.mask).as(at).containsExactly(fromList.mask);
            assertThat(fromPacked.seqNumeric).as(at).containsExactly(fromList.seqNumeric);
            assertThat(fromPacked.profile).as(at).containsExactly(fromList.profile);
        }
        assertThat(lines).isGreaterThanOrEqualTo(200);
    }
}
