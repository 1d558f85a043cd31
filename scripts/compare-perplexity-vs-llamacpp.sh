#!/usr/bin/env bash
# llama-perplexity's figure against `longspan perplexity --ctx C` on the same GGUF files, texts and
# context sizes: a check that the replayed arithmetic (eval.GgmlReplica, `--arithmetic auto`) prints
# llama.cpp's figures to the last digit, and a measure of how far Longspan's kernels are from them
# (ARITH=longspan).
#
#   scripts/compare-perplexity-vs-llamacpp.sh LLAMA_BIN_DIR FILE.gguf... [-- TEXT...]
#
# LLAMA_BIN_DIR holds llama-perplexity from a llama.cpp build (b4748 = c392e50 is the one replayed:
# built for AVX2 without AVX-512 for ARITH=ggml-avx2, natively on an AVX-512 machine for ggml-avx512).
# llama.cpp is never part of Longspan: build it anywhere outside the repository. TEXTs default to
# ../shared/data/text/story.txt.
#
# Environment (defaults in brackets):
#   CTX     context sizes [128]
#   KV      cache type, both sides (-ctk/-ctv and --kv) [f16: llama-perplexity's default]
#   ARITH   --arithmetic of the Longspan side [auto]
#
# Output: one Markdown table on standard output (both figures as printed, and whether they are equal),
# progress on standard error; exit 1 when any figure differs (with ARITH=longspan a difference is expected).
set -euo pipefail
me=compare-perplexity-vs-llamacpp.sh
[ $# -ge 2 ] || { echo "usage: scripts/$me LLAMA_BIN_DIR FILE.gguf... [-- TEXT...]" >&2; exit 2; }
BIN=$(cd "$1" 2>/dev/null && pwd) || { echo "$me: no directory $1" >&2; exit 2; }
shift
[ -x "$BIN/llama-perplexity" ] || { echo "$me: no llama-perplexity in $BIN" >&2; exit 2; }
files=() texts=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do files+=("$(realpath "$1")"); shift; done
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do texts+=("$(realpath "$1")"); shift; done
cd "$(dirname "$0")/.."
[ ${#texts[@]} -gt 0 ] || texts=("$(realpath ../shared/data/text/story.txt)")
for f in "${files[@]}" "${texts[@]}"; do [ -f "$f" ] || { echo "$me: no file $f" >&2; exit 2; }; done
CTX=${CTX:-128} KV=${KV:-f16} ARITH=${ARITH:-auto}
./longspan --version > /dev/null   # builds the jar once, before the loop

echo "| file | text | ctx | llama-perplexity | longspan ($ARITH) | equal |"
echo "|---|---|---|---|---|---|"
differ=0
for f in "${files[@]}"; do
  for t in "${texts[@]}"; do
    for c in $CTX; do
      echo "$me: $(basename "$f") $(basename "$t") -c $c" >&2
      a=$("$BIN/llama-perplexity" -m "$f" -f "$t" -c "$c" -ctk "$KV" -ctv "$KV" 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
      b=$(./longspan perplexity --model "$f" --data "$t" --ctx "$c" --kv "$KV" --arithmetic "$ARITH" 2>/dev/null \
          | sed -n 's/^perplexity \([0-9.]*\).*/\1/p' || true)
      same=no
      [ -n "$a" ] && [ "$a" = "$b" ] && same=yes
      [ -z "$a" ] && [ -z "$b" ] && same="both refuse"
      [ "$same" = no ] && differ=1
      echo "| $(basename "$f") | $(basename "$t") | $c | ${a:-refused} | ${b:-refused} | $same |"
    done
  done
done
exit $differ
