package dev.seqscore.lifecycle;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Which model serves, and which candidate shadows it, for every event time from the scorer's watermark on: a list of
 * epochs, each starting at the {@code effective_at} of the control record that opened it. Kept in checkpointed
 * operator state, so that events replayed after a recovery meet the models that scored them before.
 *
 * <p>Rules, so that the schedule never rewrites what was already scored: a change must take effect after the
 * scorer's watermark (events up to it may be scored already) and not before the last scheduled change; a promotion
 * or withdrawal needs a candidate at its time. A request id is applied once.
 */
public final class ModelSchedule {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** How many applied request ids are remembered to ignore repeats. */
    private static final int REMEMBERED = 1000;

    /** A model of the schedule: the key of its loaded copy, where it came from, and its version. */
    public record Model(String key, String uri, String version) {}

    /** From {@code from} on (inclusive), {@code serve} scores and alerts, and {@code shadow} (or null) shadows it. */
    public record Epoch(long from, String requestId, Model serve, Model shadow, boolean active) {
        Epoch activated() {
            return new Epoch(from, requestId, serve, shadow, true);
        }

        /** The model in {@code role} from this epoch on (null: no candidate). */
        public Model role(ModelControl.Role role) {
            return role == ModelControl.Role.SERVE ? serve : shadow;
        }
    }

    private final List<Epoch> epochs = new ArrayList<>();
    /** The version of the job's own model (its --model) when the schedule began. */
    private String jobVersion;
    private final Deque<String> applied = new ArrayDeque<>();
    private final Set<String> appliedSet = new HashSet<>();
    /** Keys of the models that shadowed at some point: as serving models they may take over their own state. */
    private final Set<String> shadowed = new LinkedHashSet<>();

    /** A schedule where {@code base} serves from the beginning of time, without a candidate. */
    public ModelSchedule(Model base) {
        epochs.add(new Epoch(Long.MIN_VALUE, null, base, null, true));
        jobVersion = base.version();
    }

    /** The version of the model the job was started with, for which this schedule was written. */
    public String jobVersion() {
        return jobVersion;
    }

    /** The model some epoch knows under {@code key}. */
    public Model model(String key) {
        for (Epoch e : epochs) {
            if (e.serve().key().equals(key)) {
                return e.serve();
            }
            if (e.shadow() != null && e.shadow().key().equals(key)) {
                return e.shadow();
            }
        }
        throw new IllegalArgumentException("no model " + key + " in the schedule");
    }

    private ModelSchedule() {}

    public List<Epoch> epochs() {
        return List.copyOf(epochs);
    }

    /** The epoch of an event at {@code eventTime}. */
    public Epoch at(long eventTime) {
        for (int i = epochs.size() - 1; i > 0; i--) {
            if (epochs.get(i).from() <= eventTime) {
                return epochs.get(i);
            }
        }
        return epochs.get(0);
    }

    /** The last scheduled epoch: what serves once every change has taken effect. */
    public Epoch last() {
        return epochs.get(epochs.size() - 1);
    }

    public boolean applied(String requestId) {
        return appliedSet.contains(requestId);
    }

    /**
     * Why {@code c} cannot be scheduled when the scorer's watermark is {@code watermark}; null if it can (a publish
     * still needs its bundle loaded and checked).
     */
    public String refusal(ModelControl c, long watermark) {
        if (c.effectiveAt() <= watermark) {
            return "effective_at " + c.effectiveAt() + " is not after the scorer's watermark " + watermark
                    + ": events up to there may be scored already; publish again with a later effective_at (bin/seqscore"
                    + " model publish picks the job's watermark plus --lead)";
        }
        long lastFrom = last().from();
        if (c.effectiveAt() < lastFrom) {
            return "effective_at " + c.effectiveAt() + " is before the last scheduled change at " + lastFrom
                    + " (request " + last().requestId() + "): changes take effect in order";
        }
        if (c.action() != ModelControl.Action.PUBLISH && at(c.effectiveAt()).shadow() == null) {
            return "there is no shadow candidate to " + ModelControl.name(c.action()) + " at " + c.effectiveAt()
                    + ": publish one with --role shadow first";
        }
        return null;
    }

