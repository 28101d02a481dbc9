package dev.seqscore.registry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;

/**
 * The two calls of the Confluent-compatible schema registry API that SeqScore needs, over the JDK's HTTP client:
 * {@code GET /schemas/ids/{id}} (a writer schema by the id in a record's frame) and
 * {@code POST /subjects/{subject}/versions} (register an output schema, or find its id if registered). Both
 * Confluent Schema Registry and Apicurio Registry ({@code /apis/ccompat/v7}) serve them.
 *
 * <p>Every request is bounded by the endpoint's connect and request timeouts. Failures are typed so that the
 * caller can tell an unknown id (the registry answered 404) from a registry it could not use.
 */
public final class RegistryClient {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";

    private final RegistryEndpoint endpoint;
    private final HttpClient http;

    public RegistryClient(RegistryEndpoint endpoint) {
        this.endpoint = endpoint;
        this.http = HttpClient.newBuilder()
                .connectTimeout(endpoint.connectTimeout())
                .followRedirects(HttpClient.Redirect.NORMAL)
                .build();
    }

    /** The registry answered that no schema has this id. */
    public static final class UnknownSchemaException extends Exception {
        private static final long serialVersionUID = 1L;

        UnknownSchemaException(String message) {
            super(message);
        }
    }

    /** The registry could not be reached, timed out, refused the credentials or failed (5xx). */
    public static final class RegistryUnavailableException extends Exception {
        private static final long serialVersionUID = 1L;

        RegistryUnavailableException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** The registry refused a schema for a subject (409: incompatible with its versions, 422: invalid). */
    public static final class SchemaRejectedException extends Exception {
        private static final long serialVersionUID = 1L;

        SchemaRejectedException(String message) {
            super(message);
        }
    }

    /** A schema as the registry stores it: its type (AVRO when the registry omits it) and its text. */
    public record RegisteredSchema(String type, String schema) {}

    /** The schema with this id. */
    public RegisteredSchema schemaById(int id) throws UnknownSchemaException, RegistryUnavailableException {
        HttpResponse<String> r = send(request("/schemas/ids/" + Integer.toUnsignedString(id)).GET().build());
        if (r.statusCode() == 404) {
            throw new UnknownSchemaException("the registry has no schema with id " + Integer.toUnsignedString(id)
                    + " (" + message(r) + ")");
        }
        if (r.statusCode() != 200) {
            throw new RegistryUnavailableException("GET schema id " + Integer.toUnsignedString(id) + ": HTTP "
                    + r.statusCode() + " " + message(r), null);
        }
        try {
            JsonNode body = JSON.readTree(r.body());
            JsonNode schema = body.get("schema");
            if (schema == null || !schema.isTextual()) {
                throw new RegistryUnavailableException("GET schema id " + id + ": no schema in the answer", null);
            }
            JsonNode type = body.get("schemaType");
            return new RegisteredSchema(type == null || type.isNull() ? "AVRO" : type.asText(), schema.asText());
        } catch (IOException e) {
            throw new RegistryUnavailableException("GET schema id " + id + ": the answer is not JSON: " + e, e);
        }
    }

    /**
     * Registers an Avro schema under a subject, or returns its id when the subject already has it. The registry
     * checks it against the subject's compatibility level.
     */
    public int register(String subject, String avroSchema) throws SchemaRejectedException, RegistryUnavailableException {
        ObjectNode body = JSON.createObjectNode().put("schema", avroSchema);
        HttpResponse<String> r;
        try {
            r = send(request("/subjects/" + URLEncoder.encode(subject, StandardCharsets.UTF_8) + "/versions")
                    .header("Content-Type", CONTENT_TYPE)
                    .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)))
                    .build());
        } catch (IOException e) {
            throw new IllegalStateException(e); // writing a JSON string cannot fail
        }
        if (r.statusCode() == 409 || r.statusCode() == 422) {
            throw new SchemaRejectedException("HTTP " + r.statusCode() + " " + message(r));
        }
        if (r.statusCode() != 200) {
            throw new RegistryUnavailableException("POST " + subject + ": HTTP " + r.statusCode() + " " + message(r),
                    null);
        }
        try {
            JsonNode id = JSON.readTree(r.body()).get("id");
            if (id == null || !id.canConvertToInt()) {
                throw new RegistryUnavailableException("POST " + subject + ": no id in the answer " + r.body(), null);
            }
            return id.intValue();
        } catch (IOException e) {
            throw new RegistryUnavailableException("POST " + subject + ": the answer is not JSON: " + e, e);
        }
    }

    private HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(endpoint.url() + path))
                .timeout(endpoint.requestTimeout())
                .header("Accept", CONTENT_TYPE + ", application/json");
        if (endpoint.authorization() != null) {
            b.header("Authorization", endpoint.authorization());
        }
        return b;
    }

    private HttpResponse<String> send(HttpRequest request) throws RegistryUnavailableException {
        HttpResponse<String> r;
        try {
            r = http.send(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new RegistryUnavailableException("cannot reach the schema registry at " + endpoint.url() + ": "
                    + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage()), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RegistryUnavailableException("interrupted while asking the schema registry", e);
        }
        if (r.statusCode() == 401 || r.statusCode() == 403) {
            throw new RegistryUnavailableException("the schema registry at " + endpoint.url() + " refused the "
                    + "credentials (HTTP " + r.statusCode() + "; set them in the --" + RegistryEndpoint.PROPERTIES_FLAG
                    + " file or " + RegistryEndpoint.ENV_PREFIX + "* variables)", null);
        }
        return r;
    }

    /** The registry's error message ({"error_code":..., "message":...}), or the body's start. */
    private static String message(HttpResponse<String> r) {
        String body = r.body() == null ? "" : r.body();
        try {
            JsonNode m = JSON.readTree(body).get("message");
            if (m != null && m.isTextual()) {
                return m.asText();
            }
        } catch (IOException | RuntimeException e) {
            // Not JSON: show the text.
        }
        return body.length() > 200 ? body.substring(0, 200) + "..." : body;
    }
}
