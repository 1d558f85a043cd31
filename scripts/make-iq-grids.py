#!/usr/bin/env python3
"""Writes longspan-core/src/main/resources/dev/longspan/kernel/iq-grids.bin: the codebooks of ggml's
IQ1/IQ2/IQ3 weight types, which are part of those file formats (a block stores indices into them).

    scripts/make-iq-grids.py PATH/TO/ggml/src/ggml-common.h

Reads the tables iq2xxs_grid, iq2xs_grid, iq2s_grid (uint64), iq3xxs_grid, iq3s_grid (uint32) and
iq1s_grid (uint64) from a llama.cpp checkout (outside this repository) and writes them, in that
order, little-endian, after the magic b"LSIQ" and a version byte 1. It also checks that ggml's
ksigns_iq2xs is the rule Longspan computes (7 sign bits plus an even-parity 8th) and that kmask_iq2xs
is 1 << j. The output was made once from llama.cpp c392e50 and is checked in; this script says how.
"""
import re, struct, sys

src = open(sys.argv[1]).read()

def table(name):
    m = re.search(r"GGML_TABLE_BEGIN\((\w+),\s*" + name + r",\s*(\w+)\)(.*?)GGML_TABLE_END\(\)", src, re.S)
    if not m:
        sys.exit(f"make-iq-grids: no table {name} in {sys.argv[1]}")
    return m.group(1), [int(v, 0) for v in re.findall(r"0x[0-9a-fA-F]+|\b\d+\b", m.group(3))]

_, ksigns = table("ksigns_iq2xs")
assert ksigns == [i | ((bin(i).count("1") & 1) << 7) for i in range(128)], "ksigns_iq2xs is not the parity rule"
_, kmask = table("kmask_iq2xs")
assert kmask == [1 << j for j in range(8)], "kmask_iq2xs is not 1 << j"

out = bytearray(b"LSIQ\x01")
for name, count in [("iq2xxs_grid", 256), ("iq2xs_grid", 512), ("iq2s_grid", 1024),
                    ("iq3xxs_grid", 256), ("iq3s_grid", 512), ("iq1s_grid", 2048)]:
    kind, values = table(name)
    assert len(values) == count, f"{name}: {len(values)} entries, expected {count}"
    out += struct.pack("<%d%s" % (count, "Q" if kind == "uint64_t" else "I"), *values)
dst = "longspan-core/src/main/resources/dev/longspan/kernel/iq-grids.bin"
open(dst, "wb").write(out)
print(f"wrote {dst}: {len(out)} bytes")
