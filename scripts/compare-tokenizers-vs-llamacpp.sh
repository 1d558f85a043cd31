#!/usr/bin/env bash
# Differential check of Longspan's GGUF tokenizers against llama.cpp's on random text: encoding
# (plain, and with the vocabulary's special tokens written into the text), and decoding random id
# sequences and the ids of encoded text (llama_detokenize with special tokens shown, against
# `tokenize --decode`). The test vectors llama.cpp ships cover a few dozen fixed strings; this
# covers what they do not: 20 scripts, emoji, combining marks, control characters, Unicode spaces,
# characters Unicode 16.0 added, contractions, numbers, code, slices of the novels in ../shared/data.
#
#   scripts/compare-tokenizers-vs-llamacpp.sh LLAMA_CPP_DIR [VOCAB.gguf ...]
#   PRE_SWEEP=1 scripts/compare-tokenizers-vs-llamacpp.sh LLAMA_CPP_DIR
#
# PRE_SWEEP=1 checks every BPE pre-tokenizer name llama.cpp's llama-vocab.cpp knows instead: for each, a GGUF
# with the Qwen3 vocabulary and that tokenizer.ggml.pre (the pre-tokenizer's splitting is what is compared;
# the vocabulary only needs to be byte-level), 1,000 random texts encoded plainly (about 4 minutes).
#
# LLAMA_CPP_DIR is a llama.cpp checkout built with cmake (build/bin/libllama.so); a small C++
# harness of ours is compiled against its public llama.h in a temporary folder. llama.cpp is never
# part of Longspan: build it anywhere outside the repository. The vocabularies default to
# LLAMA_CPP_DIR/models/ggml-vocab-*.gguf (those present), stories260K, and GGUF vocabularies written from
# ../shared/data's Llama 3 and Qwen3 tokenizer.json (llama-bpe, qwen2) with its gguf-py. Needs g++, python3, numpy.
# Output: one Markdown table on standard output (differences out of the texts tried), progress on
# standard error; exit 1 when any difference is found.
set -euo pipefail
me=compare-tokenizers-vs-llamacpp.sh
[ $# -ge 1 ] || { echo "usage: scripts/$me LLAMA_CPP_DIR [VOCAB.gguf ...]" >&2; exit 2; }
LL=$(cd "$1" 2>/dev/null && pwd) || { echo "$me: no directory $1" >&2; exit 2; }
shift
cd "$(dirname "$0")/.."
ROOT=$(pwd)
for f in "$LL/include/llama.h" "$LL/vendor/nlohmann/json.hpp" "$LL/build/bin/libllama.so"; do
  [ -e "$f" ] || { echo "$me: missing $f (a llama.cpp checkout with a cmake build?)" >&2; exit 2; }
done
VOCABS=("$@")
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
if [ "${PRE_SWEEP:-0}" = 1 ]; then
  mkdir -p "$W/stub" && echo "class SentencePieceProcessor: pass" > "$W/stub/sentencepiece.py"
  for pre in $(grep -o 'tokenizer_pre == "[^"]*"' "$LL/src/llama-vocab.cpp" | sed 's/.*== "//; s/"$//' | sort -u); do
    VOCABS+=("pre:$pre")
  done
elif [ ${#VOCABS[@]} -eq 0 ]; then
  for f in "$LL"/models/ggml-vocab-*.gguf ../shared/data/models/stories260K/stories260K.gguf; do
    # git-lfs pointers and missing files are skipped
    [ -f "$f" ] && [ "$(head -c 4 "$f")" = "GGUF" ] && VOCABS+=("$f")
  done
  # the two most used BPE pre-tokenizers, whose llama.cpp vocabularies are not in its models/: GGUF vocabularies
  # written from the Llama 3 and Qwen3 tokenizer.json by llama.cpp's gguf-py, as its converter writes them
  mkdir -p "$W/stub" && echo "class SentencePieceProcessor: pass" > "$W/stub/sentencepiece.py"
  for v in "llama3 llama-bpe" "qwen3 qwen2"; do
    set -- $v
    if PYTHONPATH="$W/stub:$LL/gguf-py" python3 - "../shared/data/tokenizers/$1" "$W/vocab-$2.gguf" "$2" <<'PY'
import json, sys
from gguf import GGUFWriter, TokenType
src, out, pre = sys.argv[1:]
tj = json.load(open(src + '/tokenizer.json'))
cfg = json.load(open(src + '/tokenizer_config.json'))
added = {a['id']: a for a in tj.get('added_tokens', [])}
n = max(list(tj['model']['vocab'].values()) + list(added)) + 1
toks, types = ['[PAD%d]' % i for i in range(n)], [TokenType.UNUSED] * n
for t, i in tj['model']['vocab'].items(): toks[i], types[i] = t, TokenType.NORMAL
for i, a in added.items(): toks[i], types[i] = a['content'], TokenType.CONTROL if a.get('special') else TokenType.USER_DEFINED
w = GGUFWriter(out, 'llama')
w.add_tokenizer_model('gpt2'); w.add_tokenizer_pre(pre); w.add_token_list(toks); w.add_token_types(types)
w.add_token_merges([m if isinstance(m, str) else ' '.join(m) for m in tj['model']['merges']])
eos = cfg.get('eos_token'); eos = eos if isinstance(eos, str) else (eos or {}).get('content')
if eos in toks: w.add_eos_token_id(toks.index(eos))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
PY
    then VOCABS+=("$W/vocab-$2.gguf"); else echo "$me: could not write a $2 vocabulary with $LL/gguf-py (skipped)" >&2; fi
  done
fi
cat > "$W/harness.cpp" <<'CPP'
// harness MODE VOCAB: "specials" lists control/user-defined/unknown token texts; "encode" reads
// {"text"} lines and writes {"ids"} (no BOS, parse_special from argv[3]); "decode" reads {"ids"}
// lines and writes {"hex"} of llama_detokenize's bytes (special tokens shown, none removed)
#include "llama.h"
#include "nlohmann/json.hpp"
#include <iostream>
#include <string>
#include <vector>
int main(int argc, char ** argv) {
    std::string mode = argv[1];
    llama_backend_init();
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    auto mp = llama_model_default_params(); mp.vocab_only = true;
    llama_model * m = llama_model_load_from_file(argv[2], mp);
    if (!m) { std::cerr << "llama.cpp cannot load " << argv[2] << "\n"; return 1; }
    const llama_vocab * v = llama_model_get_vocab(m);
    if (mode == "specials") {
        for (int id = 0; id < llama_vocab_n_tokens(v); id++)
            if (llama_vocab_get_attr(v, id) & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED | LLAMA_TOKEN_ATTR_UNKNOWN))
                std::cout << nlohmann::json{{"t", llama_vocab_get_text(v, id)}}.dump() << "\n";
        std::cout << nlohmann::json{{"n_vocab", llama_vocab_n_tokens(v)}}.dump() << "\n";
        return 0;
    }
    bool parse_special = argc > 3 && std::string(argv[3]) == "1";
    std::vector<llama_token> toks(1 << 20);
    std::vector<char> buf(1 << 22);
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line.empty()) continue;
        auto j = nlohmann::json::parse(line);
        if (mode == "encode") {
            std::string t = j["text"];
            int n = llama_tokenize(v, t.data(), (int) t.size(), toks.data(), (int) toks.size(), false, parse_special);
            std::cout << nlohmann::json{{"ids", std::vector<llama_token>(toks.begin(), toks.begin() + std::max(n, 0))}}.dump() << "\n";
        } else {
            std::vector<llama_token> ids = j["ids"];
            int n = llama_detokenize(v, ids.data(), (int) ids.size(), buf.data(), (int) buf.size(), false, true);
            static const char * hx = "0123456789abcdef";
            std::string h;
            for (int i = 0; i < std::max(n, 0); i++) { unsigned char c = buf[i]; h += hx[c >> 4]; h += hx[c & 15]; }
            std::cout << nlohmann::json{{"hex", h}}.dump() << "\n";
        }
    }
    return 0;
}
CPP
echo "$me: compiling the harness against $LL" >&2
g++ -O2 -std=c++17 -I"$LL/include" -I"$LL/ggml/include" -I"$LL/vendor" "$W/harness.cpp" -L"$LL/build/bin" \
    -lllama -Wl,-rpath,"$LL/build/bin" -o "$W/harness"
