package dev.longspan.server;

/**
 * A request answered with OpenAI's error JSON: {@code {"error":{"message","type","param","code"}}}
 * and an HTTP status.
 */
final class ApiError extends RuntimeException {
    final int status;
    final String type, param, code;

    ApiError(int status, String type, String param, String code, String message) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    static ApiError badRequest(String param, String message) {
        return new ApiError(400, "invalid_request_error", param, null, message);
    }

    static ApiError contextLength(String message) {
        return new ApiError(400, "invalid_request_error", "messages", "context_length_exceeded", message);
    }

    static ApiError unauthorized() {
        return new ApiError(401, "invalid_request_error", null, "invalid_api_key", "Incorrect API key provided.");
    }

    static ApiError notFound(String message) {
        return new ApiError(404, "invalid_request_error", null, "not_found", message);
    }

    static ApiError modelNotFound(String model) {
        return new ApiError(404, "invalid_request_error", "model", "model_not_found", "The model '" + model + "' does not exist.");
    }

    static ApiError tooLarge(long limit) {
        return new ApiError(413, "invalid_request_error", null, "request_too_large", "Request body is larger than " + limit + " bytes.");
    }

    static ApiError queueFull() {
        return new ApiError(429, "rate_limit_error", null, "queue_full", "Too many requests: every slot is busy and the queue is full; retry later.");
    }

    static ApiError shuttingDown() {
        return new ApiError(503, "server_error", null, "shutting_down", "The server is shutting down.");
    }

    static ApiError timeout(long millis) {
        return new ApiError(503, "server_error", null, "timeout", "The request took longer than the server's limit of " + millis + " ms.");
    }
}
