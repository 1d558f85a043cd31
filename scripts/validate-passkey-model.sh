#!/usr/bin/env bash
# The whole check a passkey model must pass before it is shipped as models/longspan-passkey
# (issue 11's targets, docs/MODEL.md "Results of the shipped model"), in one command:
#
#   scripts/validate-passkey-model.sh MODEL OUT [--quick] [--4m]
#
#   MODEL    a Longspan model directory (e.g. runs/stage19)
#   OUT      a new directory for the JSON results and summary.md (refused if it exists)
#   --quick  1K-64K only (about 5 minutes on 2 cores) instead of 1K-1M (about 25 minutes)
#   --4m     also 4M tokens, 10 keys over the five depths (about 30 more minutes)
#   --texts DIR  the unseen texts of an earlier run (its OUT/texts) instead of building them here, so
#                that two models are read on the same haystacks (installing packages changes the man
#                pages, info manuals and change logs a machine has)
#
# Haystacks: the standard filler, the held-out novel (data/gutenberg/pg1661.txt), and text no stage
# trained on, built from files a Debian machine has (each skipped with a line if missing): the
# licences in /usr/share/common-licenses, Vim's user manual, the change logs of five packages (gzip,
# zstd, file, procps, libelf1; data/changelogs holds others'), Python's reference topics, IDLE's
# release notes (where python3 ships them), GNU info manuals, man pages, this repository's Java sources and tables of
# numbers (scripts/make-number-tables.py), the held-out novel typeset in UTF-8 with CRLF line ends
# (scripts/make-typeset-novel.py); and one
# needle position (64K, depth 0.25) that earlier fine-tunes lost, 60 keys; 256 consecutive needle positions at 4K.
# Then held-out perplexity
# 4K / 256K (novel) and 4K / 256K / 1M (the Bible's held-out tail), the same scored bytes at every
# length. summary.md gets one line per run: correct / trials and every wrong answer (key -> answer,
# length, depth).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/validate-passkey-model.sh MODEL OUT [--quick] [--4m] [--texts DIR]" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
MODEL=$1; OUT=$2; shift 2
LENGTHS=1k,4k,16k,64k,256k,1m; FOUR_M=0; TEXTS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) LENGTHS=1k,4k,16k,64k ;;
    --4m) FOUR_M=1 ;;
    --texts) [[ $# -ge 2 ]] || usage; TEXTS=$2; shift
      ls "$TEXTS"/*.txt >/dev/null 2>&1 || { echo "validate-passkey-model: --texts '$TEXTS' holds no .txt files" >&2; exit 2; } ;;
    *) echo "validate-passkey-model: unknown option '$1'" >&2; usage ;;
  esac
  shift
done
[[ -f "$MODEL/config.json" ]] || { echo "validate-passkey-model: MODEL '$MODEL' has no config.json" >&2; exit 2; }
[[ -e "$OUT" ]] && { echo "validate-passkey-model: OUT '$OUT' exists; choose a new directory" >&2; exit 2; }
mkdir -p "$OUT/texts"

# Unseen texts (never in any training recipe), built as docs/MODEL.md describes (or those of --texts).
T="$OUT/texts"
if [[ -n "$TEXTS" ]]; then
  cp "$TEXTS"/*.txt "$T/"
else
if ls /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0 /usr/share/common-licenses/Artistic >/dev/null 2>&1; then
  cat /usr/share/common-licenses/{GPL-3,Apache-2.0,Artistic} > "$T/licences.txt"
fi
VIMDOC=$(ls -d /usr/share/vim/vim*/doc 2>/dev/null | head -1 || true)
if [[ -n "$VIMDOC" ]]; then cat "$VIMDOC"/usr_0*.txt "$VIMDOC"/usr_1*.txt > "$T/vim-manual.txt"; fi
CL=""
for p in gzip zstd file procps libelf1; do
  [[ -f /usr/share/doc/$p/changelog.gz ]] && CL="$CL /usr/share/doc/$p/changelog.gz"
done
if [[ -n "$CL" ]]; then zcat $CL > "$T/changelogs.txt"; fi
python3 -c "import pydoc_data.topics as t; print('\n\n'.join(t.topics[k] for k in sorted(t.topics)))" > "$T/pydoc-topics.txt" 2>/dev/null \
  || rm -f "$T/pydoc-topics.txt"
# this repository's own Java sources (code: identifiers, numbers in literals and comments)
# at a fixed commit (d908bb1, the one docs/MODEL.md's figures use), so the haystack does not change as the
# code does; the working tree's sources where the checkout lacks that commit (a shallow clone: said below)
JAVA_AT=d908bb1
if git cat-file -e "$JAVA_AT^{commit}" 2>/dev/null; then
  git ls-tree -r --name-only "$JAVA_AT" -- longspan-core/src/main/java | grep '\.java$' | sort \
    | while read -r f; do git show "$JAVA_AT:$f"; done > "$T/java-src.txt"
else
  echo "validate-passkey-model: commit $JAVA_AT not in this checkout: java-src from the working tree (not comparable with docs/MODEL.md)" >&2
  find longspan-core/src/main/java -name '*.java' | sort | xargs cat > "$T/java-src.txt"
fi
# IDLE's release notes (issue numbers of 5-6 digits), where this python3 ships them
IDLE=$(python3 -c "import idlelib, os; print(os.path.dirname(idlelib.__file__))" 2>/dev/null || true)
if [[ -n "$IDLE" && -f "$IDLE/News3.txt" && -f "$IDLE/NEWS2x.txt" ]]; then cat "$IDLE/News3.txt" "$IDLE/NEWS2x.txt" > "$T/idle-notes.txt"; fi
# GNU info manuals (coreutils, grep, find, m4, gnupg, ...: option tables, examples, version numbers)
if ls /usr/share/info/*.info*.gz >/dev/null 2>&1; then zcat $(ls /usr/share/info/*.info*.gz | sort) > "$T/info-manuals.txt"; fi
# section-1 man pages as `man` renders them (the first 80 in name order)
if command -v man >/dev/null && ls /usr/share/man/man1/*.1.gz >/dev/null 2>&1; then
  for f in $(ls /usr/share/man/man1/*.1.gz | sort | head -80); do MANWIDTH=80 man -P cat -l "$f" 2>/dev/null || true; done > "$T/man-pages.txt"
  [[ -s "$T/man-pages.txt" ]] || rm -f "$T/man-pages.txt"
fi
fi
# a haystack of number tables (a third of the bytes digits; seeded, the same on every machine)
[[ -f "$T/number-tables.txt" ]] || python3 scripts/make-number-tables.py "$T/number-tables.txt"
# the held-out novel typeset as today's Project Gutenberg files are: UTF-8 quotes, apostrophes and dashes, CRLF line
# ends (every training text is ASCII with LF; scripts/make-typeset-novel.py)
[[ -f "$T/typeset-novel.txt" ]] || python3 scripts/make-typeset-novel.py data/gutenberg/pg1661.txt "$T/typeset-novel.txt"

run_passkey() {   # NAME LENGTHS [passkey options...]
  local name=$1 lengths=$2; shift 2
  echo "== $name: lengths $lengths $* ($(date -u +%H:%M:%S))" >&2
  ./longspan passkey --model "$MODEL" --lengths "$lengths" --trials 3 --out "$OUT/$name" --json "$@" > "$OUT/$name.json"
}
run_passkey standard "$LENGTHS"
run_passkey heldout-novel "$LENGTHS" --filler data/gutenberg/pg1661.txt
[[ -f "$T/licences.txt" ]] && run_passkey licences "$LENGTHS" --filler "$T/licences.txt"
for f in vim-manual changelogs pydoc-topics java-src info-manuals man-pages number-tables typeset-novel; do
  [[ -f "$T/$f.txt" ]] && run_passkey "$f" 1k,4k,16k,64k --filler "$T/$f.txt"
done
[[ -f "$T/idle-notes.txt" ]] && run_passkey idle-notes 16k,64k --depths 0,0.25,0.5 --filler "$T/idle-notes.txt"
# one needle position that fine-tunes of the stage-12 lineage tipped over (docs/MODEL.md, "Stage 12 results"):
# 64K, depth 0.25, the standard filler, 20 keys for each of three seeds
for S in 12 1 7; do
  echo "== weak place: 64K depth 0.25, seed $S ($(date -u +%H:%M:%S))" >&2
  ./longspan passkey --model "$MODEL" --lengths 64k --depths 0.25 --trials 20 --seed $S --out "$OUT/weak-place-$S" --json > "$OUT/weak-place-$S.json"
done
# 256 consecutive needle positions at 4K (every phase of the 256-token CRD-NTK cycle, one key each): the grid's fixed
# depths probe five phases per length, and a fine-tune can leave a hole at one of them (docs/MODEL.md, stage 39)
PHASES=$(python3 -c "
fl = 4096 - 148 - 59 - 38   # the byte tokenizer: task line, needle, question
print(','.join('%.9f' % ((1000 + i) / fl) for i in range(256)))")
echo "== phase sweep: 4K, 256 needle positions ($(date -u +%H:%M:%S))" >&2
./longspan passkey --model "$MODEL" --lengths 4k --depths "$PHASES" --trials 1 --out "$OUT/phase-sweep" --json > "$OUT/phase-sweep.json"
if [[ $FOUR_M == 1 ]]; then
  echo "== 4M: 10 keys ($(date -u +%H:%M:%S))" >&2
  ./longspan passkey --model "$MODEL" --lengths 4m --trials 2 --out "$OUT/standard-4m" --json > "$OUT/standard-4m.json"
fi
echo "== held-out perplexity ($(date -u +%H:%M:%S))" >&2
./longspan perplexity --model "$MODEL" --data data/gutenberg/pg1661.txt --lengths 4k,256k --tail 256 --windows 8 --out "$OUT/ppl-novel" --json > "$OUT/ppl-novel.json"
[[ $LENGTHS == *1m* ]] && ./longspan perplexity --model "$MODEL" --data data/kjv-verses.txt --lengths 4k,256k,1m --tail 256 --windows 8 --out "$OUT/ppl-kjv" --json > "$OUT/ppl-kjv.json"

python3 - "$OUT" "$MODEL" > "$OUT/summary.md" <<'PY'
import glob, json, os, sys
out, model = sys.argv[1], sys.argv[2]
print(f"# {model}\n")
print("| haystack | correct | misses (key -> answer, length, depth) |\n|---|---|---|")
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    name = os.path.basename(f)[:-5]
    j = json.load(open(f))
    if "cells" not in j:
        continue
    tot = sum(c["trials"] for c in j["cells"]); ok = sum(c["correct"] for c in j["cells"])
    miss = [f"{r['key']} -> {r['answer']} ({c['length']}, {c['depth']})" for c in j["cells"] for r in c["results"] if not r["correct"]]
    print(f"| {name} | {ok}/{tot} | {'; '.join(miss) or '-'} |")
# the unseen texts differ between machines (the installed man pages, info manuals, ...): say which ones these were
import hashlib
texts = sorted(glob.glob(os.path.join(out, "texts", "*.txt")))
if texts:
    print("\ntexts (md5, first 8): " + ", ".join(f"{os.path.basename(t)[:-4]} {hashlib.md5(open(t, 'rb').read()).hexdigest()[:8]}" for t in texts))
for f in sorted(glob.glob(os.path.join(out, "ppl-*.json"))):
    j = json.load(open(f))
    pts = ", ".join(f"{p['length']}: {p['perplexity']:.4f}" + (f" (vs first {p['vs_first']})" if 'vs_first' in p else "") for p in j["points"])
    print(f"\n{os.path.basename(f)[:-5]} ({j['data']}, {j['points'][0]['windows']} windows): {pts}")
PY
cat "$OUT/summary.md"