./longspan --version >/dev/null 2>&1 || true   # builds the CLI when the sources are newer
LL="$LL" python3 - "$W" "$ROOT" "${VOCABS[@]}" <<'PY'
import json, os, random, subprocess, sys, glob
W, root, vocabs = sys.argv[1], sys.argv[2], sys.argv[3:]
rng = random.Random(1)
R = {'ascii': [(0x20, 0x7e)], 'latin1': [(0xa0, 0xff)], 'latinext': [(0x100, 0x24f)], 'greek': [(0x370, 0x3ff)],
     'cyrillic': [(0x400, 0x4ff)], 'cjk': [(0x4e00, 0x9fff), (0x20000, 0x2a6df)], 'kana': [(0x3040, 0x30ff)],
     'hangul': [(0xac00, 0xd7a3)], 'arabic': [(0x600, 0x6ff)], 'hebrew': [(0x590, 0x5ff)], 'devanagari': [(0x900, 0x97f)],
     'thai': [(0xe00, 0xe7f)], 'emoji': [(0x1f300, 0x1f64f), (0x1f900, 0x1f9ff)], 'marks': [(0x300, 0x36f)],
     'spaces': [(0x2000, 0x200f), (0x2028, 0x202f), (0x3000, 0x3000), (0xa0, 0xa0), (0x85, 0x85)],
     'controls': [(0x1, 0x1f), (0x7f, 0x9f)], 'math': [(0x1d400, 0x1d7ff)], 'fullwidth': [(0xff01, 0xff5e)],
     'numbers': [(0x2150, 0x218b), (0xb2, 0xb3), (0x660, 0x669), (0x966, 0x96f)], 'private': [(0xe000, 0xe0ff)],
     'unicode16': [(0x897, 0x897), (0x1c89, 0x1c8a), (0xa7cb, 0xa7cd), (0x105c0, 0x105f3), (0x10d40, 0x10d65),
                   (0x16100, 0x16139), (0x16d40, 0x16d79), (0x1e5d0, 0x1e5fa), (0x1fbcb, 0x1fbef)]}
