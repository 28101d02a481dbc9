package dev.seqscore.options;

import java.io.Serializable;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * One command-line option, defined once: name, type (its parser), default, help text and validation. Commands list
 * their options in an {@link OptionSet}, which parses, validates and prints help from these definitions alone.
 *
 * @param <T> the parsed value's type; an option whose default is empty and that was not given reads as null
 */
public final class Option<T> implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Turns the text of a value into {@code T}; throws {@link IllegalArgumentException} saying what is wrong. */
    @FunctionalInterface
    public interface Parser<T> extends Serializable {
        T parse(String text);
    }

    private final String name;
    private final String defaultText;
    private final String help;
    private final String valueName;
    private final Parser<T> parser;
    private final boolean flag;

    private Option(String name, String defaultText, String help, String valueName, Parser<T> parser, boolean flag) {
        this.name = Objects.requireNonNull(name);
        this.defaultText = Objects.requireNonNull(defaultText);
        this.help = Objects.requireNonNull(help);
        this.valueName = valueName;
        this.parser = parser;
        this.flag = flag;
    }

    public static <T> Option<T> of(String name, String valueName, String defaultText, String help, Parser<T> parser) {
        return new Option<>(name, defaultText, help, valueName, parser, false);
    }

    public static Option<String> string(String name, String defaultText, String help) {
        return of(name, "VALUE", defaultText, help, s -> s);
    }

    /** A string that must not be blank when given or defaulted. */
    public static Option<String> nonBlank(String name, String defaultText, String help) {
        return of(name, "VALUE", defaultText, help, s -> {
            if (s.isBlank()) {
                throw new IllegalArgumentException("must not be empty");
            }
            return s.trim();
        });
    }

    public static Option<Integer> integer(String name, String defaultText, String help, int min, int max) {
        return of(name, "N", defaultText, help, s -> {
            int n;
            try {
                n = Integer.parseInt(s.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("'" + s + "' is not an integer");
            }
            if (n < min || n > max) {
                throw new IllegalArgumentException(max == Integer.MAX_VALUE
                        ? (min == 1 ? "must be a positive integer, got " + n : "must be at least " + min + ", got " + n)
                        : "must be between " + min + " and " + max + ", got " + n);
            }
            return n;
        });
    }

    public static Option<Integer> positiveInt(String name, String defaultText, String help) {
        return integer(name, defaultText, help, 1, Integer.MAX_VALUE);
    }

    public static Option<Double> number(String name, String defaultText, String help, double min, double max) {
        return of(name, "X", defaultText, help, s -> {
            double d;
            try {
                d = Double.parseDouble(s.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("'" + s + "' is not a number");
            }
            if (!(d >= min && d <= max)) {
                throw new IllegalArgumentException("must be within [" + min + ", " + max + "], got " + s);
            }
            return d;
        });
    }

    /** A duration of zero or more (0 usually disables what it bounds). */
    public static Option<Duration> duration(String name, String defaultText, String help) {
        return of(name, "DURATION", defaultText, help, Durations::parse);
    }

    public static Option<Duration> positiveDuration(String name, String defaultText, String help) {
        return of(name, "DURATION", defaultText, help, s -> {
            Duration d = Durations.parse(s);
            if (d.isZero()) {
                throw new IllegalArgumentException("must be positive, got " + s);
            }
            return d;
        });
    }

    /** One of a fixed set of words, case-insensitive; the value is the lower-case word. */
    public static Option<String> oneOf(String name, String defaultText, String help, String... allowed) {
        List<String> words = List.of(allowed);
        return of(name, String.join("|", words), defaultText, help, s -> {
            String v = s.trim().toLowerCase(Locale.ROOT);
            if (!words.contains(v)) {
                throw new IllegalArgumentException("'" + s + "' is not one of " + String.join(", ", words));
            }
            return v;
        });
    }

    /**
     * One constant of an enum, written on the command line as its lower-case name with dashes for underscores
     * ({@code EXACTLY_ONCE} is {@code exactly-once}), case-insensitive.
     */
    public static <E extends Enum<E>> Option<E> enumOf(String name, String defaultText, String help, Class<E> type) {
        E[] constants = type.getEnumConstants();
        List<String> words = java.util.Arrays.stream(constants).map(Option::cliName).toList();
        return of(name, String.join("|", words), defaultText, help, s -> {
            String v = s.trim().toLowerCase(Locale.ROOT);
            for (E e : constants) {
                if (cliName(e).equals(v)) {
                    return e;
                }
            }
            throw new IllegalArgumentException("'" + s + "' is not one of " + String.join(", ", words));
        });
    }

    /** How {@link #enumOf} writes a constant: {@code EXACTLY_ONCE} is {@code exactly-once}. */
    public static String cliName(Enum<?> e) {
        return e.name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    public static Option<Boolean> bool(String name, String defaultText, String help) {
        return of(name, "true|false", defaultText, help, s -> {
            String v = s.trim().toLowerCase(Locale.ROOT);
            if (!v.equals("true") && !v.equals("false")) {
                throw new IllegalArgumentException("'" + s + "' is not true or false");
            }
            return v.equals("true");
        });
    }

    /** An option that takes no value: present means true. {@code --name=false} also works. */
    public static Option<Boolean> flag(String name, String help) {
        Option<Boolean> b = bool(name, "false", help);
        return new Option<>(name, "false", help, null, b.parser, true);
    }

    /**
     * A flag whose default is given: {@code ""} reads as null when absent (the command decides, e.g. "on when the
     * data is there"); present means true, {@code --name=false} turns it off.
     */
    public static Option<Boolean> flag(String name, String defaultText, String help) {
        Option<Boolean> b = bool(name, defaultText, help);
        return new Option<>(name, defaultText, help, null, b.parser, true);
    }

    public static Option<Path> path(String name, String defaultText, String help) {
        return of(name, "PATH", defaultText, help, s -> Path.of(s.trim()));
    }

    public String name() {
        return name;
    }

    public String defaultText() {
        return defaultText;
    }

    public String help() {
        return help;
    }

    /** How help shows the value, e.g. {@code DURATION}; null for a flag. */
    public String valueName() {
        return valueName;
    }

    public boolean isFlag() {
        return flag;
    }

    /**
     * The typed value of {@code text}. For an option whose default is empty, an empty text means "not set" and
     * reads as null; any other option's parser judges an empty text (a required name, say, rejects it).
     */
    public T parse(String text) {
        if (text.isEmpty() && defaultText.isEmpty()) {
            // A flag is never given an empty text (present reads "true"): empty is its empty default, unset.
            return null;
        }
        return parseGiven(text);
    }

    /** The typed value of a text that was given, empty or not: the parser always judges it. */
    T parseGiven(String text) {
        try {
            return parser.parse(text);
        } catch (IllegalArgumentException e) {
            throw new ConfigException("--" + name + ": " + e.getMessage(), e);
        }
    }

    /** The default, parsed; null when the default is empty. */
    public T defaultValue() {
        return parse(defaultText);
    }

    @Override
    public String toString() {
        return "--" + name;
    }
}
