package dev.seqscore.alerts;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * Alert ids are a contract with consumers that deduplicate: the same (user, event, alert type) always gives the
 * same id, across runs and releases, and any difference in those gives a different one.
 */
class AlertIdsTest {
    private static final long T = 1_511_658_000_000L;

    @Test
    void sameInputsGiveTheSameId() {
        assertThat(AlertIds.of("alice", T, "cart", "i1", "HIGH_PURCHASE_INTENT"))
                .isEqualTo(AlertIds.of("alice", T, "cart", "i1", "HIGH_PURCHASE_INTENT"));
    }

    @Test
    void idIsTheNameBasedUuidOfTheNulJoinedFields() {
        // Written out so that a change of the id scheme, which would break deduplication across an upgrade, is a
        // deliberate edit of this test.
        String key = "alice\u0000" + T + "\u0000cart\u0000i1\u0000HIGH_PURCHASE_INTENT";
        UUID expected = UUID.nameUUIDFromBytes(key.getBytes(StandardCharsets.UTF_8));

        String id = AlertIds.of("alice", T, "cart", "i1", "HIGH_PURCHASE_INTENT");

        assertThat(id).isEqualTo(expected.toString());
        assertThat(UUID.fromString(id).version()).isEqualTo(3);
    }

    @Test
    void everyFieldTakesPart() {
        Set<String> ids = new HashSet<>(List.of(
                AlertIds.of("alice", T, "cart", "i1", "HIGH_PURCHASE_INTENT"),
                AlertIds.of("bob", T, "cart", "i1", "HIGH_PURCHASE_INTENT"),
                AlertIds.of("alice", T + 1, "cart", "i1", "HIGH_PURCHASE_INTENT"),
                AlertIds.of("alice", T, "view", "i1", "HIGH_PURCHASE_INTENT"),
                AlertIds.of("alice", T, "cart", "i2", "HIGH_PURCHASE_INTENT"),
                AlertIds.of("alice", T, "cart", "i1", "CHURN_RISK")));

        assertThat(ids).hasSize(6);
    }

    @Test
    void fieldBoundariesAreNotAmbiguous() {
        // Plain concatenation would make ("ab", "c") and ("a", "bc") collide.
        assertThat(AlertIds.of("u1", T, "view", "i", "X")).isNotEqualTo(AlertIds.of("u", T, "view", "1i", "X"));
        assertThat(AlertIds.of("u", 11, "view", "i", "X")).isNotEqualTo(AlertIds.of("u1", 1, "view", "i", "X"));
    }
}
