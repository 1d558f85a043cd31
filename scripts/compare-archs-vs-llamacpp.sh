#!/usr/bin/env bash
# Perplexity of random GGUF models of each architecture Longspan loads (llama with GQA, qwen2 with
# q/k/v biases, qwen3 with per-head q/k norms, key length != embedding/heads and tied output),
# in F32 and in quantized types, computed by Longspan and by llama.cpp side by side: a check of the
# architectures' forward passes against llama.cpp beyond the one real model in ../shared/data.
#
#   scripts/compare-archs-vs-llamacpp.sh LLAMA_CPP_DIR [TEXT]
#
# LLAMA_CPP_DIR is a llama.cpp checkout with a build (build/bin/llama-perplexity, llama-quantize);
# its gguf-py (Python, numpy) writes the random files. llama.cpp is never part of Longspan: build
# it anywhere outside the repository. TEXT defaults to ../shared/data/text/story.txt. Both sides
# score llama-perplexity's chunks of 128 tokens (second halves) with an F32 cache and llama.cpp's
# flash attention off (on, it rounds to F16 inside attention; Longspan's --kv f16 gives that figure).
# Output: one Markdown table on standard output, progress on standard error.
set -euo pipefail
me=compare-archs-vs-llamacpp.sh
[ $# -ge 1 ] || { echo "usage: scripts/$me LLAMA_CPP_DIR [TEXT]" >&2; exit 2; }
LL=$(cd "$1" 2>/dev/null && pwd) || { echo "$me: no directory $1" >&2; exit 2; }
cd "$(dirname "$0")/.."
TEXT=${2:-../shared/data/text/story.txt}
for f in "$LL/build/bin/llama-perplexity" "$LL/build/bin/llama-quantize" "$LL/gguf-py/gguf/__init__.py" "$TEXT" \
         ../shared/data/models/stories260K/stories260K.gguf; do
  [ -e "$f" ] || { echo "$me: missing $f" >&2; exit 2; }
done
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
# gguf-py imports sentencepiece for its vocabulary helpers, which writing tensors does not need
mkdir -p "$W/stub" && echo "class SentencePieceProcessor: pass" > "$W/stub/sentencepiece.py"
for arch in llama qwen2 qwen3; do
  PYTHONPATH="$W/stub:$LL/gguf-py" python3 - "$arch" "$W/$arch.gguf" <<'PY'
import sys, numpy as np
from gguf import GGUFReader, GGUFWriter, GGUFValueType
arch, out = sys.argv[1], sys.argv[2]
src = GGUFReader('../shared/data/models/stories260K/stories260K.gguf')   # its SentencePiece vocabulary
def field(name):
    f = src.fields[name]
    if f.types[0] == GGUFValueType.ARRAY and f.types[1] == GGUFValueType.STRING:
        return [bytes(f.parts[i]).decode('utf-8') for i in f.data]
    return [f.parts[i][0].item() for i in f.data]
E, L, H, KV, FF, V = 64, 2, 8, 2, 160, 512
D = {'qwen3': 24, 'qwen2': 8}.get(arch, 16)      # qwen2 in llama.cpp needs D = E / H
rng = np.random.default_rng(11)
w = GGUFWriter(out, arch)
w.add_name('random-' + arch); w.add_context_length(2048); w.add_embedding_length(E); w.add_block_count(L)
w.add_feed_forward_length(FF); w.add_head_count(H); w.add_head_count_kv(KV); w.add_key_length(D); w.add_value_length(D)
w.add_rope_dimension_count(D); w.add_rope_freq_base(10000.0 if arch == 'llama' else 1e6); w.add_layer_norm_rms_eps(1e-6)
w.add_file_type(0); w.add_tokenizer_model('llama'); w.add_token_list(field('tokenizer.ggml.tokens'))
w.add_token_scores(field('tokenizer.ggml.scores')); w.add_token_types(field('tokenizer.ggml.token_type'))
w.add_bos_token_id(1); w.add_eos_token_id(2); w.add_unk_token_id(0)
def t(name, *shape, s, base=0.0):
    w.add_tensor(name, (base + s * rng.standard_normal(shape)).astype(np.float32))
t('token_embd.weight', V, E, s=0.25)
for l in range(L):
    p = f'blk.{l}.'
    t(p + 'attn_norm.weight', E, s=0.1, base=1.0)
    t(p + 'attn_q.weight', H * D, E, s=0.15); t(p + 'attn_k.weight', KV * D, E, s=0.15); t(p + 'attn_v.weight', KV * D, E, s=0.1)
    if arch == 'qwen2':
        t(p + 'attn_q.bias', H * D, s=0.15); t(p + 'attn_k.bias', KV * D, s=0.15); t(p + 'attn_v.bias', KV * D, s=0.15)
    if arch == 'qwen3':
        t(p + 'attn_q_norm.weight', D, s=0.2, base=1.0); t(p + 'attn_k_norm.weight', D, s=0.2, base=1.0)
    t(p + 'attn_output.weight', E, H * D, s=0.075); t(p + 'ffn_norm.weight', E, s=0.1, base=1.0)
    t(p + 'ffn_gate.weight', FF, E, s=0.1); t(p + 'ffn_up.weight', FF, E, s=0.1); t(p + 'ffn_down.weight', E, FF, s=0.075)
t('output_norm.weight', E, s=0.1, base=1.0)
if arch != 'qwen3':
    t('output.weight', V, E, s=0.2)                # qwen3: tied to token_embd
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
PY
  for q in Q8_0 Q4_0; do "$LL/build/bin/llama-quantize" "$W/$arch.gguf" "$W/$arch-$q.gguf" $q 2 >/dev/null 2>&1; done
done
echo "| file | llama.cpp PPL | Longspan PPL | relative difference |"
echo "|---|---|---|---|"
for arch in llama qwen2 qwen3; do
  for f in $arch $arch-Q8_0 $arch-Q4_0; do
    echo "$me: $f" >&2
    a=$("$LL/build/bin/llama-perplexity" -m "$W/$f.gguf" -f "$TEXT" -c 128 -t 2 -ctk f32 -ctv f32 -fa off 2>&1 | grep -o 'PPL = [0-9.]*' | cut -d' ' -f3)
    b=$(./longspan perplexity --model "$W/$f.gguf" --data "$TEXT" --ctx 128 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["perplexity"])')
    python3 -c "import sys; a, b = float('$a'), float('$b'); print('| random %s | %.4f | %.4f | %+.2e |' % ('$f', a, b, b / a - 1))"
  done
done
