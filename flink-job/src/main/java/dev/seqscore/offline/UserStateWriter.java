package dev.seqscore.offline;

import dev.seqscore.scoring.ScoringOperator;
import dev.seqscore.scoring.UserStep;
import java.time.Duration;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.state.api.functions.KeyedStateBootstrapFunction;

/**
 * Writes each user's value into the scorer's "user" state, with exactly the job's descriptor
 * ({@link ScoringOperator#userStateDescriptor}), and registers the user's one cleanup timer; the State Processor API
 * keeps keyed bootstrap timers in the timer service named {@link ScoringOperator#TIMERS} with {@code VoidNamespace},
 * the scorer's own.
 */
final class UserStateWriter extends KeyedStateBootstrapFunction<String, UserValue> {
    private static final long serialVersionUID = 1L;

    private final Duration stateTtl;
    private transient ValueState<byte[]> user;

    UserStateWriter(Duration stateTtl) {
        this.stateTtl = stateTtl;
    }

    @Override
    public void open(OpenContext openContext) throws Exception {
        user = getRuntimeContext().getState(ScoringOperator.userStateDescriptor(stateTtl));
    }

    @Override
    public void processElement(UserValue v, Context ctx) throws Exception {
        user.update(v.value);
        if (v.timer != UserStep.NONE) {
            ctx.timerService().registerEventTimeTimer(v.timer);
        }
    }
}
