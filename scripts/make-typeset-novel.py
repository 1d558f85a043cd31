#!/usr/bin/env python3
"""A novel typeset as today's Project Gutenberg files are, for `longspan passkey --filler` (docs/MODEL.md).

    python3 scripts/make-typeset-novel.py IN.txt OUT.txt [--lf]

Every training text of the bundled models is plain ASCII with LF line ends; most English text a
user brings is not. This rewrites IN with UTF-8 typography: double quotes as “ and ” (alternating),
apostrophes and single quotes as ’, "--" as an em dash —, and CRLF line ends (--lf keeps LF). The
same bytes on every machine. Refuses to overwrite OUT; writes it whole or not at all.
"""
import argparse, os, re, sys, tempfile

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("inp", metavar="IN")
ap.add_argument("out", metavar="OUT")
ap.add_argument("--lf", action="store_true", help="keep LF line ends")
a = ap.parse_args()
if os.path.exists(a.out):
    print(f"make-typeset-novel: {a.out} exists; choose a new file", file=sys.stderr)
    sys.exit(2)
try:
    text = open(a.inp, encoding="utf-8", errors="replace").read()
except OSError as e:
    print(f"make-typeset-novel: cannot read {a.inp}: {e.strerror}", file=sys.stderr)
    sys.exit(2)
text = text.replace("\r\n", "\n")
out, opening = [], True
for ch in text:
    if ch == '"':
        out.append("\u201c" if opening else "\u201d")
        opening = not opening
    else:
        out.append(ch)
text = "".join(out)
text = re.sub(r"'", "\u2019", text)
text = text.replace("--", "\u2014")
if not a.lf:
    text = text.replace("\n", "\r\n")
d = os.path.dirname(os.path.abspath(a.out))
fd, tmp = tempfile.mkstemp(dir=d, prefix=".typeset-")
with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
    f.write(text)
os.replace(tmp, a.out)
