#!/usr/bin/env python3
"""GFLOP/s of fp32 C = A @ B.T with numpy (OpenBLAS here), measured like `longspan bench gemm`:
same sizes, same warm-up rule, min/median/max over repeats. For comparing Longspan against BLAS
on the same machine in the same session.

  python3 scripts/bench-openblas.py --size 1024,2048,4096 --threads 2 --repeats 5 [--json]

With --with-longspan it alternates, --rounds times, one `./longspan bench gemm` run (same sizes,
threads and repeats, its own JVM and warm-up) with one numpy run, pools the samples of each, and
prints both with the ratio of medians (and the ratio of each round's medians): on a machine shared
with other work, alternating keeps both exposed to the same load.

--threads sets OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before numpy is imported.
Progress goes to stderr; with --json exactly one JSON object goes to stdout.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stats(xs):
    return {"gflops_min": min(xs), "gflops_median": statistics.median(xs), "gflops_max": max(xs)}


def numpy_samples(np, n, repeats, warmup_s, cpu=False):
    """GFLOP/s of `repeats` timed runs of C = A @ B.T after >= 3 runs and >= warmup_s seconds of warm-up."""
    rng = np.random.default_rng(42)
    a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    c = np.empty((n, n), dtype=np.float32)
    flops = 2.0 * n * n * n
    end, runs = time.perf_counter() + warmup_s, 0
    while runs < 3 or time.perf_counter() < end:
        np.matmul(a, b.T, out=c)
        runs += 1
    gf = []
    clock = time.thread_time_ns if cpu else time.perf_counter_ns
    for r in range(repeats):
        t0 = clock()
        np.matmul(a, b.T, out=c)
        gf.append(flops / (clock() - t0))
        print(f"  numpy N={n} repeat {r + 1}/{repeats}: {gf[-1]:.1f} GFLOP/s", file=sys.stderr)
    return gf


def longspan_samples(sizes, threads, repeats, warmup_s, clock):
    cmd = [os.path.join(ROOT, "longspan"), "bench", "gemm", "--size", ",".join(map(str, sizes)),
           "--repeats", str(repeats), "--warmup", str(warmup_s), "--clock", clock, "--json"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    print("  running " + " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    doc = json.loads(out)
    return doc, {row["n"]: row["gflops"] for row in doc["results"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="1024,2048,4096", help="comma-separated matrix sizes N")
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (default: library default)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per size")
    p.add_argument("--warmup", type=float, default=1.0, help="minimum warm-up seconds per size (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--with-longspan", action="store_true", help="alternate with ./longspan bench gemm and report ratios")
    p.add_argument("--rounds", type=int, default=3, help="alternation rounds with --with-longspan (default 3)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall (default) or cpu: CPU time of the calling thread (needs --threads 1; BLAS then computes on it)")
    args = p.parse_args()
    if args.clock == "cpu" and args.threads != 1:
        p.error("--clock cpu needs --threads 1")
    if args.threads is not None:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import numpy as np  # imported after the thread variables are set

    sizes = [int(s) for s in args.size.split(",") if s.strip()]
    if args.with_longspan:
        compare(np, sizes, args)
        return
    rows = []
    if not args.json:
        print(f"numpy {np.__version__} / {blas_name(np)}", file=sys.stderr)
    for n in sizes:
        gf = numpy_samples(np, n, args.repeats, args.warmup, args.clock == "cpu")
        row = {"n": n, **stats(gf), "gflops": gf}
        rows.append(row)
        if not args.json:
            print(f"N={n:5d}  GFLOP/s min {row['gflops_min']:7.1f}  median {row['gflops_median']:7.1f}  max {row['gflops_max']:7.1f}")
    if args.json:
        print(json.dumps({"benchmark": "gemm", "op": "C = A*B^T fp32", "impl": "numpy " + np.__version__,
                          "blas": blas_name(np), "threads": args.threads, "results": rows}, indent=2))


def blas_name(np):
    """The BLAS numpy calls, and for OpenBLAS the kernel set it picked at run time: an OpenBLAS older than
    the CPU falls back silently (0.3.21 runs its Haswell/AVX2 kernels on Zen 5, at half the speed of its
    SkylakeX ones; OPENBLAS_CORETYPE chooses)."""
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name = cfg.get("name", "?") + " " + cfg.get("version", "?")
    except Exception:  # older numpy: no dict mode
        name = "unknown"
    core = openblas_core()
    if core and avx512_cpu() and not any(k in core for k in ("SkylakeX", "Cooperlake", "SapphireRapids")):
        print(f"note: OpenBLAS runs its {core.split()[-1]} kernels (256-bit) on this AVX-512 CPU; "
              "OPENBLAS_CORETYPE=SkylakeX selects its AVX-512 ones", file=sys.stderr)
    return name + (f", OpenBLAS {core}" if core else "")


def avx512_cpu():
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


def openblas_core():
    """OpenBLAS's config and core name from the library this process loaded (None if it is not OpenBLAS)."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if len(line.split()) >= 6}
        libs = sorted(p for p in paths if "openblas" in os.path.basename(p).lower() and ".so" in os.path.basename(p))
    except OSError:
        return None
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return f"{lib.openblas_get_config().decode().strip()} core {lib.openblas_get_corename().decode()}"
        except (OSError, AttributeError):
            continue
    return None


def compare(np, sizes, args):
    ls = {n: [] for n in sizes}
    npy = {n: [] for n in sizes}
    round_ratios = {n: [] for n in sizes}
    env = None
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        env, got = longspan_samples(sizes, args.threads, args.repeats, args.warmup, args.clock)
        for n in sizes:
            ls[n] += got[n]
            mine = numpy_samples(np, n, args.repeats, args.warmup, args.clock == "cpu")
            npy[n] += mine
            round_ratios[n].append(statistics.median(got[n]) / statistics.median(mine))
    rows = []
    for n in sizes:
        a, b = stats(ls[n]), stats(npy[n])
        rows.append({"n": n, "longspan": a, "numpy": b, "ratio_of_medians": a["gflops_median"] / b["gflops_median"],
                     "round_ratios": round_ratios[n]})
    if args.json:
        env = {k: v for k, v in env.items() if k not in ("benchmark", "results", "op", "repeats")}
        print(json.dumps({"benchmark": "gemm-vs-blas", "op": "C = A*B^T fp32", "clock": args.clock, "rounds": args.rounds,
                          "repeats_per_round": args.repeats, "longspan_env": env,
                          "numpy": np.__version__, "blas": blas_name(np), "results": rows}, indent=2))
        return
    print(f"fp32 C = A*B^T, threads {args.threads}, {args.clock} clock, {args.rounds} rounds x {args.repeats} repeats; "
          f"JDK {env['jdk']} ({env['jit']}), {env['vector_bits']}-bit vectors; numpy {np.__version__} / {blas_name(np)}")
    print("|    N | Longspan GFLOP/s min / median / max | numpy GFLOP/s min / median / max | ratio of medians | per-round ratios |")
    print("|-----:|------------------------------------:|---------------------------------:|-----------------:|:-----------------|")
    for row in rows:
        a, b = row["longspan"], row["numpy"]
        print(f"| {row['n']:4d} | {a['gflops_min']:.0f} / {a['gflops_median']:.0f} / {a['gflops_max']:.0f} "
              f"| {b['gflops_min']:.0f} / {b['gflops_median']:.0f} / {b['gflops_max']:.0f} "
              f"| {row['ratio_of_medians']:.2f} | {', '.join(f'{x:.2f}' for x in row['round_ratios'])} |")


if __name__ == "__main__":
    main()
