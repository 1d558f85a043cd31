#!/usr/bin/env bash
# The ablations of docs/ABLATIONS.md, one row per config.
#   scripts/ablate.sh CONFIG.json...   for each config: split the texts (once; kept when unchanged),
#                                      train the plan, score the held-out texts, record its row
#   scripts/ablate.sh --read-as NAME SPEC CONFIG.json
#                                      the config's trained run (trained first if absent) scored with
#                                      the attention SPEC instead of its own, recorded as row NAME
#   scripts/ablate.sh --render [1k]    the tables and plots of docs/ABLATIONS.md (the 4K family of
#                                      configs/ablations-4k) or, with 1k, of the 1K pilot
#                                      (configs/ablations, docs/ablations/PILOT-1K.md)
# Every config of one family directory has the same model size, data and token budget, so a row
# depends only on its config (and the machine's speed for tokens/s).
# Environment: ABLATE_DIR (runs, default runs/ablate-4k or runs/ablate for the pilot), ABLATE_DATA
# (the shared data, default ../shared/data), ABLATE_ROWS (default docs/ablations/rows-4k.jsonl, or
# docs/ablations/rows.jsonl for the pilot), ABLATE_SKIP_TRAIN=1 (evaluate a run already trained in
# ABLATE_DIR/NAME), LONGSPAN (the launcher, default ./longspan), NICE (niceness of the long steps,
# default 10).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
data=${ABLATE_DATA:-../shared/data}
ls=${LONGSPAN:-./longspan}
run() { nice -n "${NICE:-10}" "$ls" "$@"; }

if [ $# -eq 0 ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
if [ "$1" = "--render" ]; then
  if [ "${2:-}" = 1k ]; then
    exec "$ls" ablate render --rows "${ABLATE_ROWS:-docs/ablations/rows.jsonl}" --out docs/ablations/PILOT-1K.md --img docs/ablations
  fi
  exec "$ls" ablate render --rows "${ABLATE_ROWS:-docs/ablations/rows-4k.jsonl}" --out docs/ABLATIONS.md --img docs/ablations/4k
fi
if [ "$1" = "--read-as" ]; then
  [ $# -eq 4 ] || { echo "scripts/ablate.sh --read-as NAME SPEC CONFIG.json: three arguments, got $(($# - 1))" >&2; exit 2; }
  read_as=$2 read_spec=$3 cfg=$4
  shift 3
fi
# the family is the config's directory: configs/ablations (the 1K pilot) or configs/ablations-4k
case "$(basename "$(dirname "$(readlink -f "$1")")")" in
  ablations) dir=${ABLATE_DIR:-runs/ablate}; rows=${ABLATE_ROWS:-docs/ablations/rows.jsonl} ;;
  *) dir=${ABLATE_DIR:-runs/ablate-4k}; rows=${ABLATE_ROWS:-docs/ablations/rows-4k.jsonl} ;;
esac

"$ls" ablate split --data-dir "$data" --hold-out pg98.txt --out "$dir/data" >/dev/null
# score $1 (a trained run) into $2 with the extra perplexity options "${@:3}": the same scored bytes at
# every length, one window of 512 bytes ending at the same place for 1K..64K in the held-out novel,
# two in the held-out New Testament for 1K..16K
score() {
  run perplexity --model "$1" --data "$dir/data/heldout/pg98.txt" --lengths 1k,4k,16k,64k --tail 512 --windows 1 --out "$2/ppl-pg98" "${@:3}"
  run perplexity --model "$1" --data "$dir/data/heldout/kjv-nt.txt" --lengths 1k,4k,16k --tail 512 --windows 2 --out "$2/ppl-kjv-nt" "${@:3}"
}
if [ "${read_as:-}" ]; then
  out="$dir/$(basename "$cfg" .json)"
  [ -f "$out/model.safetensors" ] || run train --config "$cfg" --data "$dir"/data/train/*.txt --out "$out" --force
  score "$out" "$out/read-$read_as" --attention "$read_spec"
  exec "$ls" ablate row --config "$cfg" --run "$out" --name "$read_as" --attention "$read_spec" \
    --perplexity "$out/read-$read_as/ppl-pg98/perplexity.json" "$out/read-$read_as/ppl-kjv-nt/perplexity.json" --rows "$rows"
fi
for cfg in "$@"; do
  name=$(basename "$cfg" .json)
  out="$dir/$name"
  echo "== $name: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')" >&2
  if [ "${ABLATE_SKIP_TRAIN:-0}" != 1 ]; then
    run train --config "$cfg" --data "$dir"/data/train/*.txt --out "$out" --force
  fi
  score "$out" "$out"
  "$ls" ablate row --config "$cfg" --run "$out" --perplexity "$out/ppl-pg98/perplexity.json" "$out/ppl-kjv-nt/perplexity.json" --rows "$rows"
done
