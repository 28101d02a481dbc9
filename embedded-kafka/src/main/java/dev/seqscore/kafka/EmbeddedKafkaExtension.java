package dev.seqscore.kafka;

import java.util.Map;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionConfigurationException;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A JUnit 5 extension that gives a test class one {@link EmbeddedKafka} broker, or each test its own, and stops it
 * afterwards:
 *
 * <pre>{@code
 * class SomeITCase {
 *     @RegisterExtension
 *     static final EmbeddedKafkaExtension kafka = new EmbeddedKafkaExtension();
 *
 *     @Test
 *     void test() {
 *         kafka.createTopics(1, "clicks");
 *         String bootstrap = kafka.bootstrapServers();
 *     }
 * }
 * }</pre>
 *
 * <p>The broker starts on first use, not before the class: a test that skips first (no data file, no binary) starts
 * none. It stops after the class that registers it (its {@code @Nested} classes share it), or with
 * {@link #perTest()} after each test. Register it on a static field: on an instance field JUnit never tells it that
 * the class is done, so per class it refuses to run there.
 *
 * <p>Tests bring JUnit; this module's other users (the demo) never load this class, so JUnit is an optional
 * dependency here.
 */
public final class EmbeddedKafkaExtension
        implements BeforeAllCallback, BeforeEachCallback, AfterEachCallback, AfterAllCallback {

    private final Map<String, String> brokerConfig;
    private final boolean perTest;
    /** The class that registered it (JUnit's unique id), once JUnit has started that class; null before. */
    private String owner;
    private EmbeddedKafka broker;

    /** One broker per test class, configured as {@link EmbeddedKafka#start()} configures it. */
    public EmbeddedKafkaExtension() {
        this(Map.of(), false);
    }

    private EmbeddedKafkaExtension(Map<String, String> brokerConfig, boolean perTest) {
        this.brokerConfig = Map.copyOf(brokerConfig);
        this.perTest = perTest;
    }

    /** Broker properties that win over {@link EmbeddedKafka}'s own, e.g. a fast retention check. */
    public EmbeddedKafkaExtension withBrokerConfig(Map<String, String> config) {
        return new EmbeddedKafkaExtension(config, perTest);
    }

    /** A fresh broker for each test, stopped after it. */
    public EmbeddedKafkaExtension perTest() {
        return new EmbeddedKafkaExtension(brokerConfig, true);
    }

    /** The broker, started if it is not running yet. */
    public synchronized EmbeddedKafka broker() {
        if (broker == null) {
            broker = EmbeddedKafka.start(brokerConfig);
        }
        return broker;
    }

    /** {@link EmbeddedKafka#bootstrapServers()} of {@link #broker()}. */
    public String bootstrapServers() {
        return broker().bootstrapServers();
    }

    /** {@link EmbeddedKafka#createTopics(int, String...)} on {@link #broker()}. */
    public void createTopics(int partitions, String... names) {
        broker().createTopics(partitions, names);
    }

    /** {@link EmbeddedKafka#createTopics(int, Map, String...)} on {@link #broker()}. */
    public void createTopics(int partitions, Map<String, String> topicConfig, String... names) {
        broker().createTopics(partitions, topicConfig, names);
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        if (owner == null) {
            owner = context.getUniqueId(); // @Nested classes inherit the extension; they come later
        }
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        if (!perTest && owner == null) {
            throw new ExtensionConfigurationException("EmbeddedKafkaExtension on an instance field would never stop "
                    + "its broker: make the field static, or use perTest()");
        }
    }

    @Override
    public void afterEach(ExtensionContext context) {
        if (perTest) {
            stop();
        }
    }

    @Override
    public void afterAll(ExtensionContext context) {
        if (context.getUniqueId().equals(owner)) {
            stop();
        }
    }

    private synchronized void stop() {
        if (broker != null) {
            try {
                broker.close();
            } finally {
                broker = null;
            }
        }
    }
}