def ch(c):
    lo, hi = rng.choice(R[c]); return chr(rng.randint(lo, hi))
words = "the of and to in that is was he for it with as his on be at by I this had not are but from or have an they which one you were".split()
novels = [open(f, encoding='utf-8', errors='replace').read() for f in sorted(glob.glob(os.path.join(root, '../shared/data/text/gutenberg/*.txt')))[:4]]
texts = []
for i in range(3000):
    k, p = rng.random(), []
    if k < 0.35:
        cats = rng.sample(sorted(R), rng.randint(1, 4))
        for _ in range(rng.randint(1, 30)): p.append(''.join(ch(rng.choice(cats)) for _ in range(rng.randint(1, 5))))
    elif k < 0.7:
        for _ in range(rng.randint(1, 30)):
            r = rng.random(); w = rng.choice(words)
            w = w.capitalize() if r < 0.2 else w.upper() if r < 0.25 else w + rng.choice(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "n't", "’s"]) if r < 0.35 \
                else str(rng.randint(0, 10 ** rng.randint(1, 12))) if r < 0.45 else ch(rng.choice(sorted(R))) if r < 0.55 else w + rng.choice(list('.,!?:;()[]{}"$%#@/\\*&^~`|<>=+_-')) if r < 0.6 else w
            p += [w, rng.choice([' ', ' ', ' ', '\n', '\t', '  ', '\r\n', '\n\n'])]
    elif k < 0.9 and novels:
        t = rng.choice(novels); s = rng.randrange(len(t) - 400); p.append(t[s:s + rng.randint(1, 400)])
    else:
        p.append(rng.choice(["def f(x):\n    return x**2  # sq\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}\n", "   leading", "trailing   ", "\n\n\n", "a  b   c    d", "3.14159e-10 1,000,000 0x1F"]))
    t = ''.join(p)
    if t: texts.append(t)
def run(cmd, lines, cwd=None):
    r = subprocess.run(cmd, input=''.join(json.dumps(x) + '\n' for x in lines).encode(), capture_output=True, cwd=cwd)
    if r.returncode: sys.exit('%s failed: %s' % (cmd[0], r.stderr.decode()[-500:]))
    return [json.loads(l) for l in r.stdout.decode().split('\n') if l.strip()]
