#!/usr/bin/env python3
"""A haystack of number tables for `longspan passkey --filler` (docs/MODEL.md, stage 39).

    python3 scripts/make-number-tables.py OUT.txt [--seed S] [--lines N]

Indented rows of 3-6 space-aligned columns (small counts, 3-6 digit sizes with k/K/M units,
negative flags, six-digit numbers) with a line of words now and then: a text where about a
third of the bytes are digits, the hardest case for copying a 5-digit key among numbers. Written by this
script, not by the trainer's tables (PasskeyTask.Filler.withTables draws other shapes from its own
generator), so a model trained with train.synthetic.tables is still read on rows it never saw.
Refuses to overwrite OUT.
"""
import argparse, os, random, sys

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("out")
ap.add_argument("--seed", type=int, default=5)
ap.add_argument("--lines", type=int, default=20000)
a = ap.parse_args()
if os.path.exists(a.out):
    print(f"make-number-tables: {a.out} exists; choose a new file", file=sys.stderr)
    sys.exit(2)
r = random.Random(a.seed)
WORDS = ["Total memory usage:", "Block size", "columns are in kilobytes", "free   used   shared",
         "The following table lists the values."]
lines = []
for _ in range(a.lines):
    cols = [r.choice([str(r.randint(0, 99)), str(r.randint(100, 99999)) + r.choice(["", "k", "K", "M"]),
                      "-" + str(r.randint(1, 9)), str(r.randint(100000, 999999))])
            for _ in range(r.randint(3, 6))]
    lines.append(" " * r.randint(2, 12) + (" " * r.randint(3, 8)).join(cols))
    if r.random() < 0.3:
        lines.append(r.choice(WORDS))
tmp = a.out + ".tmp"
with open(tmp, "w") as f:
    f.write("\n".join(lines) + "\n")
os.replace(tmp, a.out)
