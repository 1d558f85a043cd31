#!/usr/bin/env bash
# Prefill and decode speed of Longspan and llama.cpp side by side on the same GGUF files, as
# llama-bench defines them: ppN = N prompt tokens / prefill seconds from an empty cache, tgN = N
# tokens decoded one at a time / their seconds, starting at the beginning of the context.
#
#   scripts/bench-vs-llamacpp.sh LLAMA_BIN_DIR FILE.gguf...
#   scripts/bench-vs-llamacpp.sh --table RAW.tsv...    (the table again, from kept samples)
#
# LLAMA_BIN_DIR holds llama-bench (a llama.cpp build's build/bin). llama.cpp is never part of
# Longspan: build it anywhere outside the repository.
#
# The two sides alternate (round 1 llama.cpp then Longspan, round 2 Longspan then llama.cpp, ...)
# so that a change in the machine's load falls on both; each run is one process with one untimed
# warm-up of the same size (llama-bench's own, `bench model --warmup WARMUP`) and one timed run. The
# table gives median / min / max over the rounds and the ratio of the medians Longspan/llama.cpp.
#
# Environment (defaults in brackets):
#   ROUNDS   rounds per file and thread count [3]
#   THREADS  thread counts [1 2]
#   PROMPTS  prompt lengths; those above a file's context_length are skipped [512 4096]
#   GEN      decoded tokens of tg [128]; shorter runs time the JIT's warm-up as much as the decode
#            (on a Zen 5, tg32 with REPEATS=2 read 0.56-0.82 of llama.cpp where tg128 with 3 read 0.94-1.03)
#   WARMUP   Longspan's untimed runs before its timed ones (bench model --warmup) [1]; the JIT
#            compiles during the first runs, so on tiny files (stories260K's tg128 lasts ~7 ms) use
#            e.g. WARMUP=20 REPEATS=20 to time the steady state (with WARMUP=1 REPEATS=5 stories260K
#            read 0.32-0.37 of llama.cpp's decode, with 5 / 60 it read 1.39-1.43 on a Zen 5)
#   REPEATS  timed repetitions inside each process (llama-bench -r, bench model --repeats), the
#            process's median taken [1]; more than one lets the JIT settle on small files, whose
#            whole tg128 lasts a few tens of milliseconds
#   FA       llama.cpp flash attention settings, comma-separated [0,1]
#   RAW      file to keep every sample in (TSV) [a temporary file]
# Progress and the machine's load go to standard error, the table (Markdown) to standard output.
set -euo pipefail

me=bench-vs-llamacpp.sh
fail() { echo "$me: $*" >&2; exit 2; }

# the Markdown table of the samples in the files given (lines: file, test, threads, side, tokens/s)
table() {
python3 - "$@" <<'EOF'
import collections, statistics, sys
samples = collections.defaultdict(list)  # (file, test, threads, side) -> tokens/s per round
files = []
for line in (l for f in sys.argv[1:] for l in open(f)):
    name, test, threads, side, value = line.rstrip('\n').split('\t')
    if name not in files: files.append(name)
    samples[(name, test, int(threads), side)].append(float(value))
others = sorted({k[3] for k in samples} - {'Longspan'})
rows = sorted({k[:3] for k in samples}, key=lambda k: (files.index(k[0]), k[2], k[1][:2] != 'pp', int(k[1][2:])))
def num(x): return f'{x:.1f}' if x >= 10 else f'{x:.2f}'
def cell(v): return f'{num(statistics.median(v))} ({num(min(v))}–{num(max(v))})' if v else 'n/a'
def ratio(a, b): return f'{statistics.median(a) / statistics.median(b):.2f}' if a and b else 'n/a'
print('tokens/s, median (min–max) over rounds; ratios of the medians')
print()
print('| file | test | threads | ' + ' | '.join(others) + ' | Longspan | ' + ' | '.join('Longspan / ' + o for o in others) + ' |')
print('|' + '---|' * (4 + 2 * len(others)))
for k in rows:
    ls = samples.get(k + ('Longspan',), [])
    print(f'| {k[0]} | {k[1]} | {k[2]} | ' + ' | '.join(cell(samples.get(k + (o,), [])) for o in others)
          + f' | {cell(ls)} | ' + ' | '.join(ratio(ls, samples.get(k + (o,), [])) for o in others) + ' |')
EOF
}

