package dev.seqscore.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where tests find the repository's committed model bundle and the real datasets, which are never committed:
 * {@code $SEQSCORE_DATA_DIR}, else {@code ../shared/data} next to the repository root.
 */
public final class RepoPaths {
    private RepoPaths() {}

    /** Surefire and failsafe pass the root; from an IDE, walk up from the working directory. */
    public static Path repoRoot() {
        String root = System.getProperty("seqscore.repo.root");
        if (root != null && !root.isBlank()) {
            return Path.of(root).toAbsolutePath().normalize();
        }
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("models/default"))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("cannot find the repository root (a folder with models/default) above "
                    + Path.of("").toAbsolutePath());
        }
        return p;
    }

    public static Path defaultModel() {
        return repoRoot().resolve("models/default");
    }

    public static Path dataDir() {
        String env = System.getenv("SEQSCORE_DATA_DIR");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        return repoRoot().resolve("../shared/data").normalize();
    }

    /** The file under the data directory, or a skipped test saying where it was looked for. */
    public static Path requireData(String relative) {
        Path file = dataDir().resolve(relative);
        assumeTrue(Files.isReadable(file), () -> "skipped: real data file " + file
                + " not found (set SEQSCORE_DATA_DIR to the folder holding taobao/ and rees46/)");
        return file;
    }
}
