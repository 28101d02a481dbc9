package dev.seqscore.options;

import java.io.Serializable;
import java.util.Objects;

/**
 * A family of options that share a prefix, such as {@code --threshold.<output> X} or {@code --kafka.<property> V}:
 * the part after the dot is a key the command interprets, the value is parsed by {@link Option}'s parser.
 */
public final class PrefixOption<T> implements Serializable {
    private static final long serialVersionUID = 1L;

    private final String prefix;
    private final String keyName;
    private final Option<T> value;

    public PrefixOption(String prefix, String keyName, Option<T> value) {
        this.prefix = Objects.requireNonNull(prefix);
        this.keyName = Objects.requireNonNull(keyName);
        this.value = Objects.requireNonNull(value);
    }

    /** The prefix without the dot, e.g. {@code threshold}. */
    public String prefix() {
        return prefix;
    }

    /** How help names the key, e.g. {@code <output>}. */
    public String displayName() {
        return prefix + "." + keyName;
    }

    public String help() {
        return value.help();
    }

    public String valueName() {
        return value.valueName();
    }

    T parse(String key, String text) {
        try {
            return value.parseGiven(text);
        } catch (ConfigException e) {
            throw new ConfigException("--" + prefix + "." + key + e.getMessage().substring(("--" + value.name()).length()),
                    e.getCause());
        }
    }

    @Override
    public String toString() {
        return "--" + displayName();
    }
}
