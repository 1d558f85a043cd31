#!/usr/bin/env bash
# Differential check of Longspan's chat-template rendering (jinjava, with the Python-isms chat
# templates use) against Python's Jinja2 set up as Hugging Face transformers' apply_chat_template
# sets it up (a sandboxed environment with trim_blocks and lstrip_blocks, loop controls, the
# {% generation %} tag, tojson as json.dumps with ensure_ascii off, raise_exception, strftime_now;
# messages, add_generation_prompt, bos_token, eos_token, tools = documents = None).
#
#   scripts/compare-chat-templates-vs-jinja2.sh TEMPLATE_DIR [CASES_PER_TEMPLATE]
#
# TEMPLATE_DIR holds *.jinja chat templates (llama.cpp's models/templates has 60-odd real ones);
# each is rendered for CASES_PER_TEMPLATE (default 20) seeded random conversations — system turns or
# none, alternating user/assistant turns, reasoning blocks, Unicode and no-break spaces, template
# syntax written into the messages — with and without the generation prompt, through
# `longspan chat-template --template F --jsonl` and through Jinja2. Needs python3 with jinja2
# (Debian: python3-jinja2). Output: one Markdown table on standard output, exit 1 when any rendering
# differs or only Longspan refuses. Where only Jinja2 refuses, it is counted apart: a template
# without a system turn makes Jinja2 raise, while Longspan puts the system text in front of the
# first user turn (as llama.cpp does); templates meant for tool calls fail in Jinja2 on tools = None.
set -euo pipefail
me=compare-chat-templates-vs-jinja2.sh
[ $# -ge 1 ] || { echo "usage: scripts/$me TEMPLATE_DIR [CASES_PER_TEMPLATE]" >&2; exit 2; }
DIR=$(cd "$1" 2>/dev/null && pwd) || { echo "$me: no directory $1" >&2; exit 2; }
CASES=${2:-20}
[[ "$CASES" =~ ^[1-9][0-9]*$ ]] || { echo "$me: CASES_PER_TEMPLATE must be a positive integer, got $CASES" >&2; exit 2; }
python3 -c 'import jinja2' 2>/dev/null || { echo "$me: python3 has no jinja2 (Debian: apt-get install python3-jinja2)" >&2; exit 2; }
ls "$DIR"/*.jinja >/dev/null 2>&1 || { echo "$me: no *.jinja files in $DIR" >&2; exit 2; }
cd "$(dirname "$0")/.."
./longspan --version >/dev/null 2>&1 || true   # builds the CLI when the sources are newer
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT

cat > "$W/jinja2_render.py" <<'PY'
import json, sys
from datetime import datetime
import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

class Generation(Extension):
    tags = {"generation"}
    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)
    def _render(self, caller):
        return caller()

def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda f: datetime.now().strftime(f)
template = env.from_string(open(sys.argv[1], encoding="utf-8").read())
for line in sys.stdin:
    c = json.loads(line)
    try:
        out = {"prompt": template.render(messages=c["messages"], tools=None, documents=None,
                                         add_generation_prompt=c["add_generation_prompt"], bos_token="<s>", eos_token="</s>")}
    except Exception as e:
        out = {"error": type(e).__name__ + ": " + str(e)}
    print(json.dumps(out, ensure_ascii=False))
PY

cat > "$W/conversations.py" <<'PY'
import json, random, sys
rnd = random.Random(int(sys.argv[1]))
words = ["hello", "world", "Once", "upon", "a", "time", "café", "naïve", "日本語", "😀", "{{ x }}", "{% if %}", "'quoted'", '"dq"',
         "\\n", "</think>", "<think>", "tab\there", "line\nbreak", "  ", "\n\n", "C:\\path", "<|im_end|>", "[INST]", "%d", "{}", "[]",
         "\u00a0", "\u202f", "ß", "İ", "42", "3.14", "—", "None", "true", "null"]
def text(lo):
    s = " ".join(rnd.choice(words) for _ in range(rnd.randint(lo, 12)))
    r = rnd.random()
    return "  " + s if r < 0.15 else s + " \n" if r < 0.3 else "\n" + s if r < 0.4 else s
def assistant():
    r = rnd.random()
    if r < 0.25: return "<think>\n" + text(1) + "\n</think>\n\n" + text(1)
    if r < 0.35: return text(1) + "</think>" + text(1)
    return text(1)
shapes = [["user"], ["system", "user"], ["user", "assistant", "user"], ["system", "user", "assistant", "user"],
          ["user", "assistant"], ["system", "user", "assistant"], ["user", "assistant", "user", "assistant", "user"],
          ["system", "user", "assistant", "user", "assistant"], ["user", "assistant", "tool", "tool", "assistant", "user"],
          ["system", "user", "assistant", "tool", "user"]]
for _ in range(int(sys.argv[2])):
    shape = rnd.choice(shapes)
    ms = [{"role": r, "content": assistant() if r == "assistant" else text(0 if r == "system" else 1)} for r in shape]
    agp = shape[-1] != "assistant" if rnd.random() < 0.8 else rnd.random() < 0.5
    print(json.dumps({"messages": ms, "add_generation_prompt": agp}, ensure_ascii=False))
PY

cat > "$W/compare.py" <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
theirs = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
cases = [json.loads(l) for l in open(sys.argv[3], encoding="utf-8")]
assert len(ours) == len(theirs) == len(cases), "line counts differ"
n = {"equal": 0, "both refuse": 0, "only Jinja2 refuses": 0, "only Longspan refuses": 0, "differ": 0}
first = None
for c, a, b in zip(cases, ours, theirs):
    if "error" in a and "error" in b: k = "both refuse"
    elif "error" in b: k = "only Jinja2 refuses"
    elif "error" in a: k = "only Longspan refuses"
    elif a["prompt"] == b["prompt"]: k = "equal"
    else: k = "differ"
    n[k] += 1
    if first is None and k in ("differ", "only Longspan refuses"):
        first = {"messages": c["messages"], "add_generation_prompt": c["add_generation_prompt"], "longspan": a, "jinja2": b}
print(json.dumps({"counts": n, "first": first}, ensure_ascii=False))
PY

echo "| template | cases | equal | both refuse | only Jinja2 refuses | only Longspan refuses | differ |"
echo "|---|---|---|---|---|---|---|"
bad=0; seed=0
for t in "$DIR"/*.jinja; do
  seed=$((seed + 1))
  name=$(basename "$t")
  echo "$me: $name" >&2
  python3 "$W/conversations.py" "$seed" "$CASES" > "$W/cases.jsonl"
  python3 "$W/jinja2_render.py" "$t" < "$W/cases.jsonl" > "$W/jinja2.jsonl" 2> "$W/jinja2.err" \
    || { echo "| $name | $CASES | Jinja2 cannot load it: $(tail -1 "$W/jinja2.err") | | | | |"; continue; }
  if ! ./longspan chat-template --template "$t" --bos '<s>' --eos '</s>' --jsonl < "$W/cases.jsonl" > "$W/longspan.jsonl" 2> "$W/longspan.err"; then
    echo "| $name | $CASES | Longspan cannot load it: $(tail -1 "$W/longspan.err") | | | | |"; bad=1; continue
  fi
  r=$(python3 "$W/compare.py" "$W/longspan.jsonl" "$W/jinja2.jsonl" "$W/cases.jsonl")
  row=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1])["counts"]; print(" | ".join(str(c[k]) for k in ["equal","both refuse","only Jinja2 refuses","only Longspan refuses","differ"]))' "$r")
  echo "| $name | $CASES | $row |"
  if python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["first"] is None else 1)' "$r"; then :; else
    bad=1
    echo "$me: $name: first difference: $(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["first"], ensure_ascii=False))' "$r")" >&2
  fi
done
exit $bad
