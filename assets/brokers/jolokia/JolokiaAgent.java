/*
 * Jolokia's REST API for the test ActiveMQ brokers, as a full ActiveMQ Classic
 * distribution serves it from its web console (http://127.0.0.1:8161/api/jolokia/,
 * HTTP basic auth as admin). Debian's activemq package has no web console, so
 * this Java agent serves it instead, with Debian's Jolokia core
 * (libjolokia-core-java) doing the work.
 *
 * scripts/brokers compiles it against /usr/share/java/jolokia-core.jar and
 * json-simple.jar into the instance's jolokia/jolokia-agent.jar (its manifest
 * names those two jars), and the instance's options file
 * (assets/brokers/activemq-options) starts the broker's JVM with
 *
 *   -javaagent:.../jolokia-agent.jar=host=127.0.0.1,port=8161,user=admin,password=admin,policy=file:.../jolokia-access.xml
 *
 * Arguments, comma-separated key=value (so no comma in the password):
 *   host      address to listen on (default 127.0.0.1)
 *   port      TCP port (required)
 *   user, password
 *             the only credentials accepted (required: no Jolokia without them)
 *   policy    Jolokia access policy, a file: or classpath: location
 *
 * What ActiveMQ's servlet does, and this too: every request needs the user's
 * credentials (401 otherwise); GET and POST under /api/jolokia go to Jolokia,
 * which answers HTTP 200 with its own status (200, 404, 403...) in the JSON;
 * no stack traces or error details in answers (allowErrorDetails=false).
 *
 * This agent never stops the broker: if it cannot start (port taken, bad
 * arguments), it says why on the JVM's stderr (the instance's
 * data/stdout.log, lines starting "jolokia-agent:") and the broker runs
 * without Jolokia.
 */

import java.io.IOException;
import java.io.OutputStream;
import java.lang.instrument.Instrumentation;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.management.RuntimeMBeanException;

import com.sun.net.httpserver.BasicAuthenticator;
import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import org.jolokia.Version;
import org.jolokia.backend.BackendManager;
import org.jolokia.config.ConfigKey;
import org.jolokia.config.Configuration;
import org.jolokia.http.HttpRequestHandler;
import org.jolokia.restrictor.RestrictorFactory;
import org.jolokia.util.LogHandler;
import org.jolokia.util.NetworkUtil;
import org.json.simple.JSONAware;

public final class JolokiaAgent {
    /** Where ActiveMQ's web console serves Jolokia. */
    private static final String CONTEXT = "/api/jolokia";
    /** The realm of ActiveMQ's web console (jetty-realm.properties). */
    private static final String REALM = "ActiveMQRealm";
    private static final Pattern CHARSET = Pattern.compile(".*;\\s*charset=\"?([^;,\"]+)\"?.*", Pattern.CASE_INSENSITIVE);

    private final HttpRequestHandler jolokia;

    private JolokiaAgent(HttpRequestHandler jolokia) {
        this.jolokia = jolokia;
    }

    public static void premain(String args, Instrumentation inst) {
        try {
            start(parseArgs(args));
        } catch (Throwable e) {
            say("NOT started, the broker runs without Jolokia: " + e);
        }
    }

    private static void say(String message) {
        System.err.println("jolokia-agent: " + message);
    }

    private static Map<String, String> parseArgs(String args) {
        Map<String, String> options = new HashMap<>();
        if (args == null) {
            return options;
        }
        for (String option : args.split(",")) {
            int eq = option.indexOf('=');
            if (eq > 0) {
                options.put(option.substring(0, eq).trim(), option.substring(eq + 1));
            } else if (!option.isBlank()) {
                throw new IllegalArgumentException("agent argument \"" + option + "\" is not key=value");
            }
        }
        return options;
    }

