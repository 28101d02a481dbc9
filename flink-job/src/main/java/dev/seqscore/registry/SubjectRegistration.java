package dev.seqscore.registry;

import dev.seqscore.options.ConfigException;
import org.apache.avro.Schema;

/**
 * Registers the job's output schemas before submission, under each topic's value subject (the TopicNameStrategy
 * that registry-aware serializers use by default: {@code <topic>-value}), and returns the ids the sinks frame
 * their records with. The registry checks each schema against the subject's compatibility level; a refusal or an
 * unreachable registry stops the job from being built, with a message that says which.
 */
public final class SubjectRegistration {
    private SubjectRegistration() {}

    /** The value subject of a topic under the TopicNameStrategy. */
    public static String valueSubject(String topic) {
        return topic + "-value";
    }

    /** The id of {@code schema} under the topic's value subject, registering it if the subject lacks it. */
    public static int register(RegistryEndpoint endpoint, String topic, Schema schema) {
        String subject = valueSubject(topic);
        try {
            return new RegistryClient(endpoint).register(subject, schema.toString());
        } catch (RegistryClient.SchemaRejectedException e) {
            throw new ConfigException("the schema registry at " + endpoint.url() + " refuses " + schema.getName()
                    + "'s schema (schemas/avro/" + schema.getName() + ".avsc) for subject " + subject + ": "
                    + e.getMessage() + ". The subject's versions are incompatible with it under the subject's "
                    + "compatibility level: use another topic, or evolve the subject as schemas/README.md describes");
        } catch (RegistryClient.RegistryUnavailableException e) {
            throw new ConfigException("cannot register " + schema.getName() + "'s schema for subject " + subject
                    + " before submission: " + e.getMessage() + ". The job registers its output schemas when it is "
                    + "built, so the registry must be reachable from where main() runs (" + endpoint.url() + ")");
        }
    }
}