if [ "${1:-}" = --table ]; then
  shift
  [ $# -ge 1 ] || fail "usage: $me --table RAW.tsv..."
  for f in "$@"; do [ -f "$f" ] || fail "no such file: $f"; done
  table "$@"
  exit 0
fi

[ $# -ge 2 ] || fail "usage: $me LLAMA_BIN_DIR FILE.gguf... (LLAMA_BIN_DIR: the bin directory of a llama.cpp build)"
llama=$1; shift
[ -d "$llama" ] || fail "llama.cpp directory '$llama' does not exist (give the bin directory of a llama.cpp build)"
[ -x "$llama/llama-bench" ] || fail "no llama-bench in '$llama' (give the bin directory of a llama.cpp build)"
for f in "$@"; do [ -f "$f" ] || fail "no such file: $f"; done
command -v python3 >/dev/null || fail "python3 is needed to read the JSON of both sides"

ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1 2}
PROMPTS=${PROMPTS:-512 4096}
GEN=${GEN:-128}
REPEATS=${REPEATS:-1}
WARMUP=${WARMUP:-1}
FA=${FA:-0,1}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || fail "ROUNDS must be a positive integer, got '$ROUNDS'"
[[ $GEN =~ ^[1-9][0-9]*$ ]] || fail "GEN must be a positive integer, got '$GEN'"
[[ $REPEATS =~ ^[1-9][0-9]*$ ]] || fail "REPEATS must be a positive integer, got '$REPEATS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || fail "WARMUP must be a whole number, got '$WARMUP'"

root=$(cd "$(dirname "$0")/.." && pwd)
longspan=$root/longspan
raw=${RAW:-$(mktemp)}
: > "$raw"

# builds the jar if the sources changed, so that no timed run pays for it
"$longspan" --help > /dev/null

json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "# $(date -u +%FT%TZ) load $(load); rounds $ROUNDS, threads $THREADS, prompts $PROMPTS, gen $GEN, repeats $REPEATS, warmup $WARMUP, llama.cpp fa $FA" >&2
for f in "$@"; do
  name=$(basename "$f" .gguf)
  ctx=$("$longspan" info "$f" --json | json 'print(d["context_length"])')
  pp=()
  for p in $PROMPTS; do
    if [ "$p" -le "$ctx" ]; then pp+=("$p"); else echo "# $name: pp$p skipped (context_length $ctx)" >&2; fi
  done
  plist=$(IFS=,; echo "${pp[*]:-}")
  for t in $THREADS; do
    for r in $(seq 1 "$ROUNDS"); do
      run_llama() {
        local args=(-m "$f" -n "$GEN" -t "$t" -fa "$FA" -r "$REPEATS" -o json)
        if [ -n "$plist" ]; then args+=(-p "$plist"); else args+=(-p 0); fi
        "$llama/llama-bench" "${args[@]}" 2> /dev/null | json "
for x in d:
    test = 'pp%d' % x['n_prompt'] if x['n_prompt'] else 'tg%d' % x['n_gen']
    import statistics
    ts = statistics.median(x['samples_ts']) if x.get('samples_ts') else x['avg_ts']
    print('$name', test, $t, 'llama.cpp fa=%d' % x['flash_attn'], ts, sep='\t')" >> "$raw"
      }
      run_longspan() {
        if [ -n "$plist" ]; then
          "$longspan" bench model --model "$f" --prompt-lengths "$plist" --gen 1 --warmup "$WARMUP" --repeats "$REPEATS" --threads "$t" --json | json "
for x in d['results']:
    print('$name', 'pp%d' % x['prompt_tokens'], $t, 'Longspan', x['pp_tokens_per_s']['median'], sep='\t')" >> "$raw"
        fi
        # a one-token prompt, then GEN tokens: llama-bench's tg decodes from an empty cache, so
        # the two differ by one position of attention
        "$longspan" bench model --model "$f" --prompt-lengths 1 --gen "$GEN" --warmup "$WARMUP" --repeats "$REPEATS" --threads "$t" --json | json "
x = d['results'][0]
print('$name', 'tg$GEN', $t, 'Longspan', x['tg_tokens_per_s']['median'], sep='\t')" >> "$raw"
      }
      before=$(load)
      if [ $((r % 2)) -eq 1 ]; then run_llama; run_longspan; else run_longspan; run_llama; fi
      echo "# $name threads $t round $r: load $before -> $(load)" >&2
    done
  done
done
echo "# $(date -u +%FT%TZ) load $(load); samples in $raw" >&2

table "$raw"
