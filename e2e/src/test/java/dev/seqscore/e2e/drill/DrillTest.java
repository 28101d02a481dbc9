package dev.seqscore.e2e.drill;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.seqscore.e2e.drill.Drill.Kind;
import dev.seqscore.options.ConfigException;
import org.junit.jupiter.api.Test;

class DrillTest {

    @Test
    void failuresAreInterleavedAndResubmissionsComeLastOnASettledCluster() {
        assertThat(Drill.plan(3, 1, 1, 3)).containsExactly(Kind.TM_KILL, Kind.BROKER_RESTART, Kind.SAVEPOINT_RESUME,
                Kind.TM_KILL, Kind.TM_KILL, Kind.RESUBMISSION, Kind.RESUBMISSION, Kind.RESUBMISSION);
        assertThat(Drill.plan(1, 1, 1, 2)).containsExactly(Kind.TM_KILL, Kind.BROKER_RESTART, Kind.SAVEPOINT_RESUME,
                Kind.RESUBMISSION, Kind.RESUBMISSION);
        assertThat(Drill.plan(0, 0, 0, 0)).isEmpty();
    }

    @Test
    void theModelSwapsComeInTheMiddleRightBeforeATaskManagerKill() {
        assertThat(Drill.plan(3, 1, 1, 3, 1)).containsExactly(Kind.TM_KILL, Kind.BROKER_RESTART,
                Kind.SAVEPOINT_RESUME, Kind.MODEL_SWAP, Kind.TM_KILL, Kind.TM_KILL, Kind.RESUBMISSION,
                Kind.RESUBMISSION, Kind.RESUBMISSION);
        assertThat(Drill.plan(1, 1, 1, 2, 20)).containsExactly(Kind.MODEL_SWAP, Kind.TM_KILL, Kind.BROKER_RESTART,
                Kind.SAVEPOINT_RESUME, Kind.RESUBMISSION, Kind.RESUBMISSION);
        assertThat(Drill.plan(0, 1, 1, 0, 1)).as("no kill: in the middle").containsExactly(Kind.BROKER_RESTART,
                Kind.MODEL_SWAP, Kind.SAVEPOINT_RESUME);
        assertThat(Drill.plan(0, 0, 0, 0, 3)).containsExactly(Kind.MODEL_SWAP);
        assertThat(Drill.plan(3, 1, 1, 3, 0)).isEqualTo(Drill.plan(3, 1, 1, 3));
        assertThat(Drill.OPTIONS.parse("--model-swaps", "20").get(Drill.MODEL_SWAPS)).isEqualTo(20);
        assertThat(Drill.usage()).contains("--model-swaps");
    }

    @Test
    void badFlagsFailBeforeAnythingStartsAndHelpComesFromTheDefinitions() {
        assertThatThrownBy(() -> Drill.OPTIONS.parse("--tm-kills", "-1")).isInstanceOf(ConfigException.class)
                .hasMessageContaining("--tm-kills");
        assertThatThrownBy(() -> Drill.OPTIONS.parse("--rate", "fast")).isInstanceOf(ConfigException.class)
                .hasMessageContaining("--rate");
        assertThatThrownBy(() -> Drill.OPTIONS.parse("--kill-everything")).isInstanceOf(ConfigException.class)
                .hasMessageContaining("unknown option");
        assertThat(Drill.OPTIONS.parse("--quick").get(Drill.QUICK)).isTrue();
        assertThat(Drill.usage()).contains("--quick", "--tm-kills", "--resubmissions", "--work-dir");
    }

    @Test
    void theClusterRestartsForeverAndKeepsTheLatestCheckpointOnCancel() {
        assertThat(Drill.clusterConfig())
                .containsEntry("restart-strategy.type", "fixed-delay")
                .containsEntry("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION");
    }
}
