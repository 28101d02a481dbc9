package dev.seqscore.e2e.drill;

import static org.assertj.core.api.Assertions.assertThat;

import dev.seqscore.avro.Alert;
import dev.seqscore.e2e.drill.Expected.ScoreKey;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ReportTest {
    private static final List<String> OUTPUTS = List.of("purchase_30m", "churn_24h");

    @Test
    void scoresAreComparedByIdentityCountingLostDuplicatedUnexpectedAndDifferent() {
        ScoreKey a = new ScoreKey("u1", 1000, "view", "i1");
        ScoreKey b = new ScoreKey("u1", 2000, "buy", "i2");
        ScoreKey c = new ScoreKey("u2", 1000, "view", "i3");
        ScoreKey d = new ScoreKey("u3", 1000, "cart", "i4");
        ScoreKey stranger = new ScoreKey("u9", 1, "view", "x");
        Map<ScoreKey, double[]> expected = Map.of(a, new double[] {0.1, 0.2}, b, new double[] {0.3, 0.4},
                c, new double[] {0.5, 0.6}, d, new double[] {0.7, 0.8});
        Map<ScoreKey, Integer> seen = Map.of(a, 1, b, 3, c, 1, stranger, 1);
        Map<ScoreKey, Map<String, Double>> values = Map.of(
                a, Map.of("purchase_30m", 0.1 + 1e-7, "churn_24h", 0.2),
                b, Map.of("purchase_30m", 0.3, "churn_24h", 0.4),
                c, Map.of("purchase_30m", 0.5, "churn_24h", 0.65),
                stranger, Map.of("purchase_30m", 0.0, "churn_24h", 0.0));

        Report.Comparison r = Report.compareScores(expected, seen, values, OUTPUTS);

        assertThat(r.expected()).isEqualTo(4);
        assertThat(r.lost()).as("d").isEqualTo(1);
        assertThat(r.duplicated()).as("b twice too many").isEqualTo(2);
        assertThat(r.unexpected()).isEqualTo(1);
        assertThat(r.mismatched()).as("c, not a within float noise").isEqualTo(1);
        assertThat(r.maxDiff()).isCloseTo(0.05, org.assertj.core.data.Offset.offset(1e-9));
        assertThat(r.examples()).anyMatch(e -> e.startsWith("lost score")).anyMatch(e -> e.startsWith("score x3"));
    }

    @Test
    void alertsAreComparedByTheirDeterministicId() {
        Map<String, Alert> expected = Map.of("id-1", alert("id-1"), "id-2", alert("id-2"), "id-3", alert("id-3"));
        Report.Comparison r = Report.compareAlerts(expected, Map.of("id-1", 1, "id-2", 2, "id-9", 1));
        assertThat(r.lost()).isEqualTo(1);
        assertThat(r.duplicated()).isEqualTo(1);
        assertThat(r.unexpected()).isEqualTo(1);
        assertThat(r.examples()).anyMatch(e -> e.contains("lost alert HIGH_PURCHASE_INTENT of u-id-3"));
    }

    @Test
    void classLoadersThatGrowWithEveryResubmissionFailTheDrillAndAConstantRemainderDoesNot() {
        assertThat(Report.accumulatedLoaders(List.of(resubmission(2, 2), resubmission(2, 2)))).isZero();
        assertThat(Report.accumulatedLoaders(List.of(resubmission(2, 2), resubmission(3, 2), resubmission(4, 3))))
                .as("JobManager +2, TaskManager +1").isEqualTo(3);
        assertThat(Report.accumulatedLoaders(List.of(resubmission(5, 5)))).as("one resubmission: no trend").isZero();
    }

    private static Drill.Injection resubmission(int jobManagerLoaders, int taskManagerLoaders) {
        Drill.Injection i = new Drill.Injection(1, Drill.Kind.RESUBMISSION);
        i.samples = new dev.seqscore.e2e.probe.JvmProbe.Sample[] {
            new dev.seqscore.e2e.probe.JvmProbe.Sample(1, 400_000, 0, jobManagerLoaders),
            new dev.seqscore.e2e.probe.JvmProbe.Sample(2, 600_000, 2, taskManagerLoaders)};
        return i;
    }

    private static Alert alert(String id) {
        return Alert.newBuilder().setAlertId(id).setUserId("u-" + id).setAlertType("HIGH_PURCHASE_INTENT")
                .setOutput("purchase_30m").setScore(0.9).setThreshold(0.5).setScores(Map.of("purchase_30m", 0.9))
                .setModelVersion("m").setEventTime(Instant.ofEpochMilli(1000)).setEventType("view").setItemId("i")
                .setWindowLength(1).setEmittedAt(Instant.ofEpochMilli(2000)).build();
    }

    @Test
    void theLateSlopeIsFittedOverTheSecondHalfAfterTheFirstJobsOneOffGrowth() {
        // Before the first resubmission, then after each of 10: a big first step, then 2 MB per job.
        double[] rss = {400, 460, 470, 472, 474, 476, 478, 480, 482, 484, 486};
        assertThat(Report.lateCount(rss)).isEqualTo(5);
        assertThat(Report.lateSlope(rss)).isCloseTo(2.0, org.assertj.core.data.Offset.offset(1e-9));
        assertThat(Report.lateCount(new double[] {1, 2, 3, 4, 5})).as("at least 3 points").isEqualTo(3);
    }

    @Test
    void everyOutputReadOfAnotherModelVersionThanTheBacktestsCountsAndOneNeverReadDoesNot() {
        ScoreKey a = new ScoreKey("u1", 1000, "view", "i1");
        ScoreKey b = new ScoreKey("u1", 2000, "buy", "i2");
        ScoreKey c = new ScoreKey("u2", 3000, "view", "i3");
        Map<ScoreKey, String> expected = Map.of(a, "v", b, "v-a", c, "v-a");
        Map<ScoreKey, String> seen = Map.of(a, "v", b, "v", new ScoreKey("u9", 1, "view", "x"), "v");
        Alert alert = Alert.newBuilder(alert("id-1")).setModelVersion("v-a").build();
        assertThat(Report.versionMismatches(expected, seen, Map.of("id-1", alert), Map.of("id-1", "v")))
                .as("b scored by the old model, the alert too; c lost, the stranger unexpected: counted there")
                .isEqualTo(2);
        assertThat(Report.versionMismatches(expected, Map.of(a, "v", b, "v-a"), Map.of("id-1", alert),
                Map.of("id-1", "v-a"))).isZero();
    }

    @Test
    void theRssSlopePerSwapIsTheMedianOfPairwiseSlopesSoOneOutlierDoesNotMoveIt() {
        assertThat(Report.SwapMemory.theilSen(new double[] {100, 101, 102, 103, 104})).isEqualTo(1.0);
        assertThat(Report.SwapMemory.theilSen(new double[] {100, 160, 102, 103, 104, 105, 106}))
                .as("one spike").isEqualTo(1.0);
        assertThat(Report.SwapMemory.theilSen(new double[] {100})).isZero();
    }

    @Test
    void sessionsOrClassLoadersLeftOverAfterTheSwapsFailAndTheSlopeIsJudgedFromFiveSwaps() {
        List<List<Drill.TmLook>> looks = new java.util.ArrayList<>();
        for (int i = 0; i <= 5; i++) {
            looks.add(List.of(new Drill.TmLook(7, "tm-1", 1_000_000 + i * 1024L * 8, 1, 1, 1),
                    new Drill.TmLook(8, "tm-2", 1_000_000, 1, 1, 1)));
        }
        Report.SwapMemory m = Report.SwapMemory.of(looks);
        assertThat(m.worstSlope()).as("tm-1: 8 MB per swap").isEqualTo(8.0);
        assertThat(m.passed()).isFalse();
        assertThat(Report.SwapMemory.of(looks.subList(0, 3)).passed()).as("2 swaps: measured, not judged").isTrue();
        looks.set(5, List.of(new Drill.TmLook(7, "tm-1", 1_000_000, 1, 2, 1),
                new Drill.TmLook(8, "tm-2", 1_000_000, 1, 1, 1)));
        Report.SwapMemory leak = Report.SwapMemory.of(looks);
        assertThat(leak.failure()).contains("1 more live ORT sessions");
    }
}
