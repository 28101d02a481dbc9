package dev.seqscore.lifecycle;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.seqscore.offline.BundleCopies;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * Bundles to publish to a running scorer: copies of a bundle directory with everything a publish reads (spec, graphs,
 * golden vectors), as a retrain writes them, with the spec or a golden file edited.
 */
public final class PublishedBundles {
    private PublishedBundles() {}

    /** The same weights under another model version: {@link BundleCopies#retrained}. */
    public static Path retrained(Path from, Path target, String suffix) {
        return BundleCopies.retrained(from, target, suffix);
    }

    /** A copy with its spec edited: {@link BundleCopies#copy}. */
    public static Path copy(Path from, Path target, Consumer<ObjectNode> editSpec) {
        return BundleCopies.copy(from, target, editSpec);
    }

    /** Changes the first recorded score of a golden file, as a bundle whose graph is not the one trained would. */
    public static void corruptGolden(Path bundle, String goldenFile) {
        try {
            Path f = bundle.resolve(goldenFile);
            String text = Files.readString(f);
            String first = goldenFile.contains("step") ? "\"scores\":[[" : "\"purchase_30m\":";
            int at = text.indexOf(first) + first.length();
            int end = at;
            while (Character.isDigit(text.charAt(end)) || text.charAt(end) == '.' || text.charAt(end) == 'e'
                    || text.charAt(end) == '-') {
                end++;
            }
            double v = Double.parseDouble(text.substring(at, end));
            Files.writeString(f, text.substring(0, at) + (v + 0.05) + text.substring(end));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