    private static String required(Map<String, String> options, String key) {
        String value = options.get(key);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("agent argument " + key + "=... missing");
        }
        return value;
    }

    private static void start(Map<String, String> options) throws Exception {
        String host = options.getOrDefault("host", "127.0.0.1");
        int port = Integer.parseInt(required(options, "port"));
        String user = required(options, "user");
        String password = required(options, "password");

        LogHandler log = new LogHandler() {
            public void debug(String message) {
            }

            public void info(String message) {
                say(message);
            }

            public void error(String message, Throwable e) {
                say(message + (e == null ? "" : ": " + e));
            }
        };
        Configuration config = new Configuration(
                ConfigKey.AGENT_CONTEXT, CONTEXT,
                // Jolokia needs one; made the way its own agents make theirs (address-pid-hash-type).
                ConfigKey.AGENT_ID, NetworkUtil.getAgentId(System.identityHashCode(log), "jvm"),
                ConfigKey.ALLOW_ERROR_DETAILS, "false",
                ConfigKey.DISCOVERY_ENABLED, "false",
                ConfigKey.POLICY_LOCATION, options.getOrDefault("policy", "classpath:/jolokia-access.xml"));
        // Lazy: the MBean servers are looked up at the first request, once the
        // broker (which starts after this premain) had a chance to register.
        BackendManager backend = new BackendManager(config, log, RestrictorFactory.createRestrictor(config, log), true);
        JolokiaAgent agent = new JolokiaAgent(new HttpRequestHandler(config, backend, log));

        HttpServer server;
        try {
            server = HttpServer.create(new InetSocketAddress(host, port), 0);
        } catch (IOException e) {
            throw new IOException("cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
        byte[] wantUser = user.getBytes(StandardCharsets.UTF_8);
        byte[] wantPassword = password.getBytes(StandardCharsets.UTF_8);
        server.createContext(CONTEXT, agent::handle).setAuthenticator(new BasicAuthenticator(REALM) {
            @Override
            public boolean checkCredentials(String u, String p) {
                // Both compared in full, in constant time.
                boolean userOk = MessageDigest.isEqual(wantUser, u.getBytes(StandardCharsets.UTF_8));
                boolean passwordOk = MessageDigest.isEqual(wantPassword, p.getBytes(StandardCharsets.UTF_8));
                return userOk & passwordOk;
            }
        });
        ThreadFactory daemons = task -> {
            Thread thread = new Thread(task, "jolokia-agent");
            thread.setDaemon(true);
            return thread;
        };
        server.setExecutor(Executors.newFixedThreadPool(4, daemons));
        // The server's dispatcher thread takes the daemon flag of the thread
        // that starts it: started from a daemon, it never keeps the JVM alive
        // after the broker ended.
        Thread starter = daemons.newThread(server::start);
        starter.start();
        starter.join();
        say("Jolokia " + Version.getAgentVersion() + " at http://" + host + ":" + port + CONTEXT + "/ (user " + user + ")");
    }

    private void handle(HttpExchange exchange) throws IOException {
        try {
            URI uri = exchange.getRequestURI();
            String pathInfo = uri.getPath().substring(CONTEXT.length());
            if (!pathInfo.isEmpty() && !pathInfo.startsWith("/")) { // e.g. /api/jolokiax
                exchange.sendResponseHeaders(404, -1);
                return;
            }
            Map<String, String[]> params = parseQuery(uri.getRawQuery());
            JSONAware json;
            try {
                Headers in = exchange.getRequestHeaders();
                String origin = in.getFirst("Origin") != null ? in.getFirst("Origin") : in.getFirst("Referer");
                jolokia.checkAccess(null, exchange.getRemoteAddress().getAddress().getHostAddress(),
                        origin == null ? null : origin.replaceAll("[\\r\\n]", ""));
                String method = exchange.getRequestMethod();
                if ("GET".equalsIgnoreCase(method)) {
                    json = jolokia.handleGetRequest(uri.toString(), pathInfo, params);
                } else if ("POST".equalsIgnoreCase(method)) {
                    json = jolokia.handlePostRequest(uri.toString(), exchange.getRequestBody(),
                            charset(in.getFirst("Content-Type")), params);
                } else {
                    throw new IllegalArgumentException("HTTP Method " + method + " is not supported.");
                }
            } catch (Throwable e) {
                json = jolokia.handleThrowable(e instanceof RuntimeMBeanException
                        ? ((RuntimeMBeanException) e).getTargetException() : e);
            }
            respond(exchange, params, json);
        } finally {
            exchange.close();
        }
    }

    private void respond(HttpExchange exchange, Map<String, String[]> params, JSONAware json) throws IOException {
        Headers out = exchange.getResponseHeaders();
        String[] mimeType = params.get("mimeType");
        // Jolokia's default type, text/plain; application/json when asked for.
        boolean asJson = mimeType != null && "application/json".equals(mimeType[0]);
        out.set("Content-Type", (asJson ? "application/json" : "text/plain") + "; charset=utf-8");
        out.set("Cache-Control", "no-cache");
        out.set("Pragma", "no-cache");
        String corsOrigin = jolokia.extractCorsOrigin(exchange.getRequestHeaders().getFirst("Origin"));
        if (corsOrigin != null) {
            out.set("Access-Control-Allow-Origin", corsOrigin);
            out.set("Access-Control-Allow-Credentials", "true");
        }
        byte[] body = json.toJSONString().getBytes(StandardCharsets.UTF_8);
        exchange.sendResponseHeaders(200, body.length);
        try (OutputStream stream = exchange.getResponseBody()) {
            stream.write(body);
        }
    }

    private static String charset(String contentType) {
        if (contentType == null) {
            return null;
        }
        Matcher m = CHARSET.matcher(contentType);
        return m.matches() ? m.group(1) : null;
    }

    /** The query's parameters, as a servlet's getParameterMap() has them. */
    private static Map<String, String[]> parseQuery(String rawQuery) {
        Map<String, String[]> params = new HashMap<>();
        if (rawQuery == null || rawQuery.isEmpty()) {
            return params;
        }
        for (String pair : rawQuery.split("&")) {
            if (pair.isEmpty()) {
                continue;
            }
            int eq = pair.indexOf('=');
            String name = URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq), StandardCharsets.UTF_8);
            String value = eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
            String[] old = params.get(name);
            String[] values = old == null ? new String[1] : java.util.Arrays.copyOf(old, old.length + 1);
            values[values.length - 1] = value;
            params.put(name, values);
        }
        return params;
    }
}
