#!/usr/bin/env bash
# Longspan's chat-template rendering against the expected outputs of llama.cpp's own chat-template
# tests: tests/test-chat-template.cpp holds ~35 templates of real models with the prompt llama.cpp's
# Jinja engine must render for a fixed six-turn conversation (system, user, assistant, user, assistant
# with spaces around it, user; some add tool-call turns), with BOS/EOS texts and the generation prompt.
# Where a template has no system turn, llama.cpp puts the system text in front of the first user turn,
# as Longspan does, so these vectors also check that.
#
#   scripts/compare-chat-templates-vs-llamacpp-tests.sh LLAMA_CPP_DIR
#
# LLAMA_CPP_DIR is a llama.cpp checkout (only tests/test-chat-template.cpp is read; nothing is built).
# llama.cpp is never part of Longspan: keep it anywhere outside the repository. Needs python3.
# Output: one line per test case and a summary on standard output; exit 1 when any case differs.
set -euo pipefail
me=compare-chat-templates-vs-llamacpp-tests.sh
[ $# -eq 1 ] || { echo "usage: scripts/$me LLAMA_CPP_DIR" >&2; exit 2; }
SRC="$1/tests/test-chat-template.cpp"
[ -f "$SRC" ] || { echo "$me: no $SRC (a llama.cpp checkout?)" >&2; exit 2; }
cd "$(dirname "$0")/.."
./longspan --version >/dev/null 2>&1 || true   # builds the CLI when the sources are newer
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

python3 - "$SRC" "$W" <<'PY'
import json, re, sys
src, work = open(sys.argv[1], encoding='utf-8').read(), sys.argv[2]
marker = 'std::vector<TestCase> test_cases {'
if marker not in src: sys.exit('compare-chat-templates-vs-llamacpp-tests.sh: no test_cases list in ' + sys.argv[1])
body = src[src.index(marker) + len(marker):]
# the initializer list: /* .field= */ comments, string literals (adjacent ones concatenate), braces, booleans
tok = re.compile(r'/\*\s*\.(\w+)\s*=?\s*\*/|"((?:[^"\\]|\\.)*)"|(\{)|(\})|\b(true|false)\b|(//[^\n]*)', re.S)
ESC = {'n': '\n', 't': '\t', '"': '"', '\\': '\\', "'": "'", 'r': '\r', '0': '\0'}
def unescape(s):
    return re.sub(r'\\(.)', lambda m: ESC.get(m.group(1), '\\' + m.group(1)), s, flags=re.S)
cases, depth, cur, field, pair, turns = [], 0, None, None, [], None
for m in tok.finditer(body):
    f, s, ob, cb, b, comment = m.groups()
    if comment: continue
    if ob:
        depth += 1
        if depth == 1: cur, field = {}, None
        elif depth == 2 and field == 'extra_conversation': turns = []
        elif depth == 3: pair = []
    elif cb:
        if depth == 3 and turns is not None: turns.append(pair[:2])
        if depth == 2 and field == 'extra_conversation': cur['extra_conversation'], turns = turns, None
        if depth == 1: cases.append(cur)
        depth -= 1
        if depth < 0: break
    elif f: field = f
    elif s is not None:
        if depth == 3: pair.append(unescape(s))
        elif depth == 1 and field: cur[field] = cur.get(field, '') + unescape(s)
    elif b and depth == 1 and field: cur[field] = b == 'true'
conversation = [["system", "You are a helpful assistant"], ["user", "Hello"], ["assistant", "Hi there"],
                ["user", "Who are you"], ["assistant", "   I am an assistant   "], ["user", "Another question"]]
kept = [c for c in cases if c.get('supported_with_jinja', True) and 'template_str' in c]
for k, c in enumerate(kept):
    open(f'{work}/t{k}.jinja', 'w', encoding='utf-8').write(c['template_str'])
    msgs = [{"role": r, "content": t} for r, t in conversation + (c.get('extra_conversation') or [])]
    json.dump({"name": c['name'], "bos": c.get('bos_token', ''), "eos": c.get('eos_token', ''),
               "expected": c.get('expected_output_jinja') or c.get('expected_output', ''), "messages": msgs},
              open(f'{work}/t{k}.json', 'w', encoding='utf-8'), ensure_ascii=False)
print(len(kept), file=open(f'{work}/count', 'w'))
PY

n=$(cat "$W/count"); bad=0
for ((k = 0; k < n; k++)); do
  name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$W/t$k.json")
  bos=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bos"])' "$W/t$k.json")
  eos=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["eos"])' "$W/t$k.json")
  python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["messages"], ensure_ascii=False))' "$W/t$k.json" > "$W/in.json"
  if ./longspan chat-template --template "$W/t$k.jinja" --bos "$bos" --eos "$eos" < "$W/in.json" > "$W/out.txt" 2> "$W/err.txt" \
     && python3 -c 'import json,sys; sys.exit(0 if open(sys.argv[2], encoding="utf-8").read() == json.load(open(sys.argv[1]))["expected"] else 1)' "$W/t$k.json" "$W/out.txt"; then
    echo "equal   $name"
  else
    bad=$((bad + 1))
    echo "DIFFER  $name: $(head -c 300 "$W/err.txt")"
  fi
done
echo "$((n - bad)) of $n llama.cpp chat-template test cases rendered as llama.cpp expects"
[ "$bad" -eq 0 ]
