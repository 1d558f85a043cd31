package dev.longspan.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.longspan.io.Tokenizer;
import dev.longspan.io.TokenizerLoader;
import dev.longspan.util.LongspanException;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;


import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = {"Print the token ids of the text on standard input, or with --decode the text of token ids.",
                "Text is read as exactly the bytes given, a final newline included; token ids are separated by whitespace or commas,",
                "or given as a JSON array. With --jsonl, many texts in one run: each input line {\"text\": ...} gives an output",
                "line {\"ids\": [...]} (with --decode: {\"ids\": [...]} gives {\"text\": ...}), in order."})
final class TokenizeCommand implements Callable<Integer> {

    static final class Source {
        @Option(names = "--model", paramLabel = "PATH", required = true,
                description = "A GGUF file, a directory with tokenizer.json, or a Longspan model directory.")
        Path model;

        @Option(names = "--tokenizer", paramLabel = "FILE", required = true, description = "A tokenizer.json or GGUF file.")
        Path tokenizer;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    @Option(names = "--decode", description = {"Read token ids and print the text, with the clean-up of tokenization spaces the file asks for",
            "(\" ?\" → \"?\", \" 's\" → \"'s\": llama.cpp's llama_detokenize for most BPE and WordPiece vocabularies,",
            "Hugging Face's decode when tokenizer_config.json sets clean_up_tokenization_spaces)."})
    boolean decode;

    @Option(names = "--keep-spaces", description = "With --decode: the decoded text exactly, without that clean-up (the text generation prints).")
    boolean keepSpaces;

    @Option(names = "--json", description = "Print one JSON object: {\"ids\": [...], \"count\": n} or {\"text\": ...}.")
    boolean json;

    @Option(names = "--jsonl", description = "Batch mode: JSON lines in, JSON lines out (one object per input line; blank lines skipped).")
    boolean jsonl;

    @Option(names = "--no-parse-special", description = "Keep control tokens written in the text (e.g. <|im_end|>) as plain text, as llama.cpp's tokenizer tests do.")
    boolean noParseSpecial;

    @Override
    public Integer call() throws IOException {
        if (jsonl && json) throw new LongspanException("--jsonl and --json cannot be combined (--jsonl already writes JSON)");
        if (keepSpaces && !decode) throw new LongspanException("--keep-spaces applies to --decode only");
        Tokenizer t = TokenizerLoader.load(source.model != null ? source.model : source.tokenizer);
        if (jsonl) return batch(t);
        String input = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        if (decode) {
            int[] ids = parseIds(input, t.vocabSize());
            String text = keepSpaces ? t.decode(ids) : t.detokenize(ids);
            if (json) {
                Json.print(Map.of("text", text));
            } else {
                System.out.print(text);
                System.out.flush();
            }
        } else {
            int[] ids = t.encode(input, !noParseSpecial);
            if (json) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("ids", ids);
                out.put("count", ids.length);
                Json.print(out);
            } else {
                StringBuilder b = new StringBuilder();
                for (int i = 0; i < ids.length; i++) b.append(i == 0 ? "" : " ").append(ids[i]);
                System.out.println(b);
            }
        }
        return Main.EXIT_OK;
    }

    /** One JSON object per line in, one per line out, so that many texts cost one JVM. */
    private int batch(Tokenizer t) throws IOException {
        ObjectMapper compact = new ObjectMapper();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        int n = 0;
        while ((line = in.readLine()) != null) {
            n++;
            if (line.isBlank()) continue;
            JsonNode node;
            try {
                node = compact.readTree(line);
            } catch (JsonProcessingException e) {
                throw new LongspanException("standard input line " + n + ": not JSON: " + e.getOriginalMessage());
            }
            Map<String, Object> result = new LinkedHashMap<>();
            if (decode) {
                JsonNode ids = node.get("ids");
                if (ids == null || !ids.isArray()) throw new LongspanException("standard input line " + n + ": expected {\"ids\": [...]}");
                int[] a = new int[ids.size()];
                for (int i = 0; i < a.length; i++) {
                    JsonNode v = ids.get(i);
                    if (!v.canConvertToInt() || !v.isIntegralNumber()) throw new LongspanException("standard input line " + n + ": id " + v + " is not an integer");
                    a[i] = v.asInt();
                    if (a[i] < 0 || a[i] >= t.vocabSize()) {
                        throw new LongspanException("standard input line " + n + ": token id " + a[i] + " is outside the vocabulary (0.." + (t.vocabSize() - 1) + ")");
                    }
                }
                result.put("text", keepSpaces ? t.decode(a) : t.detokenize(a));
            } else {
                JsonNode text = node.get("text");
                if (text == null || !text.isTextual()) throw new LongspanException("standard input line " + n + ": expected {\"text\": \"...\"}");
                result.put("ids", t.encode(text.asText(), !noParseSpecial));
            }
            System.out.println(compact.writeValueAsString(result));
        }
        System.out.flush();
        return Main.EXIT_OK;
    }

    static int[] parseIds(String input, int vocab) {
        String s = input.strip();
        if (s.startsWith("[")) {
            if (!s.endsWith("]")) throw new LongspanException("token ids: a JSON array must end with ']'");
            s = s.substring(1, s.length() - 1).strip();
        }
        List<Integer> ids = new ArrayList<>();
        if (!s.isEmpty()) {
            for (String part : s.split("[\\s,]+")) {
                if (part.isEmpty()) continue;
                int id;
                try {
                    id = Integer.parseInt(part);
                } catch (NumberFormatException e) {
                    throw new LongspanException("token ids: '" + part + "' is not an integer");
                }
                if (id < 0 || id >= vocab) throw new LongspanException("token ids: " + id + " is outside the vocabulary (0.." + (vocab - 1) + ")");
                ids.add(id);
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }
}
