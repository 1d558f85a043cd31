package dev.longspan.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

/** The --json output of every command: exactly one JSON object on standard output. */
final class Json {
    static final ObjectMapper MAPPER = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private Json() {}

    static void print(Object value) {
        try {
            System.out.println(MAPPER.writeValueAsString(value));
            System.out.flush();
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise result to JSON", e);
        }
    }
}
