package dev.seqscore.options;

import java.io.PrintStream;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The start of every command's {@code main}: parse the command line, print the usage for {@code --help}, and report
 * a bad command line. By default a bad one prints {@code error: <message>}, a blank line and the usage on stderr;
 * {@code --help} prints the usage on stdout.
 *
 * <pre>{@code
 * OptionValues options = new CommandLine(OPTIONS, usage()).parseOrExit(args);
 * if (options == null) {
 *     return; // --help
 * }
 * }</pre>
 *
 * <p>{@link #parse(String[])} never exits, for the job's main, which a cluster may run inside its JobManager: it
 * prints and throws the {@link ConfigException}. {@link #parseOrExit(String[])} exits with {@value #USAGE_ERROR},
 * for the tools.
 */
public final class CommandLine {
    /** The exit status of a bad command line. */
    public static final int USAGE_ERROR = 2;

    private final OptionSet options;
    private final String usage;
    private String errorPrefix = "error: ";
    private boolean usageOnError = true;
    private boolean blankLineBeforeUsage = true;
    private Consumer<OptionValues> check = values -> {};

    /** @param usage the help text, printed as a line of its own */
    public CommandLine(OptionSet options, String usage) {
        this.options = Objects.requireNonNull(options);
        this.usage = Objects.requireNonNull(usage);
    }

    /** What the error line starts with instead of {@code error: }, e.g. the command's name. */
    public CommandLine errorPrefix(String prefix) {
        errorPrefix = Objects.requireNonNull(prefix);
        return this;
    }

    /** Whether a bad command line prints the usage after the error line (default true). */
    public CommandLine usageOnError(boolean print) {
        usageOnError = print;
        return this;
    }

    /** Whether a blank line separates the error line from the usage (default true). */
    public CommandLine blankLineBeforeUsage(boolean blank) {
        blankLineBeforeUsage = blank;
        return this;
    }

    /**
     * Rules that span options (e.g. {@code JobConfig::of}), checked before {@code --help} is looked at; they throw
     * {@link ConfigException}, which is reported like a bad flag.
     */
    public CommandLine check(Consumer<OptionValues> rules) {
        check = Objects.requireNonNull(rules);
        return this;
    }

    /**
     * The values, or null once {@code --help} has printed the usage. A bad command line is reported on stderr and its
     * {@link ConfigException} thrown; never exits.
     */
    public OptionValues parse(String[] args) {
        return parse(args, System.out, System.err, values -> values);
    }

    /**
     * Parses, checks, answers {@code --help} (returning null), then reads the values into what the command runs on;
     * a {@link ConfigException} from any of these is reported on {@code err} and thrown.
     *
     * @param read runs only without {@code --help}, e.g. to require options that help does not need
     */
    public <T> T parse(String[] args, PrintStream out, PrintStream err, Function<OptionValues, T> read) {
        try {
            OptionValues values = options.parse(args);
            check.accept(values);
            if (options.contains(OptionSet.HELP) && values.get(OptionSet.HELP)) {
                out.println(usage);
                return null;
            }
            return read.apply(values);
        } catch (ConfigException e) {
            err.println(errorPrefix + e.getMessage());
            if (usageOnError) {
                if (blankLineBeforeUsage) {
                    err.println();
                }
                err.println(usage);
            }
            throw e;
        }
    }

    /** As {@link #parse(String[])}, but a bad command line exits with {@value #USAGE_ERROR} once reported. */
    public OptionValues parseOrExit(String[] args) {
        try {
            return parse(args);
        } catch (ConfigException e) {
            System.exit(USAGE_ERROR);
            return null; // not reached
        }
    }
}
