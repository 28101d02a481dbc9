package dev.seqscore.options;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The options of one command, in help order. {@link #parse} turns {@code --name value} and {@code --name=value}
 * into {@link OptionValues}, checking every given value and every default, so that a mistake fails at start-up with
 * a message that names the option. {@link #usage} prints help from the same definitions.
 */
public final class OptionSet implements Serializable {
    private static final long serialVersionUID = 1L;

    public static final Option<Boolean> HELP = Option.flag("help", "print this help and exit");

    private final Map<String, Option<?>> options = new LinkedHashMap<>();
    private final Map<String, PrefixOption<?>> prefixes = new LinkedHashMap<>();
    /** Section headings, keyed by the name of the first option under them. */
    private final Map<String, String> sections = new LinkedHashMap<>();

    public OptionSet add(Option<?>... defined) {
        for (Option<?> o : defined) {
            if (options.putIfAbsent(o.name(), o) != null) {
                throw new IllegalStateException("option --" + o.name() + " is defined twice");
            }
        }
        return this;
    }

    public OptionSet add(PrefixOption<?>... defined) {
        for (PrefixOption<?> p : defined) {
            prefixes.put(p.prefix(), p);
        }
        return this;
    }

    /** Adds another set's options under a heading, e.g. a tool that also takes the job's options. */
    public OptionSet addAll(String heading, OptionSet other) {
        List<Option<?>> theirs = new ArrayList<>(other.options.values());
        theirs.removeIf(o -> o.name().equals(HELP.name()) && options.containsKey(HELP.name()));
        if (!theirs.isEmpty()) {
            sections.put(theirs.get(0).name(), heading);
        }
        theirs.forEach(this::add);
        prefixes.putAll(other.prefixes);
        return this;
    }

    public List<Option<?>> options() {
        return List.copyOf(options.values());
    }

    public boolean contains(Option<?> o) {
        return options.get(o.name()) == o;
    }

    /** Parses and checks; unknown names, missing values and bad values throw {@link ConfigException}. */
    public OptionValues parse(String... args) {
        Map<String, String> given = new LinkedHashMap<>();
        Map<String, Map<String, String>> prefixed = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (!arg.startsWith("--") || arg.length() == 2) {
                throw new ConfigException("unexpected argument '" + arg + "': options look like --name value");
            }
            String name = arg.substring(2);
            String value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            Option<?> o = options.get(name);
            PrefixOption<?> family = o == null ? familyOf(name) : null;
            if (o == null && family == null) {
                throw new ConfigException("unknown option --" + name + " (see --help)");
            }
            if (value == null) {
                if (o != null && o.isFlag()) {
                    value = "true";
                } else if (i + 1 < args.length) {
                    value = args[++i];
                } else {
                    throw new ConfigException("--" + name + " needs a value");
                }
            }
            if (o != null) {
                o.parse(value);
                if (given.put(name, value) != null && !o.isFlag()) {
                    throw new ConfigException("--" + name + " given twice");
                }
            } else {
                String key = name.substring(family.prefix().length() + 1);
                family.parse(key, value);
                prefixed.computeIfAbsent(family.prefix(), k -> new LinkedHashMap<>()).put(key, value);
            }
        }
        for (Option<?> o : options.values()) {
            if (!given.containsKey(o.name())) {
                o.defaultValue(); // a bad default is a bug in the definitions, found on first use
            }
        }
        return new OptionValues(this, given, prefixed);
    }

    private PrefixOption<?> familyOf(String name) {
        int dot = name.indexOf('.');
        if (dot <= 0 || dot == name.length() - 1) {
            return null;
        }
        return prefixes.get(name.substring(0, dot));
    }

    PrefixOption<?> prefix(String prefix) {
        return prefixes.get(prefix);
    }

    /** Help for every option with its value, default and text. */
    public String usage(String synopsis, String description) {
        StringBuilder sb = new StringBuilder();
        sb.append("Usage: ").append(synopsis).append("\n\n");
        if (!description.isEmpty()) {
            sb.append(description).append("\n\n");
        }
        sb.append("Options:\n");
        for (Option<?> o : options.values()) {
            String heading = sections.get(o.name());
            if (heading != null) {
                sb.append('\n').append(heading).append(":\n");
            }
            line(sb, "--" + o.name() + (o.isFlag() ? "" : " " + o.valueName()), o.help(), o.defaultText());
        }
        for (PrefixOption<?> p : prefixes.values()) {
            line(sb, "--" + p.displayName() + " " + p.valueName(), p.help(), "");
        }
        return sb.toString();
    }

    private static void line(StringBuilder sb, String left, String help, String def) {
        sb.append(String.format("  %-36s %s", left, help));
        if (!def.isEmpty()) {
            sb.append(" (default: ").append(def).append(')');
        }
        sb.append('\n');
    }
}
