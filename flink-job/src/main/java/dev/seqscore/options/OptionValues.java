package dev.seqscore.options;

import java.io.Serializable;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What a command line said, read through the {@link Option} definitions; defaults fill in what it did not say. */
public final class OptionValues implements Serializable {
    private static final long serialVersionUID = 1L;

    private final OptionSet set;
    private final Map<String, String> given;
    private final Map<String, Map<String, String>> prefixed;

    OptionValues(OptionSet set, Map<String, String> given, Map<String, Map<String, String>> prefixed) {
        this.set = set;
        this.given = given;
        this.prefixed = prefixed;
    }

    /** The typed value, or the default; null when neither is set. */
    public <T> T get(Option<T> o) {
        if (!set.contains(o)) {
            throw new IllegalArgumentException(o + " is not an option of this command");
        }
        String text = given.get(o.name());
        return text == null ? o.defaultValue() : o.parse(text);
    }

    /** Whether the command line named the option. */
    public boolean given(Option<?> o) {
        return given.containsKey(o.name());
    }

    /** The text as given, or the default text. */
    public String text(Option<?> o) {
        return given.getOrDefault(o.name(), o.defaultText());
    }

    /** Every {@code --prefix.key value} given, typed, in command-line order. */
    @SuppressWarnings("unchecked")
    public <T> Map<String, T> get(PrefixOption<T> family) {
        Map<String, T> out = new LinkedHashMap<>();
        prefixed.getOrDefault(family.prefix(), Map.of()).forEach((k, v) -> out.put(k, family.parse(k, v)));
        return Collections.unmodifiableMap(out);
    }

    /** A copy with some options replaced; used to point the same command elsewhere. */
    public OptionValues with(Option<?> o, String value) {
        o.parse(value);
        Map<String, String> g = new LinkedHashMap<>(given);
        g.put(o.name(), value);
        return new OptionValues(set, g, prefixed);
    }

    /** A copy where {@code o} is {@code value} unless the command line named it: a tool's own defaults. */
    public OptionValues withDefault(Option<?> o, String value) {
        return given(o) ? this : with(o, value);
    }

    /** The command line back as arguments, for options of {@code subset} only (e.g. to hand the job its own). */
    public List<String> toArgs(OptionSet subset) {
        List<String> args = new java.util.ArrayList<>();
        given.forEach((name, value) -> {
            if (subset.options().stream().anyMatch(o -> o.name().equals(name))) {
                args.add("--" + name + "=" + value);
            }
        });
        prefixed.forEach((prefix, values) -> {
            if (subset.prefix(prefix) != null) {
                values.forEach((k, v) -> args.add("--" + prefix + "." + k + "=" + v));
            }
        });
        return args;
    }

    @Override
    public String toString() {
        return "options" + given.keySet() + (prefixed.isEmpty() ? "" : " " + prefixed.keySet());
    }
}