ours = lambda v, lines, *extra: run(['./longspan', 'tokenize', '--model', v, '--jsonl', *extra], lines, cwd=root)
print('| vocabulary | encode (plain) | encode (specials in the text) | decode (random ids, ids of text) |')
print('|---|---|---|---|')
bad_any = False
def write_vocab(pre, out):
    # the Qwen3 vocabulary with the given pre-tokenizer name, written by llama.cpp's gguf-py
    env = dict(os.environ, PYTHONPATH=W + '/stub:' + os.environ['LL'] + '/gguf-py')
    code = """
import json, sys
from gguf import GGUFWriter, TokenType
tj = json.load(open(sys.argv[1]))
added = {a['id']: a for a in tj['added_tokens']}
n = max(list(tj['model']['vocab'].values()) + list(added)) + 1
toks, types = ['[PAD%d]' % i for i in range(n)], [TokenType.UNUSED] * n
for t, i in tj['model']['vocab'].items(): toks[i], types[i] = t, TokenType.NORMAL
for i, a in added.items(): toks[i], types[i] = a['content'], TokenType.CONTROL if a.get('special') else TokenType.USER_DEFINED
w = GGUFWriter(sys.argv[2], 'llama')
w.add_tokenizer_model('gpt2'); w.add_tokenizer_pre(sys.argv[3]); w.add_token_list(toks); w.add_token_types(types)
w.add_token_merges([m if isinstance(m, str) else ' '.join(m) for m in tj['model']['merges']])
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
"""
    r = subprocess.run(['python3', '-c', code, os.path.join(root, '../shared/data/tokenizers/qwen3/tokenizer.json'), out, pre], env=env, capture_output=True)
    return r.returncode == 0
sweep = any(v.startswith('pre:') for v in vocabs)
for v in vocabs:
    if v.startswith('pre:'):
        pre = v[4:]
        v = os.path.join(W, 'pre.gguf')
        if not write_vocab(pre, v):
            print('| %s | could not write the vocabulary | | |' % pre, flush=True); continue
        name = 'qwen3 vocabulary, pre ' + pre
        probe = subprocess.run([W + '/harness', 'specials', v], capture_output=True)
        if probe.returncode:
            print('| %s | llama.cpp does not load it | | |' % name, flush=True); continue
        plain = [{'text': t} for t in texts[:1000]]
        try:
            a = run([W + '/harness', 'encode', v, '0'], plain)
        except SystemExit:
            print('| %s | llama.cpp fails on it (this vocabulary does not suit the pre-tokenizer) | | |' % name, flush=True); continue
        b = ours(v, plain, '--no-parse-special')
        d1 = sum(x['ids'] != y['ids'] for x, y in zip(a, b))
        bad_any |= d1 > 0
        print('| %s | %d / %d | | |' % (name, d1, len(plain)), flush=True)
        continue
    name = os.path.basename(v)
    print(name, '...', file=sys.stderr, flush=True)
    meta = run([W + '/harness', 'specials', v], [])
    n_vocab, specials = meta[-1]['n_vocab'], [m['t'] for m in meta[:-1]]
    plain = [{'text': t} for t in texts]
    a, b = run([W + '/harness', 'encode', v, '0'], plain), ours(v, plain, '--no-parse-special')
    d1 = sum(x['ids'] != y['ids'] for x, y in zip(a, b))
    sp = []
    for t in texts[:1500]:
        t = t[:200]
        for _ in range(rng.randint(1, 4)):
            s = rng.choice(specials) if specials else ''
            r = rng.random()
            s = s[:max(1, len(s) // 2)] if r < 0.15 else ' %s ' % s if r < 0.3 else '\n%s\n' % s if r < 0.4 else s
            j = rng.randrange(len(t) + 1); t = t[:j] + s + t[j:]
        sp.append({'text': t})
    a2, b2 = run([W + '/harness', 'encode', v, '1'], sp), ours(v, sp)
    d2 = sum(x['ids'] != y['ids'] for x, y in zip(a2, b2))
    seqs = [{'ids': [rng.randrange(min(n_vocab, 300) if i % 3 == 0 else n_vocab) for _ in range(rng.randint(1, 25))]} for i in range(1500)]
    seqs += [{'ids': x['ids']} for x in a[:1500] if x['ids']]
    ref = [bytes.fromhex(x['hex']).decode('utf-8', 'replace') for x in run([W + '/harness', 'decode', v], seqs)]
    got = [x['text'] for x in ours(v, seqs, '--decode')]
    d3 = sum(x != y for x, y in zip(ref, got))
    bad_any |= bool(d1 or d2 or d3) and len(a) == len(b)
    print('| %s | %d / %d | %d / %d | %d / %d |' % (name, d1, len(plain), d2, len(sp), d3, len(seqs)), flush=True)
sys.exit(1 if bad_any else 0)
PY
