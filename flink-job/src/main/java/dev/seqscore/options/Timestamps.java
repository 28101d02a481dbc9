package dev.seqscore.options;

import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;

/**
 * The one point-in-time syntax of every command: epoch milliseconds ({@code 1512086400000}) or an ISO-8601 instant
 * with a zone ({@code 2017-12-01T00:00:00Z}, {@code 2017-12-01T08:00:00+08:00}).
 */
public final class Timestamps {
    /** How help texts name the forms. */
    public static final String FORMS = "epoch milliseconds or an ISO-8601 time with zone, e.g. 2017-12-01T00:00:00Z";

    private Timestamps() {}

    /** Epoch milliseconds. @throws IllegalArgumentException naming the accepted forms */
    public static long parse(String text) {
        String v = text == null ? "" : text.trim();
        if (!v.isEmpty() && v.chars().allMatch(Character::isDigit)) {
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("'" + text + "' is too large a time");
            }
        }
        try {
            return Instant.parse(v).toEpochMilli();
        } catch (DateTimeParseException e) {
            try {
                return OffsetDateTime.parse(v).toInstant().toEpochMilli();
            } catch (DateTimeParseException e2) {
                throw new IllegalArgumentException("'" + text + "' is not a time: give " + FORMS);
            }
        }
    }

    /** ISO-8601 in UTC, e.g. {@code 2017-12-01T00:00:00Z}. */
    public static String format(long epochMs) {
        return Instant.ofEpochMilli(epochMs).toString();
    }

    public static Option<Long> option(String name, String help) {
        return Option.of(name, "TIME", "", help + " (" + FORMS + ")", Timestamps::parse);
    }
}
