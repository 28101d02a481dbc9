package dev.seqscore.privacy;

import dev.seqscore.options.ConfigException;
import java.io.IOException;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import java.util.HexFormat;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Replaces user ids in the job's output with {@code hex(HMAC-SHA256(key, user_id))}: stable per user, so consumers
 * can still join and count, but not reversible without the key. The key never appears in {@link #toString()},
 * messages or logs.
 */
public final class Pseudonymizer implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final String ALGORITHM = "HmacSHA256";
    /** HMAC-SHA256 keys shorter than this weaken the hash; a typo'd or empty file should not pass. */
    public static final int MIN_KEY_BYTES = 16;

    private final byte[] key;
    private transient Mac mac;

    private Pseudonymizer(byte[] key) {
        this.key = key;
    }

    /**
     * The key is the file's bytes, less one trailing newline (so {@code openssl rand -hex 32 > key} works).
     *
     * @param option the flag's name, for messages
     */
    public static Pseudonymizer fromKeyFile(Path file, String option) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            // The exception's own text is about the path, never the content.
            throw new ConfigException(option + ": cannot read the key file '" + file + "': " + e.getClass().getSimpleName());
        }
        int n = bytes.length;
        if (n > 0 && bytes[n - 1] == '\n') {
            n--;
            if (n > 0 && bytes[n - 1] == '\r') {
                n--;
            }
        }
        if (n < MIN_KEY_BYTES) {
            throw new ConfigException(option + ": the key file '" + file + "' holds " + n + " bytes; use at least "
                    + MIN_KEY_BYTES + " random bytes, e.g. openssl rand -hex 32 > " + file);
        }
        return new Pseudonymizer(Arrays.copyOf(bytes, n));
    }

    /** The pseudonym of a user id: 64 lower-case hex characters. */
    public String pseudonym(String userId) {
        if (mac == null) {
            try {
                mac = Mac.getInstance(ALGORITHM);
                mac.init(new SecretKeySpec(key, ALGORITHM));
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("HMAC-SHA256 is unavailable in this JVM", e);
            }
        }
        return HexFormat.of().formatHex(mac.doFinal(userId.getBytes(StandardCharsets.UTF_8)));
    }

    @Override
    public String toString() {
        return "Pseudonymizer[" + ALGORITHM + ", key withheld]";
    }
}
