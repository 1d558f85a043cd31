package dev.longspan.server;

import java.nio.file.Path;

/**
 * How {@code longspan serve} runs.
 *
 * @param host          the address to bind (127.0.0.1 unless told otherwise)
 * @param port          the port (0: any free one)
 * @param apiKey        the key clients must send as {@code Authorization: Bearer KEY}; null: none
 * @param modelName     the one model name the API knows (never a path)
 * @param maxBodyBytes  larger request bodies get 413
 * @param parallel      requests generating at once
 * @param queue         requests waiting for a slot at most; beyond them 429
 * @param timeoutMillis a request's limit from arrival to its last token (queue wait included)
 * @param context       positions of each session: prompt plus completion at most
 * @param kvBudgetBytes KV caches kept between requests for prefix reuse (least recently used evicted)
 * @param kvDir         where prefilled prompts are kept across restarts; null: not kept
 */
public record ServerOptions(String host, int port, String apiKey, String modelName, long maxBodyBytes, int parallel, int queue,
                            long timeoutMillis, int context, long kvBudgetBytes, Path kvDir) {
    public ServerOptions {
        if (parallel < 1) throw new IllegalArgumentException("parallel must be ≥ 1");
        if (queue < 0) throw new IllegalArgumentException("queue must be ≥ 0");
    }
}
