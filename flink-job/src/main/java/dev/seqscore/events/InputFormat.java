package dev.seqscore.events;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The wire format of the input topic's values. */
public enum InputFormat {
    /** Plain Avro binary of the ClickEvent schema. */
    AVRO,
    /** One JSON object per record with the ClickEvent field names. */
    JSON;

    public static InputFormat parse(String s) {
        for (InputFormat f : values()) {
            if (f.name().equalsIgnoreCase(s.trim())) {
                return f;
            }
        }
        throw new IllegalArgumentException("'" + s + "' is not one of "
                + Arrays.stream(values()).map(f -> f.name().toLowerCase(Locale.ROOT)).collect(Collectors.joining(", ")));
    }
}
