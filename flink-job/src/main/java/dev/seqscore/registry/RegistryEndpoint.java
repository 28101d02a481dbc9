package dev.seqscore.registry;

import dev.seqscore.options.ConfigException;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;

/**
 * Where the schema registry is and how to authenticate to it: the base URL of a Confluent-compatible API
 * ({@code --schema-registry}: Confluent Schema Registry, or Apicurio's {@code .../apis/ccompat/v7}), and credentials
 * from {@code --schema-registry-properties FILE} or {@code SEQSCORE_SCHEMA_REGISTRY_*} environment variables, never
 * from a flag (Flink shows program arguments in its web UI).
 *
 * <p>Serializable: the source's decoder carries it to the TaskManagers, which fetch writer schemas by id.
 * {@link #toString()} withholds the credentials.
 */
public final class RegistryEndpoint implements Serializable {
    private static final long serialVersionUID = 1L;

    /** The job's flag for the registry's URL. */
    public static final String FLAG = "schema-registry";
    /** The job's flag for the file of registry settings and credentials. */
    public static final String PROPERTIES_FLAG = "schema-registry-properties";
    /** {@code SEQSCORE_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO} is {@code basic.auth.user.info}. */
    public static final String ENV_PREFIX = "SEQSCORE_SCHEMA_REGISTRY_";
    /** {@code user:password}, sent as HTTP basic authentication (the key Confluent's clients use). */
    public static final String BASIC_AUTH_USER_INFO = "basic.auth.user.info";
    /** A bearer token, sent as {@code Authorization: Bearer ...}. */
    public static final String BEARER_AUTH_TOKEN = "bearer.auth.token";
    /** How long to wait for a connection to the registry, ms (default 2000). */
    public static final String CONNECT_TIMEOUT_MS = "connect.timeout.ms";
    /** How long to wait for one registry response, ms (default 3000). */
    public static final String REQUEST_TIMEOUT_MS = "request.timeout.ms";
    static final Set<String> KEYS = Set.of(BASIC_AUTH_USER_INFO, BEARER_AUTH_TOKEN, CONNECT_TIMEOUT_MS,
            REQUEST_TIMEOUT_MS);

    static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(2);
    static final Duration DEFAULT_REQUEST_TIMEOUT = Duration.ofSeconds(3);

    private final String url;
    private final String authorization;
    private final long connectTimeoutMs;
    private final long requestTimeoutMs;

    RegistryEndpoint(String url, String authorization, Duration connectTimeout, Duration requestTimeout) {
        this.url = url;
        this.authorization = authorization;
        this.connectTimeoutMs = connectTimeout.toMillis();
        this.requestTimeoutMs = requestTimeout.toMillis();
    }

    /** A registry without credentials and with the default timeouts (tests, the demo). */
    public static RegistryEndpoint of(String url) {
        return new RegistryEndpoint(checkedUrl(url), null, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT);
    }

