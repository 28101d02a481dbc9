package dev.seqscore.testing;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.flink.api.common.JobID;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.Metric;
import org.apache.flink.runtime.clusterframework.types.ResourceID;
import org.apache.flink.runtime.executiongraph.ExecutionAttemptID;
import org.apache.flink.runtime.metrics.groups.TaskManagerMetricGroup;
import org.apache.flink.runtime.metrics.groups.TaskMetricGroup;
import org.apache.flink.runtime.metrics.util.TestingMetricRegistry;
import org.apache.flink.runtime.operators.testutils.MockEnvironment;
import org.apache.flink.runtime.operators.testutils.MockEnvironmentBuilder;

/**
 * Every metric an operator registers in a test harness, with the labels a reporter would give it. The harness's
 * default metric group discards metrics; this one hangs the operator under a real task metric group of Flink's
 * whose registry hands each metric, its name and its group's variables (the labels) to the test.
 *
 * <p>Usage: build the harness on {@link #environment()}, then look metrics up by name and labels.
 */
public final class CapturedMetrics implements AutoCloseable {
    private record Registered(String name, Map<String, String> labels, Metric metric) {}

    private final List<Registered> registered = new CopyOnWriteArrayList<>();
    private final TaskManagerMetricGroup taskManager;
    private final TaskMetricGroup task;
    private final List<MockEnvironment> environments = new ArrayList<>();

    public CapturedMetrics() {
        TestingMetricRegistry registry = TestingMetricRegistry.builder()
                .setRegisterConsumer((metric, name, group) -> registered.add(
                        new Registered(name, labelsOf(group.getAllVariables()), metric)))
                .build();
        taskManager = TaskManagerMetricGroup.createTaskManagerMetricGroup(registry, "localhost", ResourceID.generate());
        task = taskManager.addJob(new JobID(), "test-job").addTask(ExecutionAttemptID.randomId(), "test-task");
    }

    /** Flink names variables {@code <key>}; reporters strip the brackets, and so do we. */
    private static Map<String, String> labelsOf(Map<String, String> variables) {
        Map<String, String> labels = new LinkedHashMap<>();
        variables.forEach((k, v) -> labels.put(k.replaceAll("^<|>$", ""), v));
        return labels;
    }

    /** An environment for one harness (subtask 0 of 1), whose operators register their metrics here. */
    public MockEnvironment environment(int maxParallelism) {
        MockEnvironment env = new MockEnvironmentBuilder()
                .setMetricGroup(task)
                .setMaxParallelism(maxParallelism)
                .build();
        environments.add(env);
        return env;
    }

    public Counter counter(String name, String... labels) {
        return find(Counter.class, name, labels);
    }

    public Histogram histogram(String name, String... labels) {
        return find(Histogram.class, name, labels);
    }

    public Gauge<?> gauge(String name, String... labels) {
        return find(Gauge.class, name, labels);
    }

    /** The label sets under which a metric of this name was registered. */
    public List<Map<String, String>> labelSets(String name) {
        return registered.stream().filter(r -> r.name.equals(name)).map(r -> r.labels).toList();
    }

    private <M extends Metric> M find(Class<M> type, String name, String... labels) {
        if (labels.length % 2 != 0) {
            throw new IllegalArgumentException("labels come in key, value pairs");
        }
        List<Registered> matches = registered.stream()
                .filter(r -> r.name.equals(name) && type.isInstance(r.metric))
                .filter(r -> {
                    for (int i = 0; i < labels.length; i += 2) {
                        if (!labels[i + 1].equals(r.labels.get(labels[i]))) {
                            return false;
                        }
                    }
                    return true;
                })
                .toList();
        if (matches.size() != 1) {
            throw new AssertionError(matches.size() + " " + type.getSimpleName() + " metrics named " + name
                    + " with labels " + List.of(labels) + "; registered: " + labelSets(name));
        }
        return type.cast(matches.get(0).metric);
    }

    @Override
    public void close() throws Exception {
        for (MockEnvironment env : environments) {
            env.close();
        }
        task.close();
        taskManager.close();
    }
}
