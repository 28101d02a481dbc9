package dev.seqscore.privacy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.options.ConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.apache.flink.util.InstantiationUtil;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pseudonyms are HMAC-SHA256 of the user id under the file's key; the key shows nowhere. */
class PseudonymizerTest {
    private static final String MARKER = "dummy-key-SECRET-MARKER-0123456789";

    @TempDir
    Path dir;

    @Test
    void pseudonymIsHmacSha256InHex() throws Exception {
        // RFC 4231, test case 1: key 0x0b * 20, data "Hi There".
        byte[] key = new byte[20];
        Arrays.fill(key, (byte) 0x0b);
        Path file = Files.write(dir.resolve("key"), key);

        Pseudonymizer p = Pseudonymizer.fromKeyFile(file, "--key");

        assertThat(p.pseudonym("Hi There"))
                .isEqualTo("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    }

    @Test
    void oneTrailingNewlineIsNotPartOfTheKey() throws Exception {
        Pseudonymizer bare = Pseudonymizer.fromKeyFile(Files.writeString(dir.resolve("a"), MARKER), "--key");
        Pseudonymizer unix = Pseudonymizer.fromKeyFile(Files.writeString(dir.resolve("b"), MARKER + "\n"), "--key");
        Pseudonymizer dos = Pseudonymizer.fromKeyFile(Files.writeString(dir.resolve("c"), MARKER + "\r\n"), "--key");
        Pseudonymizer other = Pseudonymizer.fromKeyFile(Files.writeString(dir.resolve("d"), MARKER + "x"), "--key");

        assertThat(unix.pseudonym("u1")).isEqualTo(bare.pseudonym("u1")).isEqualTo(dos.pseudonym("u1"))
                .isNotEqualTo(other.pseudonym("u1")).hasSize(64);
        assertThat(bare.pseudonym("u1")).isNotEqualTo(bare.pseudonym("u2"));
    }

    @Test
    void aShortKeyIsRefusedWithoutShowingIt() throws Exception {
        Path file = Files.writeString(dir.resolve("short"), "SHORTSECRET\n");

        assertThatThrownBy(() -> Pseudonymizer.fromKeyFile(file, "--pseudonymize-key-file"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--pseudonymize-key-file")
                .hasMessageContaining("at least 16")
                .hasMessageNotContaining("SHORTSECRET");
    }

    @Test
    void aMissingFileIsNamed() {
        Path missing = dir.resolve("missing");

        assertThatThrownBy(() -> Pseudonymizer.fromKeyFile(missing, "--pseudonymize-key-file"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(missing.toString());
    }

    @Test
    void itTravelsWithTheJobAndNeverPrintsItsKey() throws Exception {
        Pseudonymizer p = Pseudonymizer.fromKeyFile(Files.writeString(dir.resolve("k"), MARKER), "--key");

        Pseudonymizer shipped = InstantiationUtil.clone(p);

        assertThat(shipped.pseudonym("u1")).isEqualTo(p.pseudonym("u1"));
        assertThat(p.toString()).doesNotContain(MARKER).contains("withheld");
    }
}
