#!/usr/bin/env python3
"""GFLOP/s of fp32 C = A @ B.T with numpy (OpenBLAS here), measured like `longspan bench gemm`:
same sizes, same warm-up rule, min/median/max over repeats. For comparing Longspan against BLAS
on the same machine in the same session.

  python3 scripts/bench-openblas.py --size 1024,2048,4096 --threads 2 --repeats 5 [--json]

--threads sets OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before numpy is imported.
Progress goes to stderr; with --json exactly one JSON object goes to stdout.
"""
import argparse
import json
import os
import statistics
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="1024,2048,4096", help="comma-separated matrix sizes N")
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (default: library default)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per size")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = p.parse_args()
    if args.threads is not None:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import numpy as np  # imported after the thread variables are set

    sizes = [int(s) for s in args.size.split(",") if s.strip()]
    rng = np.random.default_rng(42)
    rows = []
    for n in sizes:
        a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
        b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
        c = np.empty((n, n), dtype=np.float32)
        flops = 2.0 * n * n * n
        warm = max(1, int(min(3, 2e10 / flops)))
        for _ in range(warm):
            np.matmul(a, b.T, out=c)
        gf = []
        for r in range(args.repeats):
            t0 = time.perf_counter_ns()
            np.matmul(a, b.T, out=c)
            gf.append(flops / (time.perf_counter_ns() - t0))
            print(f"  numpy N={n} repeat {r + 1}/{args.repeats}: {gf[-1]:.1f} GFLOP/s", file=sys.stderr)
        row = {"n": n, "gflops_min": min(gf), "gflops_median": statistics.median(gf), "gflops_max": max(gf)}
        rows.append(row)
        if not args.json:
            print(f"N={n:5d}  GFLOP/s min {row['gflops_min']:7.1f}  median {row['gflops_median']:7.1f}  max {row['gflops_max']:7.1f}")
    if args.json:
        blas = "unknown"
        try:
            cfg = np.show_config(mode="dicts")
            blas = cfg["Build Dependencies"]["blas"].get("name", "?") + " " + cfg["Build Dependencies"]["blas"].get("version", "?")
        except Exception:  # older numpy: no dict mode
            pass
        print(json.dumps({"benchmark": "gemm", "op": "C = A*B^T fp32", "impl": "numpy " + np.__version__,
                          "blas": blas, "threads": args.threads, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