    /**
     * Schedules {@code c}, which {@link #refusal} accepted; {@code published} is the loaded bundle of a publish.
     */
    public void apply(ModelControl c, Model published) {
        Epoch before = at(c.effectiveAt());
        Epoch next = switch (c.action()) {
            case PUBLISH -> c.role() == ModelControl.Role.SERVE
                    ? new Epoch(c.effectiveAt(), c.requestId(), published, before.shadow(), false)
                    : new Epoch(c.effectiveAt(), c.requestId(), before.serve(), published, false);
            case PROMOTE -> new Epoch(c.effectiveAt(), c.requestId(), before.shadow(), null, false);
            case WITHDRAW -> new Epoch(c.effectiveAt(), c.requestId(), before.serve(), null, false);
        };
        epochs.add(next);
        if (c.action() == ModelControl.Action.PUBLISH && c.role() == ModelControl.Role.SHADOW) {
            shadowed.add(published.key());
        }
        remember(c.requestId());
    }

    private void remember(String requestId) {
        if (appliedSet.add(requestId)) {
            applied.addLast(requestId);
            if (applied.size() > REMEMBERED) {
                appliedSet.remove(applied.removeFirst());
            }
        }
    }

    /**
     * Once every event up to {@code watermark} is scored: drops the epochs no later event can meet and marks the ones
     * that have begun as active.
     *
     * @return the epochs that became active, oldest first
     */
    public List<Epoch> advance(long watermark) {
        while (epochs.size() > 1 && epochs.get(1).from() - 1 <= watermark) {
            epochs.remove(0);
        }
        List<Epoch> begun = new ArrayList<>();
        for (int i = 0; i < epochs.size(); i++) {
            Epoch e = epochs.get(i);
            if (!e.active() && e.from() <= watermark) {
                epochs.set(i, e.activated());
                begun.add(epochs.get(i));
            }
        }
        return begun;
    }

    /** Whether the model of {@code key} was published as a shadow candidate. */
    public boolean shadowed(String key) {
        return shadowed.contains(key);
    }

    /** The keys of the models some epoch still needs. */
    public Set<String> keysInUse() {
        Set<String> keys = new LinkedHashSet<>();
        for (Epoch e : epochs) {
            keys.add(e.serve().key());
            if (e.shadow() != null) {
                keys.add(e.shadow().key());
            }
        }
        return keys;
    }

    public String toJson() {
        ObjectNode root = JSON.createObjectNode();
        root.put("job_version", jobVersion);
        ArrayNode list = root.putArray("epochs");
        for (Epoch e : epochs) {
            ObjectNode n = list.addObject();
            n.put("from", e.from());
            n.put("request_id", e.requestId());
            n.put("active", e.active());
            model(n.putObject("serve"), e.serve());
            if (e.shadow() != null) {
                model(n.putObject("shadow"), e.shadow());
            }
        }
        ArrayNode ids = root.putArray("applied");
        applied.forEach(ids::add);
        ArrayNode candidates = root.putArray("shadowed");
        shadowed.forEach(candidates::add);
        return root.toString();
    }

    private static void model(ObjectNode n, Model m) {
        n.put("key", m.key());
        n.put("uri", m.uri());
        n.put("version", m.version());
    }

    public static ModelSchedule fromJson(String text) {
        try {
            JsonNode root = JSON.readTree(text);
            ModelSchedule s = new ModelSchedule();
            s.jobVersion = root.get("job_version").asText();
            for (JsonNode n : root.get("epochs")) {
                s.epochs.add(new Epoch(n.get("from").asLong(), textOrNull(n.get("request_id")),
                        model(n.get("serve")), n.has("shadow") ? model(n.get("shadow")) : null,
                        n.get("active").asBoolean()));
            }
            for (JsonNode id : root.get("applied")) {
                s.remember(id.asText());
            }
            if (root.has("shadowed")) {
                root.get("shadowed").forEach(k -> s.shadowed.add(k.asText()));
            }
            if (s.epochs.isEmpty()) {
                throw new IllegalStateException("no epochs");
            }
            return s;
        } catch (Exception e) {
            throw new IllegalStateException("cannot read the model schedule from the checkpoint: " + e, e);
        }
    }

    private static Model model(JsonNode n) {
        return new Model(n.get("key").asText(), textOrNull(n.get("uri")), n.get("version").asText());
    }

    private static String textOrNull(JsonNode n) {
        return n == null || n.isNull() ? null : n.asText();
    }

    @Override
    public String toString() {
        return toJson();
    }
}
