package dev.seqscore.lifecycle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The schedule's rules: which model each event time meets, what is refused, what is dropped, what a restore reads. */
class ModelScheduleTest {
    private static final ModelSchedule.Model JOB = new ModelSchedule.Model("job", null, "v1");
    private static final ModelSchedule.Model V2 = new ModelSchedule.Model("req:a", "/m/v2", "v2");
    private static final ModelSchedule.Model V3 = new ModelSchedule.Model("req:b", "/m/v3", "v3");

    @Test
    void eachEventTimeMeetsTheLastChangeAtOrBeforeIt() {
        ModelSchedule s = new ModelSchedule(JOB);
        s.apply(ModelControl.publish("a", ModelControl.Role.SERVE, "/m/v2", 100), V2);
        s.apply(ModelControl.publish("b", ModelControl.Role.SHADOW, "/m/v3", 200), V3);
        s.apply(ModelControl.of("c", ModelControl.Action.PROMOTE, 300), null);

        assertThat(s.at(99).serve()).isEqualTo(JOB);
        assertThat(s.at(100).serve()).isEqualTo(V2);
        assertThat(s.at(199).shadow()).isNull();
        assertThat(s.at(200).serve()).isEqualTo(V2);
        assertThat(s.at(200).shadow()).isEqualTo(V3);
        assertThat(s.at(300).serve()).isEqualTo(V3);
        assertThat(s.at(300).shadow()).isNull();
        assertThat(s.shadowed("req:b")).isTrue();
        assertThat(s.shadowed("req:a")).isFalse();
    }

    @Test
    void lateOutOfOrderAndCandidateLessChangesAreRefused() {
        ModelSchedule s = new ModelSchedule(JOB);
        assertThat(s.refusal(ModelControl.publish("a", ModelControl.Role.SERVE, "/m", 100), 100))
                .contains("is not after the scorer's watermark 100");
        assertThat(s.refusal(ModelControl.publish("a", ModelControl.Role.SERVE, "/m", 101), 100)).isNull();
        s.apply(ModelControl.publish("a", ModelControl.Role.SERVE, "/m/v2", 500), V2);
        assertThat(s.refusal(ModelControl.publish("b", ModelControl.Role.SHADOW, "/m", 400), 100))
                .contains("before the last scheduled change at 500");
        assertThat(s.refusal(ModelControl.of("c", ModelControl.Action.PROMOTE, 600), 100))
                .contains("no shadow candidate to promote");
        assertThat(s.refusal(ModelControl.of("c", ModelControl.Action.WITHDRAW, 600), 100))
                .contains("no shadow candidate to withdraw");
        assertThat(s.applied("a")).isTrue();
        assertThat(s.applied("b")).isFalse();
    }

    @Test
    void theWatermarkDropsWhatNoLaterEventMeetsAndActivatesWhatBegan() {
        ModelSchedule s = new ModelSchedule(JOB);
        s.apply(ModelControl.publish("a", ModelControl.Role.SERVE, "/m/v2", 100), V2);
        s.apply(ModelControl.publish("b", ModelControl.Role.SHADOW, "/m/v3", 200), V3);
        assertThat(s.keysInUse()).containsExactly("job", "req:a", "req:b");

        assertThat(s.advance(98)).isEmpty();
        assertThat(s.keysInUse()).containsExactly("job", "req:a", "req:b");
        // Events after 99 meet v2 only: the job's model is done.
        List<ModelSchedule.Epoch> begun = s.advance(99);
        assertThat(begun).isEmpty();
        assertThat(s.keysInUse()).containsExactly("req:a", "req:b");
        begun = s.advance(100);
        assertThat(begun).singleElement().satisfies(e -> assertThat(e.requestId()).isEqualTo("a"));
        assertThat(s.advance(150)).isEmpty();
        assertThat(s.advance(Long.MAX_VALUE)).singleElement()
                .satisfies(e -> assertThat(e.shadow()).isEqualTo(V3));
        assertThat(s.epochs()).hasSize(1);
    }

    @Test
    void aRestoredScheduleIsTheOneWritten() {
        ModelSchedule s = new ModelSchedule(JOB);
        s.apply(ModelControl.publish("a", ModelControl.Role.SHADOW, "/m/v2", 100), V2);
        s.advance(150);
        ModelSchedule back = ModelSchedule.fromJson(s.toJson());
        assertThat(back.epochs()).isEqualTo(s.epochs());
        assertThat(back.jobVersion()).isEqualTo("v1");
        assertThat(back.applied("a")).isTrue();
        assertThat(back.shadowed("req:a")).isTrue();
        assertThat(back.model("req:a")).isEqualTo(V2);
        assertThatThrownBy(() -> ModelSchedule.fromJson("{\"epochs\": []}"))
                .hasMessageContaining("cannot read the model schedule");
    }

    @Test
    void controlRecordsSayWhatIsWrong() {
        assertThat(ModelControl.parse(ModelControl.publish("r", ModelControl.Role.SHADOW, "s3://b/m", 5).toJson()))
                .isEqualTo(ModelControl.publish("r", ModelControl.Role.SHADOW, "s3://b/m", 5));
        assertThatThrownBy(() -> ModelControl.parse("nope")).hasMessageStartingWith("not JSON");
        assertThatThrownBy(() -> ModelControl.parse("{\"request_id\":\"r\",\"action\":\"publish\",\"effective_at\":1}"))
                .hasMessageContaining("needs a role");
        assertThatThrownBy(() -> ModelControl.parse("{\"request_id\":\"r\",\"action\":\"swap\",\"effective_at\":1}"))
                .hasMessageContaining("action 'swap' is not one of publish, promote, withdraw");
        assertThatThrownBy(() -> ModelControl.parse("{\"request_id\":\"r\",\"action\":\"promote\"}"))
                .hasMessageContaining("effective_at must be an event time");
        assertThatThrownBy(() -> ModelControl.parse(
                "{\"request_id\":\"r\",\"action\":\"promote\",\"uri\":\"/x\",\"effective_at\":1}"))
                .hasMessageContaining("promote takes no role and no uri");
    }
}
