package dev.seqscore.events;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Locates the real public datasets, which are never committed: {@code $SEQSCORE_DATA_DIR}, else
 * {@code ../shared/data} next to the repository root. Tests that need a file skip (not fail) where it is absent.
 */
final class SeqScoreTestData {
    private SeqScoreTestData() {}

    static Path dataDir() {
        String env = System.getenv("SEQSCORE_DATA_DIR");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        // Surefire passes the repository root; from an IDE the working directory is the module.
        String root = System.getProperty("seqscore.repo.root");
        Path base = root != null ? Path.of(root) : Path.of("").toAbsolutePath().getParent();
        return base.resolve("../shared/data").normalize();
    }

    /** The file under the data directory, or a skipped test saying where it was looked for. */
    static Path require(String relative) {
        Path file = dataDir().resolve(relative);
        assumeTrue(Files.isReadable(file), () -> "skipped: real data file " + file
                + " not found (set SEQSCORE_DATA_DIR to the folder holding taobao/ and rees46/)");
        return file;
    }
}
