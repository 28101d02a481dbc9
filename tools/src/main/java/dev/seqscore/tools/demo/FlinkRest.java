package dev.seqscore.tools.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** A small reader of Flink's REST API (the one behind the web UI): GET a path, get JSON back. */
final class FlinkRest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration TIMEOUT = Duration.ofSeconds(5);

    private final URI base;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(TIMEOUT).build();

    FlinkRest(URI base) {
        String s = base.toString();
        this.base = URI.create(s.endsWith("/") ? s : s + "/");
    }

    URI base() {
        return base;
    }

    /** The JSON at {@code path} (e.g. {@code jobs/<id>/checkpoints}); any answer but 200 is an IOException. */
    JsonNode get(String path) throws IOException {
        HttpRequest request = HttpRequest.newBuilder(base.resolve(path)).timeout(TIMEOUT).GET().build();
        HttpResponse<String> response;
        try {
            response = http.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while asking " + request.uri(), e);
        }
        if (response.statusCode() != 200) {
            String body = response.body();
            throw new IOException("GET " + request.uri() + ": HTTP " + response.statusCode() + " "
                    + body.substring(0, Math.min(200, body.length())));
        }
        return JSON.readTree(response.body());
    }
}
