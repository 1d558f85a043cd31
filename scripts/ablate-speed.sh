#!/usr/bin/env bash
# Training tokens/s of ablation plans measured back to back, as docs/ABLATIONS.md reports them:
# the tokens/s a training run logs depend on what else ran on the machine at the time, so this
# times every plan in the same session, in rounds that alternate the plans (round r runs each
# config once, in order), and prints a markdown table of min / median / max over the rounds of each
# plan's median step.
#   scripts/ablate-speed.sh [--rounds R] [--steps S] CONFIG.json...
# Environment: LONGSPAN (the launcher, default ./longspan), THREADS (default: all cores).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
ls=${LONGSPAN:-./longspan}
rounds=3 steps=3
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "ablate-speed.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "ablate-speed.sh: name at least one config (e.g. configs/ablations-4k/*.json)" >&2; exit 2; }
for cfg in "$@"; do [ -f "$cfg" ] || { echo "ablate-speed.sh: $cfg: no such config" >&2; exit 2; }; done
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq 1 "$rounds"); do
  for cfg in "$@"; do
    echo "round $r/$rounds: $(basename "$cfg" .json)" >&2
    median=$("$ls" bench train --config "$cfg" --steps "$steps" "${threads[@]}" --json \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_s_median"])')
    echo "$(basename "$cfg" .json) $median" >> "$out"
  done
done
python3 - "$out" "$@" <<'EOF'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    name, v = line.split()
    rows.setdefault(name, []).append(float(v))
order = [a.rsplit('/', 1)[-1][:-5] for a in sys.argv[2:]]
print("| plan | tokens/s min / median / max (rounds) |")
print("|---|---:|")
for n in order:
    v = rows[n]
    print(f"| {n} | {min(v):,.0f} / {statistics.median(v):,.0f} / {max(v):,.0f} |")
EOF
