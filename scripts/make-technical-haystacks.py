#!/usr/bin/env python3
"""Builds data/technical/: digit-bearing technical text of seven genres for passkey haystacks in
training (docs/MODEL.md, stage 36), from files a Debian 12 machine installs, by a fixed rule so the
selection can be repeated:

  per genre, the candidate files that are valid UTF-8, 4-150 KB and distinct (MD5 of the whole
  file), in the order of the MD5 of their paths, until the genre holds 450 KB; each copied
  unmodified as GENRE--PATH-WITH-DASHES.txt.

Left out, because they are unseen test text in scripts/validate-passkey-model.sh: Python's pydoc
topics and IDLE (not top-level modules, so never candidates), the NEWS of gzip, zstd, file, procps,
libproc2 and libelf1, and every man page, info manual, licence text and Vim file.

usage: scripts/make-technical-haystacks.py OUT_DIR   (OUT_DIR must not exist)
"""
import glob, gzip, hashlib, os, sys

GENRES = {
    "linux-headers": lambda: glob.glob("/usr/include/linux/**/*.h", recursive=True),
    "c-headers": lambda: glob.glob("/usr/include/*.h"),
    "glibc-locales": lambda: glob.glob("/usr/share/i18n/locales/*"),
    "news": lambda: [p for p in glob.glob("/usr/share/doc/*/NEWS*")
                     if p.split("/")[4] not in {"gzip", "zstd", "file", "procps", "libproc2-0", "libelf1"}
                     and not p.split("/")[4].startswith(("python", "idle", "libpython"))],
    "xkb-symbols": lambda: [p for p in glob.glob("/usr/share/X11/xkb/symbols/**", recursive=True) if os.path.isfile(p)],
    "perl-modules": lambda: glob.glob("/usr/share/perl/5.36/**/*.pm", recursive=True),
    "python-stdlib": lambda: glob.glob("/usr/lib/python3.11/*.py"),
}
BUDGET, LO, HI = 450_000, 4_000, 150_000


def load(p):
    b = open(p, "rb").read()
    return gzip.decompress(b) if p.endswith(".gz") else b


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/make-technical-haystacks.py OUT_DIR")
    out = sys.argv[1]
    if os.path.exists(out):
        sys.exit(f"make-technical-haystacks: {out} exists; choose a new directory")
    os.makedirs(out)
    seen = set()
    for genre, candidates in GENRES.items():
        total, n = 0, 0
        for p in sorted(set(candidates()), key=lambda p: hashlib.md5(p.encode()).hexdigest()):
            try:
                b = load(p)
                b.decode("utf-8")
            except (OSError, UnicodeDecodeError, gzip.BadGzipFile):
                continue
            h = hashlib.md5(b).hexdigest()
            if not LO <= len(b) <= HI or h in seen:
                continue
            seen.add(h)
            name = genre + "--" + p.strip("/").removesuffix(".gz").replace("/", "-") + ".txt"
            with open(os.path.join(out, name), "wb") as f:
                f.write(b)
            total += len(b); n += 1
            if total >= BUDGET:
                break
        digits = sum(c.isdigit() for f in glob.glob(os.path.join(out, genre + "--*")) for c in open(f, encoding="utf-8").read())
        print(f"{genre}: {n} files, {total / 1e3:.0f} KB, {100 * digits / max(total, 1):.1f} % digits")


if __name__ == "__main__":
    main()
