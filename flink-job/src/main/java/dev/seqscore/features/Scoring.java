package dev.seqscore.features;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * Which model of a bundle the job serves: the streaming step graph (a per-user state carried from event to event) or
 * the windowed graph (each event scored from its window alone). Format 2 bundles have only the windowed one.
 */
public enum Scoring {
    /** The step graph of {@code streaming}: window, lifetime record and recurrent state. */
    INCREMENTAL,
    /** The top-level graph: the window only. */
    WINDOWED;

    /** The value of {@code --scoring}: {@code incremental} or {@code windowed}, in any case. */
    public static Scoring parse(String s) {
        for (Scoring v : values()) {
            if (v.name().equalsIgnoreCase(s.trim())) {
                return v;
            }
        }
        throw new IllegalArgumentException("'" + s + "' is not one of "
                + Arrays.stream(values()).map(Scoring::cliName).collect(Collectors.joining(", ")));
    }

    /** The name on the command line. */
    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
