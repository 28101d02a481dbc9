package dev.seqscore.tools.demo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.seqscore.avro.Score;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ShadowComparisonTest {
    private static final Instant T = Instant.parse("2017-11-26T01:00:00Z");

    private static Score score(String user, int second, String version, double purchase, double churn) {
        return Score.newBuilder().setUserId(user).setEventTime(T.plusSeconds(second)).setEventType("pv")
                .setItemId("i1").setScores(Map.of("purchase_30m", purchase, "churn_24h", churn))
                .setModelVersion(version).setWindowLength(1).setScoredAt(T).build();
    }

    @Test
    void eachEventsTwoScoresArePairedWhicheverComesFirstAndComparedAtEachModelsThreshold() {
        ShadowComparison c = new ShadowComparison(List.of(new ShadowComparison.Rule("purchase_30m", 0.5, 0.6),
                new ShadowComparison.Rule("churn_24h", 0.3, 0.3)), "v2");
        // Event 1: both alert on purchase (0.7 >= 0.5, 0.65 >= 0.6); neither on churn.
        c.serving(score("u1", 1, "v1", 0.7, 0.1));
        c.candidate(score("u1", 1, "v2", 0.65, 0.1));
        // Event 2, the candidate first: serving alerts on purchase (0.55), the candidate not (0.58 < 0.6).
        c.candidate(score("u2", 1, "v2", 0.58, 0.4));
        c.serving(score("u2", 1, "v1", 0.55, 0.2));
        // Unpaired so far: another second of u1 on one side only.
        c.serving(score("u1", 2, "v1", 0.9, 0.9));

        ShadowComparison.Totals t = c.totals();
        assertThat(t.paired()).isEqualTo(2);
        assertThat(t.servingVersion()).isEqualTo("v1");
        assertThat(t.candidateVersion()).isEqualTo("v2");
        ShadowComparison.Output purchase = t.outputs().get(0);
        assertThat(purchase.servingAbove()).isEqualTo(2);
        assertThat(purchase.candidateAbove()).isEqualTo(1);
        assertThat(purchase.disagreements()).isEqualTo(1);
        assertThat(purchase.absDiffSum()).isCloseTo(0.05 + 0.03, within(1e-9));
        ShadowComparison.Output churn = t.outputs().get(1);
        assertThat(churn.servingAbove()).isZero();
        assertThat(churn.candidateAbove()).isEqualTo(1);
        assertThat(churn.disagreements()).isEqualTo(1);
        assertThat(churn.absDiffSum()).isCloseTo(0.2, within(1e-9));

        c.candidate(score("u1", 2, "v2", 0.9, 0.9));
        assertThat(c.totals().paired()).isEqualTo(3);
        assertThat(c.totals().outputs().get(0).disagreements()).isEqualTo(1);
    }
}
