package dev.seqscore.tools.model;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line of {@code bin/seqscore model}: what it refuses before touching Kafka, and its client settings. */
class ModelCommandTest {

    private static String[] run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = ModelCommand.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new String[] {String.valueOf(code), out.toString(StandardCharsets.UTF_8),
                err.toString(StandardCharsets.UTF_8)};
    }

    @Test
    void badCommandLinesAreRefusedWithTheFix(@TempDir Path tmp) {
        assertThat(run("swap")).satisfies(r -> {
            assertThat(r[0]).isEqualTo("2");
            assertThat(r[2]).contains("unknown command 'swap': publish, promote or withdraw");
        });
        assertThat(run("publish", "--role", "serve")[2]).contains("give the bundle");
        assertThat(run("publish", tmp.resolve("nope").toString(), "--role", "serve")[2])
                .contains("model bundle directory").contains("does not exist");
        assertThat(run("publish", tmp.toString(), "--effective-at", "1")[2]).contains("--role serve or --role shadow");
        assertThat(run("promote", "--role", "serve", "--effective-at", "1")[2]).contains("--role is for publish only");
        assertThat(run("publish", "--help")[1]).contains("--model-control-topic").contains("--kafka-properties");
    }

    @Test
    void kafkaSettingsComeFromTheSameFileAsTheJobs(@TempDir Path tmp) throws Exception {
        Path file = tmp.resolve("kafka.properties");
        Files.writeString(file, "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n");
        var values = ModelCommand.OPTIONS.parse(new String[] {"--bootstrap-servers", "k1:9093",
                "--kafka-properties", file.toString()});
        Properties p = ModelCommand.kafka(values);
        assertThat(p.getProperty("security.protocol")).isEqualTo("SASL_SSL");
        assertThat(p.getProperty("sasl.mechanism")).isEqualTo("PLAIN");
        assertThat(p.getProperty("bootstrap.servers")).isEqualTo("k1:9093");
    }
}