    /**
     * The registry at {@code url} with settings from the file, then the environment (which wins); null when the URL
     * is blank. Throws {@link ConfigException} naming what is wrong.
     */
    public static RegistryEndpoint from(String url, Path propertiesFile, Map<String, String> env) {
        if (url == null || url.isBlank()) {
            if (propertiesFile != null) {
                throw new ConfigException("--" + PROPERTIES_FLAG + " needs --"
                        + FLAG);
            }
            return null;
        }
        String base = checkedUrl(url);
        Properties p = new Properties();
        if (propertiesFile != null) {
            try (InputStream in = Files.newInputStream(propertiesFile)) {
                p.load(in);
            } catch (IOException e) {
                throw new ConfigException("--" + PROPERTIES_FLAG + ": cannot read '"
                        + propertiesFile + "': " + e, e);
            }
        }
        env.forEach((name, value) -> {
            if (name.startsWith(ENV_PREFIX) && name.length() > ENV_PREFIX.length()) {
                p.put(name.substring(ENV_PREFIX.length()).toLowerCase(Locale.ROOT).replace('_', '.'), value);
            }
        });
        Set<String> unknown = new TreeSet<>(p.stringPropertyNames());
        unknown.removeAll(KEYS);
        if (!unknown.isEmpty()) {
            throw new ConfigException("schema registry settings " + unknown + " are not known (from --"
                    + PROPERTIES_FLAG + " or " + ENV_PREFIX + "*); known: "
                    + new TreeSet<>(KEYS));
        }
        String userInfo = blankToNull(p.getProperty(BASIC_AUTH_USER_INFO));
        String token = blankToNull(p.getProperty(BEARER_AUTH_TOKEN));
        if (userInfo != null && token != null) {
            throw new ConfigException("schema registry: give " + BASIC_AUTH_USER_INFO + " or " + BEARER_AUTH_TOKEN
                    + ", not both");
        }
        String authorization = null;
        if (userInfo != null) {
            if (!userInfo.contains(":")) {
                throw new ConfigException("schema registry: " + BASIC_AUTH_USER_INFO + " must be user:password");
            }
            authorization = "Basic " + Base64.getEncoder().encodeToString(userInfo.getBytes(StandardCharsets.UTF_8));
        } else if (token != null) {
            authorization = "Bearer " + token;
        }
        return new RegistryEndpoint(base, authorization, millis(p, CONNECT_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT),
                millis(p, REQUEST_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT));
    }

    /**
     * An http(s) URL without credentials in it, trailing slashes removed. A {@code user:password@} part is refused:
     * the URL is a program argument, which Flink's web UI shows.
     */
    public static String checkedUrl(String url) {
        URI u;
        try {
            u = URI.create(url.trim());
        } catch (IllegalArgumentException e) {
            throw new ConfigException("--" + FLAG + " '" + url + "' is not a URL");
        }
        if (u.getScheme() == null || !(u.getScheme().equalsIgnoreCase("http") || u.getScheme().equalsIgnoreCase(
                "https")) || u.getHost() == null) {
            throw new ConfigException("--" + FLAG + " must be an http:// or https:// URL "
                    + "of a Confluent-compatible registry API, e.g. http://registry:8081 or "
                    + "http://apicurio:8080/apis/ccompat/v7");
        }
        if (u.getRawUserInfo() != null) {
            throw new ConfigException("--" + FLAG + " carries credentials, which would "
                    + "show in Flink's web UI (it lists program arguments): put " + BASIC_AUTH_USER_INFO
                    + "=user:password (or " + BEARER_AUTH_TOKEN + ") in the --"
                    + PROPERTIES_FLAG + " file, or in the " + ENV_PREFIX
                    + "BASIC_AUTH_USER_INFO (" + ENV_PREFIX + "BEARER_AUTH_TOKEN) environment variable");
        }
        if (u.getRawQuery() != null || u.getRawFragment() != null) {
            throw new ConfigException("--" + FLAG + " must not have a query or fragment");
        }
        String s = u.toString();
        while (s.endsWith("/")) {
            s = s.substring(0, s.length() - 1);
        }
        return s;
    }

    private static Duration millis(Properties p, String key, Duration dflt) {
        String v = blankToNull(p.getProperty(key));
        if (v == null) {
            return dflt;
        }
        try {
            long ms = Long.parseLong(v);
            if (ms <= 0) {
                throw new NumberFormatException();
            }
            return Duration.ofMillis(ms);
        } catch (NumberFormatException e) {
            throw new ConfigException("schema registry: " + key + " must be a positive number of milliseconds, got '"
                    + v + "'");
        }
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s.trim();
    }

    public String url() {
        return url;
    }

    /** The {@code Authorization} header's value, or null. */
    String authorization() {
        return authorization;
    }

    public Duration connectTimeout() {
        return Duration.ofMillis(connectTimeoutMs);
    }

    public Duration requestTimeout() {
        return Duration.ofMillis(requestTimeoutMs);
    }

    @Override
    public String toString() {
        return "schema registry " + url + (authorization == null ? "" : " (with credentials)");
    }
}
