#!/usr/bin/env python3
"""Training tokens/s of PyTorch (CPU) on the model of a Longspan train config, measured like
`longspan bench train`: one sequence of the config's seq_len, random byte tokens and targets,
forward + mean cross-entropy + backward per step (no optimizer step), one untimed warm-up step,
then --steps timed steps; min/median/max tokens/s. For comparing Longspan's training step with
PyTorch's on the same machine in the same session (issue 17 item 4).

  /usr/bin/python3 scripts/bench-pytorch-train.py --config configs/bench-10m.json --threads 2 [--steps 5] [--json]

(Debian's python3-torch installs into the system Python, /usr/bin/python3, not into a pyenv one.)

The model is the config's Llama-style decoder, written the way a PyTorch user would: RMSNorm,
q/k/v/o projections without bias, RoPE (half pairing), SwiGLU, output head tied to the embedding
when the config says so. Attention: a dense causal pattern uses the full masked score matrix;
`window:size=W` is computed in query chunks of W against the keys of that chunk and the one
before (masked to the window), so PyTorch also does about W keys per query instead of N (with
--attention dense-mask it does the full N x N masked matrix instead). PyTorch 1.13 (Debian's
python3-torch) has no fused attention, so both are plain matmul + softmax + matmul.

With --with-longspan it alternates, --rounds times, one `./longspan bench train` run (same config,
threads and steps, its own JVM and warm-up) with one PyTorch run, and prints both with the ratio of
the medians and of each round. Progress goes to stderr; with --json exactly one JSON object goes
to stdout. Exit codes: 0, 2 for bad input, 1 for a failure. OMP_WAIT_POLICY defaults to PASSIVE
(PyTorch's OpenMP threads otherwise spin against OpenBLAS's threads; see main()).
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(msg):
    print(f"bench-pytorch-train.py: {msg}", file=sys.stderr)
    sys.exit(2)


def read_config(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        fail(f"{path}: cannot read ({e.strerror})")
    except json.JSONDecodeError as e:
        fail(f"{path}: not JSON ({e.msg} at line {e.lineno})")
    m = doc.get("model")
    if not isinstance(m, dict):
        fail(f"{path}: no \"model\" object")
    for k in ("vocab_size", "dim", "layers", "heads", "ffn_dim"):
        if not isinstance(m.get(k), int) or m[k] <= 0:
            fail(f"{path}: model.{k} must be a positive integer")
    att = m.get("attention", "dense")
    if not isinstance(att, str) or not (att == "dense" or att.startswith("window:size=")):
        fail(f"{path}: model.attention {att!r}: this script models dense and window:size=W only")
    seq = doc.get("train", {}).get("seq_len", m.get("context_length", 2048))
    return m, att, seq


def torch_samples(m, att, seq, steps, threads, dense_mask):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    V, D, L, H = m["vocab_size"], m["dim"], m["layers"], m["heads"]
    Hkv = m.get("kv_heads", H)
    hd = m.get("head_dim", D // H)
    ffn = m["ffn_dim"]
    eps = m.get("norm_eps", 1e-5)
    tied = m.get("tied_embeddings", True)
    window = int(att.split("=")[1]) if att.startswith("window") else None

    def p(*shape, std=0.02):
        return torch.nn.Parameter(torch.randn(*shape) * std)

    emb = p(V, D)
    layers = [dict(n1=torch.nn.Parameter(torch.ones(D)), wq=p(H * hd, D), wk=p(Hkv * hd, D), wv=p(Hkv * hd, D),
                   wo=p(D, H * hd), n2=torch.nn.Parameter(torch.ones(D)), w1=p(ffn, D), w3=p(ffn, D), w2=p(D, ffn))
              for _ in range(L)]
    nf = torch.nn.Parameter(torch.ones(D))
    head = emb if tied else p(V, D)

    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = torch.arange(seq, dtype=torch.float32)[:, None] * inv[None, :]
    cos, sin = torch.cos(ang), torch.sin(ang)

    def rope(x):  # x [h, T, hd], half pairing
        a, b = x[..., : hd // 2], x[..., hd // 2:]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    pos = torch.arange(seq)
    full_mask = (pos[None, :] <= pos[:, None])
    if window is not None:
        full_mask &= pos[None, :] > pos[:, None] - window

    def attention(q, k, v):  # [H, T, hd]
        if Hkv != H:
            k = k.repeat_interleave(H // Hkv, 0)
            v = v.repeat_interleave(H // Hkv, 0)
        scale = 1.0 / math.sqrt(hd)
        if window is None or dense_mask:
            s = (q @ k.transpose(1, 2)) * scale
            s = s.masked_fill(~full_mask, float("-inf"))
            return torch.softmax(s, -1) @ v
        outs = []
        for c0 in range(0, seq, window):
            c1 = min(seq, c0 + window)
            k0 = max(0, c0 - window)
            s = (q[:, c0:c1] @ k[:, k0:c1].transpose(1, 2)) * scale
            s = s.masked_fill(~full_mask[c0:c1, k0:c1], float("-inf"))
            outs.append(torch.softmax(s, -1) @ v[:, k0:c1])
        return torch.cat(outs, 1)

    def forward(tokens):
        x = emb[tokens]
        for ly in layers:
            h = rms(x, ly["n1"])
            q = (h @ ly["wq"].T).view(seq, H, hd).transpose(0, 1)
            k = (h @ ly["wk"].T).view(seq, Hkv, hd).transpose(0, 1)
            v = (h @ ly["wv"].T).view(seq, Hkv, hd).transpose(0, 1)
            o = attention(rope(q), rope(k), v).transpose(0, 1).reshape(seq, H * hd)
            x = x + o @ ly["wo"].T
            h = rms(x, ly["n2"])
            x = x + (F.silu(h @ ly["w1"].T) * (h @ ly["w3"].T)) @ ly["w2"].T
        return rms(x, nf) @ head.T

    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, V, (seq,), generator=g)
    targets = torch.randint(0, V, (seq,), generator=g)
    params = [emb, nf] + [t for ly in layers for t in ly.values()] + ([] if tied else [head])

    def step():
        for t in params:
            t.grad = None
        loss = F.cross_entropy(forward(tokens), targets)
        loss.backward()

    print(f"  pytorch {torch.__version__}: {sum(t.numel() for t in params):,} parameters, seq {seq}, {threads} threads; warming up",
          file=sys.stderr)
    step()
    tps = []
    for s in range(steps):
        t0 = time.perf_counter()
        step()
        tps.append(seq / (time.perf_counter() - t0))
        print(f"  pytorch step {s + 1}/{steps}: {tps[-1]:,.0f} tokens/s", file=sys.stderr)
    return tps, torch.__version__


def longspan_samples(config, threads, steps):
    cmd = [os.path.join(ROOT, "longspan"), "bench", "train", "--config", config, "--steps", str(steps), "--threads", str(threads), "--json"]
    print("  running " + " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    doc = json.loads(out)
    return doc["tokens_per_s_samples"] if "tokens_per_s_samples" in doc else [doc["tokens_per_s_median"]], doc


def stats(xs):
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="a Longspan train config (its model and train.seq_len)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="threads of the BLAS PyTorch calls (OPENBLAS_NUM_THREADS; default: --threads)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--with-longspan", action="store_true")
    ap.add_argument("--attention", choices=["chunked", "dense-mask"], default="chunked")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.threads < 1:
        fail("--threads must be at least 1")
    if a.steps < 1:
        fail("--steps must be at least 1")
    if a.blas_threads is not None and a.blas_threads < 1:
        fail("--blas-threads must be at least 1")
    if a.rounds < 1:
        fail("--rounds must be at least 1")
    m, att, seq = read_config(a.config)
    # PyTorch's OpenMP threads spin at the end of every parallel region while OpenBLAS's own
    # pthreads run the matmuls: on a small machine they starve each other (measured on 2 cores: 579
    # tokens/s with both threads, 1,222 with one; 1,473 with both and passive waiting). Passive
    # waiting is PyTorch's best setting here, so it is the default unless the caller sets it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # torch.set_num_threads sizes PyTorch's own OpenMP pool only: Debian's PyTorch multiplies through
    # the system OpenBLAS, whose pthreads default to every core. Without this, "--threads 1" ran its
    # matmuls on both cores of a 2-core machine (user time 1.5x the wall time; 1,590 tokens/s against
    # 989 with one BLAS thread). It must be set before torch (and so OpenBLAS) is loaded.
    blas = str(a.blas_threads or a.threads)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = blas
    try:
        import torch  # noqa: F401
    except ImportError:
        fail(f"PyTorch is not installed for {sys.executable} (Debian: apt-get install python3-torch, then run /usr/bin/python3)")
    dense = a.attention == "dense-mask"
    rounds = a.rounds if a.with_longspan else 1
    torch_all, ls_all, per_round = [], [], []
    version = None
    for r in range(rounds):
        sides = ["torch", "longspan"] if r % 2 == 0 else ["longspan", "torch"]
        got = {}
        for side in sides:
            if side == "torch":
                got["torch"], version = torch_samples(m, att, seq, a.steps, a.threads, dense)
            elif a.with_longspan:
                got["longspan"], _ = longspan_samples(a.config, a.threads, a.steps)
        torch_all += got["torch"]
        if a.with_longspan:
            ls_all += got["longspan"]
            per_round.append(statistics.median(got["longspan"]) / statistics.median(got["torch"]))
            print(f"  round {r + 1}/{rounds}: Longspan / PyTorch = {per_round[-1]:.2f}", file=sys.stderr)
    doc = {"config": a.config, "seq": seq, "threads": a.threads, "attention_in_pytorch": a.attention, "pytorch": version,
           "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "blas_threads": int(blas),
           "pytorch_tokens_per_s": stats(torch_all)}
    if a.with_longspan:
        doc["longspan_tokens_per_s"] = stats(ls_all)
        doc["ratio_of_medians"] = statistics.median(ls_all) / statistics.median(torch_all)
        doc["ratio_per_round"] = per_round
    if a.json:
        print(json.dumps(doc))
    else:
        t = doc["pytorch_tokens_per_s"]
        print(f"PyTorch {version} ({a.threads} threads, BLAS {blas}): {t['median']:,.0f} tokens/s (min {t['min']:,.0f}, max {t['max']:,.0f})")
        if a.with_longspan:
            s = doc["longspan_tokens_per_s"]
            print(f"Longspan: {s['median']:,.0f} tokens/s (min {s['min']:,.0f}, max {s['max']:,.0f})")
            print(f"Longspan / PyTorch: {doc['ratio_of_medians']:.2f} (per round: {', '.join(f'{x:.2f}' for x in per_round)})")


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:
        print(f"bench-pytorch-train.py: {' '.join(e.cmd)} failed with exit code {e.returncode}", file=sys.stderr)
        sys.exit(1)
