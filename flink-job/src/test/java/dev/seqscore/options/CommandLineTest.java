package dev.seqscore.options;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * The mains' shared start: what --help and a bad command line print, where, and in which order the checks run.
 */
class CommandLineTest {
    private static final Option<Integer> COUNT = Option.positiveInt("count", "1", "how many");
    private static final Option<String> NAME = Option.string("name", "", "a name");
    private static final OptionSet OPTIONS = new OptionSet().add(COUNT, NAME, OptionSet.HELP);
    private static final String USAGE = "Usage: cmd [options]\n\nOptions:\n  --count N";

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    @Test
    void valuesWithoutHelpAreReturned() {
        OptionValues v = parse(new CommandLine(OPTIONS, USAGE), "--count", "3");

        assertThat(v.get(COUNT)).isEqualTo(3);
        assertThat(out()).isEmpty();
        assertThat(err()).isEmpty();
    }

    @Test
    void helpPrintsTheUsageAsALineOnStdoutAndReturnsNull() {
        assertThat(parse(new CommandLine(OPTIONS, USAGE), "--count", "3", "--help")).isNull();

        assertThat(out()).isEqualTo(USAGE + "\n");
        assertThat(err()).isEmpty();
    }

    @Test
    void aBadCommandLineIsPrintedWithTheUsageAndThrown() {
        assertThatThrownBy(() -> parse(new CommandLine(OPTIONS, USAGE), "--count", "0", "--help"))
                .isInstanceOf(ConfigException.class)
                .hasMessage("--count: must be a positive integer, got 0");

        assertThat(err()).isEqualTo("error: --count: must be a positive integer, got 0\n\n" + USAGE + "\n");
        assertThat(out()).isEmpty();
    }

    @Test
    void theErrorLinesShapeIsTheCommands() {
        assertThatThrownBy(() -> parse(new CommandLine(OPTIONS, USAGE).errorPrefix("cmd: ")
                .blankLineBeforeUsage(false), "--nope")).isInstanceOf(ConfigException.class);
        assertThat(err()).isEqualTo("cmd: unknown option --nope (see --help)\n" + USAGE + "\n");

        err.reset();
        assertThatThrownBy(() -> parse(new CommandLine(OPTIONS, USAGE).usageOnError(false), "--nope"))
                .isInstanceOf(ConfigException.class);
        assertThat(err()).isEqualTo("error: unknown option --nope (see --help)\n");
    }

    @Test
    void checksRunBeforeHelp() {
        CommandLine cmd = new CommandLine(OPTIONS, USAGE).check(v -> {
            if (v.get(COUNT) > 5) {
                throw new ConfigException("--count " + v.get(COUNT) + " is more than 5");
            }
        });

        assertThatThrownBy(() -> parse(cmd, "--count", "6", "--help")).hasMessage("--count 6 is more than 5");
        assertThat(err()).startsWith("error: --count 6 is more than 5\n\n");
        assertThat(out()).isEmpty();
    }

    @Test
    void readingRunsOnlyWithoutHelpAndReportsLikeParsing() {
        CommandLine cmd = new CommandLine(OPTIONS, USAGE);
        Function<OptionValues, String> requireName = v -> {
            if (v.get(NAME) == null) {
                throw new ConfigException("--name is required");
            }
            return v.get(NAME);
        };

        assertThat(cmd.parse(new String[] {"--help"}, stream(out), stream(err), requireName)).isNull();
        assertThat(cmd.parse(new String[] {"--name", "x"}, stream(out), stream(err), requireName)).isEqualTo("x");
        assertThat(err()).isEmpty();
        assertThatThrownBy(() -> cmd.parse(new String[0], stream(out), stream(err), requireName))
                .hasMessage("--name is required");
        assertThat(err()).isEqualTo("error: --name is required\n\n" + USAGE + "\n");
    }

    private OptionValues parse(CommandLine cmd, String... args) {
        return cmd.parse(args, stream(out), stream(err), v -> v);
    }

    private static PrintStream stream(ByteArrayOutputStream bytes) {
        return new PrintStream(bytes, true, StandardCharsets.UTF_8);
    }

    private String out() {
        return out.toString(StandardCharsets.UTF_8);
    }

    private String err() {
        return err.toString(StandardCharsets.UTF_8);
    }
}
