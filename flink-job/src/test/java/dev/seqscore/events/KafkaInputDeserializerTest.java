package dev.seqscore.events;

import static dev.seqscore.testing.Clicks.ALICE;
import static dev.seqscore.testing.Clicks.click;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.PojoTypeInfo;
import org.apache.flink.api.common.functions.util.ListCollector;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/**
 * The Kafka source's deserializer: exactly one {@link InputRecord} per consumer record, carrying topic, partition
 * and offset whether or not the value decodes, and a produced type Flink serializes as a POJO (no Kryo in state).
 */
class KafkaInputDeserializerTest {

    @Test
    void everyConsumerRecordYieldsOneRecordWithItsOrigin() throws Exception {
        KafkaInputDeserializer d = new KafkaInputDeserializer(InputFormat.AVRO);
        List<InputRecord> out = new ArrayList<>();

        d.deserialize(new ConsumerRecord<>("clicks", 3, 11L, null, click(ALICE).avro()), new ListCollector<>(out));
        d.deserialize(new ConsumerRecord<>("clicks", 3, 12L, null, new byte[] {1, 2, 3}), new ListCollector<>(out));
        d.deserialize(new ConsumerRecord<>("clicks", 4, 13L, null, null), new ListCollector<>(out));

        assertThat(out).hasSize(3);
        assertThat(out).extracting(r -> r.sourceTopic, r -> r.sourcePartition, r -> r.sourceOffset)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("clicks", 3, 11L),
                        org.assertj.core.groups.Tuple.tuple("clicks", 3, 12L),
                        org.assertj.core.groups.Tuple.tuple("clicks", 4, 13L));
        assertThat(out).extracting(InputRecord::isDecoded).containsExactly(true, false, false);
        assertThat(out.get(0).userId).isEqualTo(ALICE);
    }

    @Test
    void producedTypeIsAPojo() {
        TypeInformation<InputRecord> type = new KafkaInputDeserializer(InputFormat.JSON).getProducedType();

        assertThat(type).isInstanceOf(PojoTypeInfo.class);
    }
}
