#!/usr/bin/env bash
# The whole chain of fine-tunes that made the shipped passkey model (models/longspan-passkey: this chain's stage 37),
# from the stage-4 weights (full attention in layer 1: the model of issue 11's day, git 2a7f2eb), one
# `longspan train` per stage with the committed configs, in the order docs/MODEL.md gives:
#
#   scripts/train-passkey-chain.sh OUT
#
#   OUT  a directory for the stages (OUT/stage4 ... OUT/stage37) and OUT/times.tsv (stage, seconds,
#        held-out loss). A stage whose OUT/stageN/model.safetensors exists is skipped, so a chain cut
#        short goes on where it stopped; the times of the stages done add up to the chain's.
#
# 1 h 19 min 31 s of training on 2 cores (AMD EPYC Zen 4, 512-bit vectors, JDK 25.0.3, 2026-12-07; per stage in
# docs/MODEL.md, "What the whole chain costs"). The trainer is deterministic for a given vector width and thread
# count (stage 6 rerun wrote the same bytes; two runs of this chain on two Zen 4 machines gave the same held-out loss
# at every stage); with another vector width float rounding differs from the first step and the result is a sibling
# of the shipped model: validate it (scripts/validate-passkey-model.sh) before shipping it. Stage 42 (tables of
# numbers; the model shipped before this chain's) is an experiment after the chain: configs/experiments/
# stage42-tables-0.1.json from OUT/stage37.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $# -eq 1 ]] || { echo "usage: scripts/train-passkey-chain.sh OUT" >&2; exit 2; }
OUT=$1
mkdir -p "$OUT"
NOVELS=$(ls data/gutenberg/*.txt | grep -v pg1661)

if [[ ! -f "$OUT/stage4/model.safetensors" ]]; then
  git rev-parse --verify -q 2a7f2eb^{commit} >/dev/null \
    || { echo "train-passkey-chain: the stage-4 weights need this repository's history (commit 2a7f2eb)" >&2; exit 2; }
  mkdir -p "$OUT/stage4.tmp"
  for f in config.json model.safetensors; do git show "2a7f2eb:models/longspan-passkey/$f" > "$OUT/stage4.tmp/$f"; done
  mv "$OUT/stage4.tmp" "$OUT/stage4"
fi
[[ -f "$OUT/times.tsv" ]] || printf 'stage\tseconds\theld_out\n' > "$OUT/times.tsv"

# stage  config  init  data (kjv: the Bible alone; all: the Bible and the nine training novels)
STAGES="
5  configs/bundled-stage5.json                          4  kjv
6  configs/experiments/stage6-seed61.json              5  kjv
7  configs/bundled-stage7.json                          6  all
8  configs/bundled-stage8.json                          7  all
10 configs/bundled-stage10.json                         8  all
11 configs/bundled-stage11.json                         10 all
12 configs/bundled-stage12.json                         11 all
25 configs/bundled-stage25.json                         12 all
33 configs/experiments/stage33-token-shift.json         25 all
35 configs/experiments/stage35-changelogs-dense.json    33 all
37 configs/experiments/stage37-two-back.json            35 all"

while read -r stage config init data; do
  [[ -n "$stage" ]] || continue
  dir="$OUT/stage$stage"
  if [[ -f "$dir/model.safetensors" ]]; then
    echo "stage $stage: done before ($dir)"
    continue
  fi
  rm -rf "$dir"
  extra=""
  [[ "$data" == all ]] && extra=$NOVELS
  echo "stage $stage: $config from stage $init ($(date -u +%H:%M:%S) UTC)"
  start=$(date +%s)
  # shellcheck disable=SC2086
  ./longspan train --config "$config" --data data/kjv-verses.txt $extra --init "$OUT/stage$init" --out "$dir" > "$OUT/stage$stage.log" 2>&1 \
    || { echo "train-passkey-chain: stage $stage failed; see $OUT/stage$stage.log" >&2; exit 1; }
  secs=$(( $(date +%s) - start ))
  held=$(grep -ao 'held-out [0-9.]*' "$OUT/stage$stage.log" | tail -1 | cut -d' ' -f2)
  printf '%s\t%s\t%s\n' "$stage" "$secs" "${held:-}" >> "$OUT/times.tsv"
  echo "stage $stage: $((secs / 60)) min $((secs % 60)) s, held-out loss ${held:-?}"
done <<< "$STAGES"

total=$(awk -F'\t' 'NR > 1 { s += $2 } END { print s + 0 }' "$OUT/times.tsv")
echo "chain: $(( total / 3600 )) h $(( total % 3600 / 60 )) min of training over $(( $(wc -l < "$OUT/times.tsv") - 1 )) stages; the model is $OUT/stage37"
