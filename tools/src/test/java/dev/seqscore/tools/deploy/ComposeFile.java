package dev.seqscore.tools.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The repository's docker-compose.yml read as data, with the job and replay arguments its commands pass. */
final class ComposeFile {
    final Path root;
    final JsonNode compose;

    private ComposeFile(Path root, JsonNode compose) {
        this.root = root;
        this.compose = compose;
    }

    static ComposeFile load() throws IOException {
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null && !Files.isRegularFile(dir.resolve("docker-compose.yml"))) {
            dir = dir.getParent();
        }
        if (dir == null) {
            throw new IllegalStateException("no docker-compose.yml above " + Path.of("").toAbsolutePath());
        }
        return new ComposeFile(dir, new ObjectMapper(new YAMLFactory()).readTree(dir.resolve("docker-compose.yml").toFile()));
    }

    JsonNode service(String name) {
        JsonNode s = compose.path("services").path(name);
        if (s.isMissingNode()) {
            throw new AssertionError("docker-compose.yml has no service " + name);
        }
        return s;
    }

    /** A service's shell command (the compose files use ["/bin/sh", "-c"] with one script). */
    String script(String service) {
        return service(service).path("command").get(0).asText();
    }

    /** The Flink configuration the JobManager and TaskManagers share, as key/value pairs. */
    Map<String, String> flinkProperties(String service) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String line : service(service).path("environment").path("FLINK_PROPERTIES").asText().split("\n")) {
            int colon = line.indexOf(':');
            if (colon > 0) {
                out.put(line.substring(0, colon).trim(), line.substring(colon + 1).trim());
            }
        }
        return out;
    }

    /** The whitespace-separated arguments of a file under deploy/flink, as the container's $(cat ...) passes them. */
    List<String> args(String file) throws IOException {
        String text = Files.readString(root.resolve("deploy/flink").resolve(file)).trim();
        return new ArrayList<>(Arrays.asList(text.split("\\s+")));
    }
}
