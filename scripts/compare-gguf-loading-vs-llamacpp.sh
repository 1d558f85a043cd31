#!/usr/bin/env bash
# Corrupted copies of a GGUF model (truncations; bytes changed in the header, metadata and tensor infos;
# 4/8-byte fields overwritten with 0, -1, 2^31, 2^40; bytes changed anywhere), each loaded by llama.cpp
# (llama_model_load_from_file) and by `longspan generate`: llama.cpp's verdict (loads or not) and Longspan's
# must agree, and every refusal of Longspan's must be one line on standard error with exit code 2.
#
#   scripts/compare-gguf-loading-vs-llamacpp.sh LLAMA_CPP_DIR [MODEL.gguf] [COUNT]
#
# LLAMA_CPP_DIR is a llama.cpp checkout built with cmake (build/bin/libllama.so); a small C++ harness of ours
# is compiled against its llama.h in a temporary folder. MODEL defaults to stories260K, COUNT to 160 (about 2
# minutes). Output: a summary table on standard output, each disagreement on standard error; exit 1 on any.
set -euo pipefail
me=compare-gguf-loading-vs-llamacpp.sh
[ $# -ge 1 ] || { echo "usage: scripts/$me LLAMA_CPP_DIR [MODEL.gguf] [COUNT]" >&2; exit 2; }
LL=$(cd "$1" 2>/dev/null && pwd) || { echo "$me: no directory $1" >&2; exit 2; }
cd "$(dirname "$0")/.."
MODEL=${2:-../shared/data/models/stories260K/stories260K.gguf}
COUNT=${3:-160}
for f in "$LL/include/llama.h" "$LL/build/bin/libllama.so" "$MODEL"; do
  [ -e "$f" ] || { echo "$me: missing $f" >&2; exit 2; }
done
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cat > "$W/load.cpp" <<'CPP'
// exit 0 when llama.cpp loads the model file, 1 when it refuses it
#include "llama.h"
int main(int argc, char ** argv) {
    llama_backend_init();
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_model * m = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!m) return 1;
    llama_model_free(m);
    return 0;
}
CPP
g++ -O1 -std=c++17 -I"$LL/include" -I"$LL/ggml/include" "$W/load.cpp" -L"$LL/build/bin" -lllama -Wl,-rpath,"$LL/build/bin" -o "$W/load"
./longspan --version >/dev/null 2>&1 || true   # builds the CLI when the sources are newer
python3 - "$MODEL" "$W" "$COUNT" <<'PY'
import random, sys
src, w, count = open(sys.argv[1], 'rb').read(), sys.argv[2], int(sys.argv[3])
rng = random.Random(3)
for i in range(count):
    b = bytearray(src)
    k = i % 4
    if k == 0: b = b[:rng.randrange(len(b))]
    elif k == 1:
        for _ in range(rng.randint(1, 4)):
            j = rng.randrange(min(len(b), 20000)); b[j] = rng.randrange(256)
    elif k == 2:
        j = rng.randrange(min(len(b), 20000)) & ~3
        b[j:j + 8] = rng.choice([b'\xff' * 8, b'\x00' * 8, (2**31).to_bytes(8, 'little'), (2**40).to_bytes(8, 'little'), b'\xff\xff\xff\x7f\x00\x00\x00\x00'])
    else:
        for _ in range(rng.randint(1, 8)):
            j = rng.randrange(len(b)); b[j] = rng.randrange(256)
    open('%s/m%03d.gguf' % (w, i), 'wb').write(b)
PY
both=0; neither=0; bad=0
for f in "$W"/m*.gguf; do
  if "$W/load" "$f" 2>/dev/null; then ll=0; else ll=1; fi
  set +e
  timeout 120 ./longspan generate --model "$f" --prompt "Once upon a time" --raw --temperature 0 --max-tokens 4 > /dev/null 2> "$W/err"
  rc=$?
  set -e
  lines=$(wc -l < "$W/err")
  if [ $ll = 0 ] && [ $rc = 0 ]; then both=$((both + 1))
  elif [ $ll = 1 ] && [ $rc = 2 ] && [ "$lines" = 1 ]; then neither=$((neither + 1))
  else
    bad=$((bad + 1))
    echo "$(basename "$f"): llama.cpp $([ $ll = 0 ] && echo loads || echo refuses), Longspan exit $rc, $lines lines: $(head -c 200 "$W/err" | tr '\n' ' ')" >&2
  fi
  echo -n . >&2
done
echo >&2
echo "| files | both load | both refuse (Longspan: one line, exit 2) | disagree |"
echo "|---|---|---|---|"
echo "| $COUNT corrupted copies of $(basename "$MODEL") | $both | $neither | $bad |"
[ $bad = 0 ]
