package dev.seqscore.features;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ModelSpecTest {

    @Test
    void parsesEveryConstant() {
        ModelSpec spec = SpecFixtures.smallSpec();
        assertThat(spec.modelVersion()).isEqualTo("0123456789abcdef");
        assertThat(spec.onnxFile()).isEqualTo("model.onnx");
        assertThat(spec.opset()).isEqualTo(17);
        assertThat(spec.maxEvents()).isEqualTo(5);
        assertThat(spec.horizonMs()).isEqualTo(3_600_000L);
        assertThat(spec.sessionGapMs()).isEqualTo(600_000L);
        assertThat(spec.utcOffsetMs()).isEqualTo(28_800_000L);
        assertThat(spec.zone()).isEqualTo("+08:00");
        assertThat(spec.vocabulary()).containsExactly("view", "cart", "fav", "buy", "remove_from_cart");
        assertThat(spec.typeId("view")).isEqualTo(1);
        assertThat(spec.typeId("remove_from_cart")).isEqualTo(5);
        assertThat(spec.typeId("purchase")).isZero();
        assertThat(spec.typeId(null)).isZero();
        assertThat(spec.itemBuckets()).isEqualTo(4096);
        assertThat(spec.categoryBuckets()).isEqualTo(1024);
        assertThat(spec.sequenceFeatureNames()).containsExactlyElementsOf(ModelSpec.SEQUENCE_FEATURES);
        assertThat(spec.sequenceMeans()).containsExactly(0, 0, 0, 0, 0, 0.25);
        assertThat(spec.sequenceStds()).containsExactly(1, 1, 1, 1, 1, 0.5);
        assertThat(spec.profileFeatureNames()).hasSize(12).startsWith("count_view").endsWith("window_length");
        assertThat(spec.profileMeans()[11]).isEqualTo(0.5);
        assertThat(spec.profileStds()[11]).isEqualTo(0.25);
        assertThat(spec.inputs()).extracting(ModelSpec.TensorSpec::name)
                .containsExactlyElementsOf(ModelSpec.INPUT_NAMES);
        ModelSpec.TensorSpec seq = spec.inputs().get(3);
        assertThat(seq.dtype()).isEqualTo("float32");
        assertThat(seq.shape()).containsExactly("batch", "5", "6");
        assertThat(seq.dim(0)).isEqualTo(-1);
        assertThat(seq.dim(2)).isEqualTo(6);
        assertThat(spec.outputs()).extracting(ModelSpec.OutputSpec::name).containsExactly("purchase_30m", "churn_24h");
        assertThat(spec.outputs().get(1).alertType()).isEqualTo("CHURN_RISK");
        assertThat(spec.outputs().get(1).threshold()).isEqualTo(0.7);
        assertThat(spec.outputs().get(1).thresholdRule()).isEqualTo("test");
    }

    @Test
    void thresholdRuleObjectIsKeptAsJson() {
        String json = SpecFixtures.edited("\"threshold_rule\": \"test\"",
                "\"threshold_rule\": {\"rule\": \"precision >= 0.5\", \"used\": \"top_fraction\"}");
        ModelSpec spec = ModelSpec.parse(json, "s.json");
        assertThat(spec.outputs().get(0).thresholdRule())
                .isEqualTo("{\"rule\":\"precision >= 0.5\",\"used\":\"top_fraction\"}");
        assertThat(spec.outputs().get(1).thresholdRule()).isEqualTo("test");
    }

    @Test
    void survivesJavaSerialization() throws Exception {
        ModelSpec spec = SpecFixtures.smallSpec();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(spec);
        }
        ModelSpec copy;
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            copy = (ModelSpec) in.readObject();
        }
        assertThat(copy.typeId("buy")).isEqualTo(4);
        assertThat(copy.profileFeatures()).isEqualTo(spec.profileFeatures());
        assertThat(copy.outputs()).isEqualTo(spec.outputs());
        assertThat(copy.inputs()).isEqualTo(spec.inputs());
    }

    @Test
    void accessorsCannotMutateTheSpec() {
        ModelSpec spec = SpecFixtures.smallSpec();
        spec.sequenceMeans()[0] = 42;
        assertThat(spec.sequenceMeans()[0]).isZero();
        assertThatThrownBy(() -> spec.vocabulary().add("x")).isInstanceOf(UnsupportedOperationException.class);
    }

    @Test
    void loadNamesTheFile(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("model-spec.json");
        Files.writeString(file, SpecFixtures.smallSpecJson());
        assertThat(ModelSpec.load(file).source()).isEqualTo(file.toString());
        Files.writeString(file, "{\"format_version\": 1,");
        assertThatThrownBy(() -> ModelSpec.load(file)).hasMessageContaining(file.toString())
                .hasMessageContaining("not valid JSON");
        Path missing = dir.resolve("nope.json");
        assertThatThrownBy(() -> ModelSpec.load(missing)).hasMessageContaining(missing.toString())
                .hasMessageContaining("does not exist");
    }

    @Test
    void rejectsNonObjectJson() {
        assertThatThrownBy(() -> ModelSpec.parse("[1, 2]", "x.json")).hasMessageContaining("x.json")
                .hasMessageContaining("JSON object");
    }

    @Test
    void refusesAFeatureTheJobDoesNotImplement() {
        assertThatThrownBy(() -> ModelSpec.parse(SpecFixtures.edited("\"hour_cos\"", "\"foo\""), "model-spec.json"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("sequence feature 'foo' in model-spec.json is not implemented by this job");
        assertThatThrownBy(() -> ModelSpec.parse(SpecFixtures.edited("\"count_fav\"", "\"count_click\""), "s.json"))
                .hasMessageStartingWith("profile feature 'count_click' in s.json is not implemented by this job");
    }

    @Test
    void countFeaturesFollowTheVocabulary() {
        // With "fav" gone from the vocabulary, count_fav names nothing the encoder can count.
        String json = SpecFixtures.edited("\"fav\", \"buy\"", "\"buy\"");
        assertThatThrownBy(() -> ModelSpec.parse(json, "s.json"))
                .hasMessageContaining("profile feature 'count_fav' in s.json is not implemented");
    }

    @ParameterizedTest(name = "{2}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
            "\"format_version\": 1|\"format_version\": 4|format_version is 4 but this job reads format_version 1, 2 or 3",
            "\"format_version\": 1|\"format_version\": 0|'format_version' must be positive, got 0",
            "\"format_version\": 1,|\"format_versio\": 1,|missing key 'format_version'",
            "\"max_events\": 5|\"max_events\": 0|'window.max_events' must be positive, got 0",
            "\"max_events\": 5|\"max_events\": 5.5|'window.max_events' must be an integer",
            "\"max_events\": 5|\"max_events\": \"5\"|'window.max_events' must be an integer",
            "\"horizon_ms\": 3600000|\"horizon_ms\": -1|'window.horizon_ms' must be positive, got -1",
            ", \"session_gap_ms\": 600000||missing key 'window.session_gap_ms'",
            "\"utc_offset_ms\": 28800000|\"utc_offset_ms\": 86400000|time.utc_offset_ms must be within one day",
            "\"item_buckets\": 4096|\"item_buckets\": 0|'hash.item_buckets' must be positive, got 0",
            "\"category_buckets\": 1024|\"category_buckets\": -3|'hash.category_buckets' must be positive",
            "\"fnv1a64-utf8\"|\"murmur3\"|hash.name is 'murmur3' but this job implements only 'fnv1a64-utf8'",
            "\"model_version\": \"0123456789abcdef\"|\"model_version\": \"\"|'model_version' must be a non-empty",
            "\"onnx_file\": \"model.onnx\"|\"onnx_file\": \"../model.onnx\"|onnx_file must be a file name",
            "\"padding_id\": 0|\"padding_id\": 1|event_types.padding_id must be 0",
            "[\"view\", \"cart\"|[\"view\", \"view\"|vocabulary has the duplicate entry 'view'",
            "\"view\", \"cart\", \"fav\", \"buy\", \"remove_from_cart\"||event_types.vocabulary is empty",
            "\"std\": 0.5|\"std\": 0.0|sequence feature 'same_category' has std 0.0, which must be > 0",
            "\"std\": 0.25|\"std\": -1|profile feature 'window_length' has std -1.0, which must be > 0",
            "\"mean\": 0.25|\"mean\": \"x\"|'sequence_features[5].mean' must be a finite number",
            "\"name\": \"age_log1p\"|\"name\": \"gap_log1p\"|sequence feature 'gap_log1p' appears twice",
            "\"name\": \"count_cart\"|\"name\": \"count_view\"|profile feature 'count_view' appears twice",
            "\"threshold\": 0.7|\"threshold\": 1.5|output 'churn_24h' has threshold 1.5, which is not in [0, 1]",
            "\"threshold\": 0.5|\"threshold\": -0.1|output 'purchase_30m' has threshold -0.1",
            "\"alert_type\": \"CHURN_RISK\",||missing key 'outputs[1].alert_type'",
            "\"name\": \"churn_24h\"|\"name\": \"purchase_30m\"|output 'purchase_30m' appears twice",
            "\"name\": \"mask\"|\"name\": \"masks\"|input 'masks' is not one of the inputs",
            "\"shape\": [\"batch\", 5]}|\"shape\": [\"batch\", 40]}|input 'event_type' has shape [batch, 40]",
            "[\"batch\", 5, 6]|[\"batch\", 5, 7]|input 'seq_numeric' has shape [batch, 5, 7]",
            "[\"batch\", 12]|[1, 12]|input 'profile' has shape [1, 12]",
            "\"dtype\": \"float32\", \"shape\": [\"batch\", 5]}|\"dtype\": \"float64\", \"shape\": [\"batch\", 5]}"
                    + "|input 'mask' has dtype float64 but the contract says float32",
    })
    void failureNamesTheProblemAndTheFile(String from, String to, String message) {
        String json = SpecFixtures.edited(from, to == null ? "" : to);
        assertThatThrownBy(() -> ModelSpec.parse(json, "/b/model-spec.json"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("/b/model-spec.json")
                .hasMessageContaining(message);
    }

    @Test
    void missingInputIsNamed() {
        String json = SpecFixtures.edited("{\"name\": \"mask\", \"dtype\": \"float32\", \"shape\": [\"batch\", 5]},", "");
        assertThatThrownBy(() -> ModelSpec.parse(json, "s.json")).hasMessageContaining("input 'mask' is missing");
    }

    @Test
    void outputsMustNotBeEmpty() {
        String json = SpecFixtures.smallSpecJson().replaceAll("(?s)\"outputs\": \\[.*?\"training_data\"", "\"outputs\": [],\n \"training_data\"");
        assertThat(json).contains("\"outputs\": [],");
        assertThatThrownBy(() -> ModelSpec.parse(json, "s.json")).hasMessageContaining("'outputs' is empty");
    }

    @Test
    void outputMustBeAFloatVectorPerRow() {
        String json = SpecFixtures.edited("\"shape\": [\"batch\"],\n     \"alert_type\": \"CHURN_RISK\"",
                "\"shape\": [\"batch\", 1],\n     \"alert_type\": \"CHURN_RISK\"");
        assertThatThrownBy(() -> ModelSpec.parse(json, "s.json"))
                .hasMessageContaining("output 'churn_24h' has shape [batch, 1] but the contract says [batch]");
    }

    @Test
    void knownFeatureListsMatchTheContract() {
        assertThat(ModelSpec.PROFILE_FEATURES).containsExactly("distinct_items", "distinct_categories",
                "carts_without_buy", "session_events", "since_prev_buy", "has_prev_buy", "window_length",
                "since_prev_event", "same_item_count", "same_category_count", "event_hour_sin", "event_hour_cos");
        assertThat(ModelSpec.TYPE_PREFIXES).containsExactly("count_", "recent_", "is_");
        assertThat(List.copyOf(ModelSpec.INPUT_NAMES)).hasSize(6);
    }

    @Test
    void formatOneHasNoRecentWindowNorQuantiles() {
        ModelSpec spec = SpecFixtures.smallSpec();
        assertThat(spec.formatVersion()).isEqualTo(1);
        assertThat(spec.recentMs()).isZero();
        assertThat(spec.outputs()).allMatch(o -> o.quantiles() == null);
    }

    @Test
    void formatTwoAddsTheRecentWindowTypeFeaturesAndQuantiles() {
        ModelSpec spec = SpecFixtures.smallSpecV2();
        assertThat(spec.formatVersion()).isEqualTo(2);
        assertThat(spec.recentMs()).isEqualTo(600_000L);
        assertThat(spec.profileFeatureNames()).hasSize(27).contains("recent_cart", "is_remove_from_cart",
                "since_prev_event", "event_hour_cos");
        ModelSpec.ScoreQuantiles q = spec.outputs().get(0).quantiles();
        assertThat(q.alertRates()).containsExactly(0.001, 0.01, 0.1, 1.0);
        assertThat(spec.outputs().get(1).quantiles()).isNull();
    }

    @Test
    void quantilesGiveTheThresholdOfAnAlertRate() {
        ModelSpec.ScoreQuantiles q = SpecFixtures.smallSpecV2().outputs().get(0).quantiles();
        assertThat(q.thresholdFor(0.001)).isEqualTo(0.9);
        assertThat(q.thresholdFor(0.01)).isEqualTo(0.5);
        assertThat(q.thresholdFor(1.0)).isEqualTo(0.0);
        // Halfway in log(rate) between 0.01 and 0.1 is sqrt(0.001), halfway between the thresholds.
        assertThat(q.thresholdFor(Math.sqrt(0.001))).isCloseTo(0.35, org.assertj.core.api.Assertions.within(1e-12));
        // A higher alert rate never gives a higher threshold.
        double previous = 1.0;
        for (double r = 0.001; r <= 1.0; r *= 1.1) {
            double t = q.thresholdFor(r);
            assertThat(t).isLessThanOrEqualTo(previous);
            previous = t;
        }
        assertThatThrownBy(() -> q.thresholdFor(0.0005)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("alert rate 5.0E-4 is outside the range the model's score quantiles cover, [0.001, 1.0]");
        assertThatThrownBy(() -> q.thresholdFor(Double.NaN)).hasMessageContaining("outside the range");
    }

    @ParameterizedTest(name = "{2}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
            ", \"recent_ms\": 600000||profile feature 'recent_view' needs 'window.recent_ms', which is missing",
            "\"recent_ms\": 600000|\"recent_ms\": 0|'window.recent_ms' must be positive, got 0",
            "[0.001, 0.01, 0.1, 1.0]|[0.001, 0.1, 0.01, 1.0]|score_quantiles.alert_rate must increase strictly",
            "[0.001, 0.01, 0.1, 1.0]|[0.0, 0.01, 0.1, 1.0]|score_quantiles.alert_rate must increase strictly",
            "[0.9, 0.5, 0.2, 0.0]|[0.9, 0.5, 0.6, 0.0]|score_quantiles.threshold must not increase",
            "[0.9, 0.5, 0.2, 0.0]|[0.9, 0.5, 0.2]|score_quantiles with 4 alert rates and 3 thresholds",
            "[0.9, 0.5, 0.2, 0.0]|[0.9, \"x\", 0.2, 0.0]|'outputs[0].score_quantiles.threshold[1]' must be a finite",
            "\"is_fav\"|\"is_click\"|profile feature 'is_click' in /b/model-spec.json is not implemented",
    })
    void formatTwoFailureNamesTheProblemAndTheFile(String from, String to, String message) {
        String json = SpecFixtures.smallSpecV2Json();
        assertThat(json).contains(from);
        String edited = json.replaceFirst(java.util.regex.Pattern.quote(from),
                java.util.regex.Matcher.quoteReplacement(to == null ? "" : to));
        assertThatThrownBy(() -> ModelSpec.parse(edited, "/b/model-spec.json"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("/b/model-spec.json")
                .hasMessageContaining(message);
    }
    @Test
    void theRateOfAThresholdInvertsTheThresholdOfARate() {
        ModelSpec.ScoreQuantiles q = new ModelSpec.ScoreQuantiles(List.of(0.001, 0.01, 0.1, 1.0),
                List.of(0.9, 0.5, 0.2, 0.0));
        for (double rate : new double[] {0.001, 0.003, 0.01, 0.05, 0.1, 0.4}) {
            assertThat(q.rateFor(q.thresholdFor(rate))).isCloseTo(rate, org.assertj.core.data.Percentage.withPercentage(1e-6));
        }
        assertThat(q.rateFor(0.95)).as("above the top threshold: rarer than any stored rate").isNaN();
        assertThat(q.rateFor(0.0)).isEqualTo(1.0);
    }

    // ---------------------------------------------------------------- reason groups

    private static String withReasons(String groups) {
        return SpecFixtures.edited("\"training_data\":", "\"reasons\": {\"top\": 2, \"groups\": [" + groups
                + "]},\n  \"training_data\":");
    }

    private static final String CARTS = "{\"name\": \"carts\", \"title\": \"carts\", \"sequence\": false, "
            + "\"profile_features\": [\"count_cart\", \"carts_without_buy\"], "
            + "\"text\": \"{carts_without_buy} carts, this one a {event_type}\"}";
    private static final String SEQUENCE = "{\"name\": \"sequence\", \"title\": \"the sequence\", "
            + "\"sequence\": true, \"profile_features\": [], \"text\": \"{window_length} events\"}";

    @Test
    void reasonGroupsResolveTheirFeaturesToProfileColumns() {
        ModelSpec spec = ModelSpec.parse(withReasons(CARTS + ", " + SEQUENCE), "reasons.json");
        assertThat(spec.reasonTop()).isEqualTo(2);
        assertThat(spec.reasonGroups()).extracting(ModelSpec.ReasonGroup::name).containsExactly("carts", "sequence");
        ModelSpec.ReasonGroup carts = spec.reasonGroups().get(0);
        assertThat(carts.profileIndices()).containsExactly(spec.profileFeatureNames().indexOf("count_cart"),
                spec.profileFeatureNames().indexOf("carts_without_buy"));
        assertThat(carts.sequence()).isFalse();
        assertThat(spec.reasonGroups().get(1).sequence()).isTrue();
        assertThat(spec.reasonGroups().get(1).profileIndices()).isEmpty();
    }

    @Test
    void aSpecWithoutReasonsHasNoGroups() {
        assertThat(SpecFixtures.smallSpec().reasonGroups()).isEmpty();
        assertThat(SpecFixtures.smallSpec().reasonTop()).isZero();
    }

    @Test
    void reasonGroupsAreValidatedWithTheGroupNamed() {
        assertThatThrownBy(() -> ModelSpec.parse(withReasons(CARTS.replace("\"count_cart\"", "\"count_hug\"")), "r"))
                .hasMessageContaining("reason group 'carts'").hasMessageContaining("'count_hug'");
        assertThatThrownBy(() -> ModelSpec.parse(withReasons(CARTS.replace("{event_type}", "{mood}")), "r"))
                .hasMessageContaining("reason group 'carts'").hasMessageContaining("{mood}");
        assertThatThrownBy(() -> ModelSpec.parse(withReasons(CARTS + ", " + CARTS), "r"))
                .hasMessageContaining("'carts' appears twice");
        assertThatThrownBy(() -> ModelSpec.parse(withReasons(SEQUENCE.replace("true", "false")), "r"))
                .hasMessageContaining("occludes nothing");
    }

    @Test
    void theCommittedModelsGroupsCoverEveryProfileFeatureOnce() {
        ModelSpec spec = ModelSpec.load(dev.seqscore.testing.RepoPaths.defaultModel().resolve("model-spec.json"));
        List<Integer> covered = new java.util.ArrayList<>();
        for (ModelSpec.ReasonGroup g : spec.reasonGroups()) {
            for (int i : g.profileIndices()) {
                covered.add(i);
            }
        }
        assertThat(covered).hasSize(spec.profileFeatures().size()).doesNotHaveDuplicates();
        assertThat(spec.reasonGroups()).filteredOn(ModelSpec.ReasonGroup::sequence).hasSize(1);
        assertThat(spec.reasonTop()).isPositive();
    }

    // ---------------------------------------------------------------- format 3: the streaming model

    @Test
    void formatThreeReadsTheStreamingModel() {
        ModelSpec spec = SpecFixtures.smallSpecV3();
        assertThat(spec.formatVersion()).isEqualTo(3);
        ModelSpec.Streaming st = spec.streaming().orElseThrow();
        assertThat(st.onnxFile()).isEqualTo("step.onnx");
        assertThat(st.modelVersion()).isEqualTo("fedcba9876543210");
        assertThat(st.stateSize()).isEqualTo(4);
        assertThat(st.resetGapMs()).isEqualTo(30L * 86_400_000L);
        assertThat(st.lifetimeFeatureNames()).containsExactly("life_count_view", "life_count_cart", "life_count_fav",
                "life_count_buy", "life_count_remove_from_cart", "life_active_days", "life_days_since_first",
                "life_since_prev_event", "life_since_prev_buy", "life_has_prev_buy");
        assertThat(st.lifetimeFeatures().get(0)).isEqualTo(new ModelSpec.FeatureSpec("life_count_view", 1.5, 2.0));
        assertThat(st.inputs()).extracting(ModelSpec.TensorSpec::name).containsExactly("event_type", "item_bucket",
                "category_bucket", "seq_numeric", "mask", "profile", "lifetime", "state");
        assertThat(st.inputs().get(6).shape()).containsExactly("batch", "10");
        assertThat(st.graphOutputs()).extracting(ModelSpec.TensorSpec::shapeString)
                .containsExactly("[batch, 2]", "[batch, 4]");
        assertThat(st.outputs()).extracting(ModelSpec.OutputSpec::threshold).containsExactly(0.6, 0.8);
        assertThat(st.outputs().get(0).quantiles().thresholdFor(0.01)).isEqualTo(0.6);
        assertThat(st.outputs().get(0).thresholdRule()).isEqualTo("{\"kind\":\"alert_rate\",\"target\":0.01}");
        assertThat(st.reasonTop()).isEqualTo(3);
        assertThat(st.reasonGroups()).extracting(ModelSpec.ReasonGroup::name)
                .containsExactly("carts", "history", "sequence");
        assertThat(st.reasonGroups()).extracting(ModelSpec.ReasonGroup::history).containsExactly(false, true, false);
        assertThat(st.goldenFile()).isEqualTo("golden-step.jsonl");
        // The windowed model is still there, unchanged.
        assertThat(spec.reasonGroups()).extracting(ModelSpec.ReasonGroup::history).containsOnly(false);
        assertThat(spec.outputs()).extracting(ModelSpec.OutputSpec::threshold).containsExactly(0.5, 0.7);
    }

    @Test
    void formatsOneAndTwoHaveNoStreamingModel() {
        for (ModelSpec spec : List.of(SpecFixtures.smallSpec(), SpecFixtures.smallSpecV2())) {
            assertThat(spec.streaming()).isEmpty();
            assertThat(spec.served(Scoring.WINDOWED).outputs()).isEqualTo(spec.outputs());
        }
        ModelSpec v2 = ModelSpec.parse(SpecFixtures.smallSpecV2Json(), "/m/default/model-spec.json");
        assertThatThrownBy(() -> v2.served(Scoring.INCREMENTAL)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("bundle /m/default (format 2) has no streaming model: use --scoring windowed or a bundle "
                        + "exported by this version of model-export");
    }

    @Test
    void servedHidesWhichModelIsServed() {
        ModelSpec spec = SpecFixtures.smallSpecV3();
        ModelSpec.Served windowed = spec.served(Scoring.WINDOWED);
        assertThat(windowed.scoring()).isEqualTo(Scoring.WINDOWED);
        assertThat(windowed.incremental()).isFalse();
        assertThat(windowed.modelVersion()).isEqualTo("0123456789abcdee");
        assertThat(windowed.onnxFile()).isEqualTo("model.onnx");
        assertThat(windowed.outputs()).isEqualTo(spec.outputs());
        assertThat(windowed.reasonGroups()).isEqualTo(spec.reasonGroups());
        assertThat(windowed.reasonTop()).isEqualTo(2);
        assertThat(windowed.stateSize()).isZero();
        assertThat(windowed.lifetimeFeatures()).isEmpty();
        assertThat(windowed.resetGapMs()).isZero();
        assertThat(windowed.inputs()).isEqualTo(spec.inputs());
        assertThat(windowed.graphOutputs()).extracting(ModelSpec.TensorSpec::name)
                .containsExactly("purchase_30m", "churn_24h");

        ModelSpec.Streaming st = spec.streaming().orElseThrow();
        ModelSpec.Served incremental = spec.served(Scoring.INCREMENTAL);
        assertThat(incremental.incremental()).isTrue();
        assertThat(incremental.modelVersion()).isEqualTo("fedcba9876543210");
        assertThat(incremental.versionTag()).isEqualTo(0xfedcba9876543210L);
        assertThat(incremental.onnxFile()).isEqualTo("step.onnx");
        assertThat(incremental.outputs()).isEqualTo(st.outputs());
        assertThat(incremental.outputNames()).containsExactly("purchase_30m", "churn_24h");
        assertThat(incremental.reasonGroups()).isEqualTo(st.reasonGroups());
        assertThat(incremental.reasonTop()).isEqualTo(3);
        assertThat(incremental.stateSize()).isEqualTo(4);
        assertThat(incremental.lifetimeFeatures()).isEqualTo(st.lifetimeFeatures());
        assertThat(incremental.resetGapMs()).isEqualTo(2_592_000_000L);
        assertThat(incremental.inputs()).isEqualTo(st.inputs());
        assertThat(incremental.graphOutputs()).isEqualTo(st.graphOutputs());
    }

    @Test
    void formatThreeSurvivesJavaSerialization() throws Exception {
        ModelSpec spec = SpecFixtures.smallSpecV3();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(spec);
            out.writeObject(spec.served(Scoring.INCREMENTAL));
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            ModelSpec copy = (ModelSpec) in.readObject();
            ModelSpec.Served served = (ModelSpec.Served) in.readObject();
            assertThat(copy.streaming().orElseThrow().lifetimeFeatures())
                    .isEqualTo(spec.streaming().orElseThrow().lifetimeFeatures());
            assertThat(served.stateSize()).isEqualTo(4);
            assertThat(served.scoring()).isEqualTo(Scoring.INCREMENTAL);
        }
    }

    @Test
    void versionTagsAreCompactNonZeroAndStable() {
        assertThat(ModelSpec.versionTag("6590434fbad6a47f")).isEqualTo(0x6590434fbad6a47fL);
        assertThat(ModelSpec.versionTag("ffffffffffffffff")).isEqualTo(-1L);
        assertThat(ModelSpec.versionTag("0000000000000000")).as("0 means no model").isNotZero();
        assertThat(ModelSpec.versionTag("v1.2")).isEqualTo(ModelSpec.versionTag("v1.2")).isEqualTo(Fnv1a64.hash("v1.2"))
                .isNotEqualTo(ModelSpec.versionTag("v1.3")).isNotZero();
        assertThat(ModelSpec.versionTag("6590434fbad6a47")).as("15 hex chars: hashed")
                .isEqualTo(Fnv1a64.hash("6590434fbad6a47"));
        assertThatThrownBy(() -> ModelSpec.versionTag("")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ModelSpec.versionTag(null)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void knownLifetimeFeaturesMatchTheContract() {
        assertThat(ModelSpec.LIFETIME_FEATURES).containsExactly("life_active_days", "life_days_since_first",
                "life_since_prev_event", "life_since_prev_buy", "life_has_prev_buy");
        assertThat(ModelSpec.LIFE_COUNT_PREFIX).isEqualTo("life_count_");
    }

    /** The v3 spec with the first {@code from} after {@code "streaming": {} replaced. */
    private static String editedStreaming(String from, String to) {
        String json = SpecFixtures.smallSpecV3Json();
        int at = json.indexOf("\"streaming\": {");
        int i = json.indexOf(from, at);
        if (at < 0 || i < 0) throw new IllegalArgumentException("no '" + from + "' in the streaming section");
        return json.substring(0, i) + to + json.substring(i + from.length());
    }

    @ParameterizedTest(name = "{2}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
            "\"life_has_prev_buy\"|\"life_has_prev_fav\"|lifetime feature 'life_has_prev_fav' in /b/model-spec.json "
                    + "is not implemented by this job",
            "\"life_count_cart\"|\"life_count_click\"|lifetime feature 'life_count_click' in /b/model-spec.json",
            "\"name\": \"life_count_cart\"|\"name\": \"life_count_view\"|lifetime feature 'life_count_view' appears "
                    + "twice in 'streaming.lifetime_features'",
            "\"std\": 0.75|\"std\": 0|lifetime feature 'life_active_days' has std 0.0",
            "[\"batch\", 10]|[\"batch\", 9]|input 'lifetime' has shape [batch, 9] but the windowed inputs, "
                    + "streaming.lifetime_features and streaming.state_size imply [batch, 10]",
            "\"state\", \"dtype\": \"float32\", \"shape\": [\"batch\", 4]|\"state\", \"dtype\": \"float32\", "
                    + "\"shape\": [\"batch\", 5]|input 'state' has shape [batch, 5]",
            "[\"batch\", 5, 6]|[\"batch\", 6, 6]|input 'seq_numeric' has shape [batch, 6, 6]",
            "\"profile\", \"dtype\": \"float32\"|\"profile\", \"dtype\": \"float64\"|input 'profile' has dtype "
                    + "float64 but the contract says float32",
            "\"name\": \"mask\"|\"name\": \"attention_mask\"|input 'attention_mask' is not one of the inputs this "
                    + "job produces [event_type, item_bucket, category_bucket, seq_numeric, mask, profile, lifetime, state]",
            "[\"batch\", 2]|[\"batch\", 3]|graph output 'scores' has shape [batch, 3] but streaming.outputs and "
                    + "streaming.state_size imply [batch, 2]",
            "\"state_out\"|\"state_next\"|graph output 'state_next' is not one of the graph outputs this job reads "
                    + "[scores, state_out]",
            "\"state_size\": 4|\"state_size\": 0|'streaming.state_size' must be positive, got 0",
            "\"reset_gap_ms\": 2592000000,||missing key 'streaming.reset_gap_ms'",
            "\"model_version\": \"fedcba9876543210\"|\"model_version\": 7|'streaming.model_version' must be a "
                    + "non-empty string",
            "\"step.onnx\"|\"model.onnx\"|the step graph needs a file of its own",
            "\"step.onnx\"|\"../step.onnx\"|streaming.onnx_file must be a file name inside the bundle directory",
            "\"golden-step.jsonl\"|\"a/golden.jsonl\"|streaming.golden_file must be a file name",
            "\"threshold\": 0.8|\"threshold\": 1.5|output 'churn_24h' has threshold 1.5, which is not in [0, 1]",
            "\"alert_type\": \"CHURN_RISK\",||missing key 'streaming.outputs[1].alert_type'",
            "\"history\": true|\"history\": \"yes\"|'streaming.reasons.groups[1].history' must be true or false",
            "{life_active_days}|{life_hours}|reason group 'history' text refers to {life_hours}, which is neither a "
                    + "profile or lifetime feature nor {event_type}",
            "\"history\": true|\"history\": false|reason group 'history' occludes nothing: no profile features, not "
                    + "the sequence, not the history",
    })
    void formatThreeFailureNamesTheProblemAndTheFile(String from, String to, String message) {
        String json = editedStreaming(from, to == null ? "" : to);
        assertThatThrownBy(() -> ModelSpec.parse(json, "/b/model-spec.json"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("/b/model-spec.json")
                .hasMessageContaining(message);
    }

    @Test
    void missingStepInputIsNamed() {
        String json = editedStreaming(",\n      {\"name\": \"state\", \"dtype\": \"float32\", \"shape\": [\"batch\", 4]}",
                "");
        assertThatThrownBy(() -> ModelSpec.parse(json, "s.json"))
                .hasMessageContaining("input 'state' is missing from 'streaming.inputs'");
    }

    @Test
    void theStreamingSectionBelongsToFormatThree() {
        String v3 = SpecFixtures.smallSpecV3Json();
        String withoutStreaming = v3.replaceAll("(?s)  \"streaming\": \\{.*?\n  },\n", "");
        assertThat(withoutStreaming).doesNotContain("step.onnx").contains("\"training_data\"");
        assertThatThrownBy(() -> ModelSpec.parse(withoutStreaming, "s.json"))
                .hasMessageContaining("format_version 3 needs a 'streaming' section");
        String asV2 = v3.replace("\"format_version\": 3", "\"format_version\": 2");
        assertThatThrownBy(() -> ModelSpec.parse(asV2, "s.json"))
                .hasMessageContaining("'streaming' needs format_version 3, but the spec says 2");
        String noGolden = v3.replace(",\n    \"golden_file\": \"golden-step.jsonl\"", "");
        assertThat(ModelSpec.parse(noGolden, "s.json").streaming().orElseThrow().goldenFile()).isNull();
        String noReasons = v3.replaceAll("(?s),\n    \"reasons\": \\{\"top\": 3.*?\n    ]},", ",");
        ModelSpec.Streaming st = ModelSpec.parse(noReasons, "s.json").streaming().orElseThrow();
        assertThat(st.reasonGroups()).isEmpty();
        assertThat(st.reasonTop()).isZero();
    }

    @Test
    void aHistoryGroupMayListTheLifetimeFeaturesItOccludes() {
        String all = "\"lifetime_features\": [\"life_count_view\", \"life_count_cart\", \"life_count_fav\", "
                + "\"life_count_buy\", \"life_count_remove_from_cart\", \"life_active_days\", \"life_days_since_first\", "
                + "\"life_since_prev_event\", \"life_since_prev_buy\", \"life_has_prev_buy\"], ";
        String listed = editedStreaming("\"history\": true, ", "\"history\": true, " + all);
        assertThat(ModelSpec.parse(listed, "s.json").streaming().orElseThrow().reasonGroups().get(1).history()).isTrue();
        String some = editedStreaming("\"history\": true, ", "\"history\": true, \"lifetime_features\": "
                + "[\"life_count_buy\"], ");
        assertThatThrownBy(() -> ModelSpec.parse(some, "s.json"))
                .hasMessageContaining("reason group 'history' occludes the history, which sets every lifetime feature "
                        + "to its mean, but lists only [\"life_count_buy\"]");
        String unknown = editedStreaming("\"history\": true, ", "\"history\": true, \"lifetime_features\": "
                + "[\"life_count_hug\"], ");
        assertThatThrownBy(() -> ModelSpec.parse(unknown, "s.json"))
                .hasMessageContaining("names lifetime feature '\"life_count_hug\"', which is not in");
        String notHistory = editedStreaming("\"sequence\": false, \"text\": \"{carts_without_buy}",
                "\"sequence\": false, \"lifetime_features\": [\"life_count_buy\"], \"text\": \"{carts_without_buy}");
        assertThatThrownBy(() -> ModelSpec.parse(notHistory, "s.json"))
                .hasMessageContaining("reason group 'carts' lists lifetime features but does not occlude the history");
    }

    @Test
    void onlyTheStreamingModelsGroupsMayOccludeTheHistory() {
        String json = withReasons(CARTS.replace("\"sequence\": false,", "\"sequence\": false, \"history\": true,"));
        assertThatThrownBy(() -> ModelSpec.parse(json, "r.json"))
                .hasMessageContaining("reason group 'carts' occludes the history, which only the streaming model has");
        String lifetimeText = withReasons(CARTS.replace("{carts_without_buy}", "{life_count_buy}"));
        assertThatThrownBy(() -> ModelSpec.parse(lifetimeText, "r.json"))
                .hasMessageContaining("{life_count_buy}, which is neither a profile feature nor {event_type}");
    }
}
