"""One benchmark run: jaxopt_losses beside optax and PyTorch, measured in one process, interleaved.

    python -m benchmarks            # full run, writes benchmarks/RESULTS.md
    python -m benchmarks --quick    # small sizes, a smoke run (used by the test suite), writes nothing
    python -m benchmarks --fused-only --out FILE   # issue 18's sections alone: triad, fused=True against
                                    # torch fused (10M/100M, 1 and 200 tensors), whole training steps

Sections: memory bandwidth (STREAM-style triad, the roofline), the compiled structure of each optimizer
step (loop fusions = passes over memory per parameter tensor), optimizer steps (1M/10M/100M float32
parameters as 1 tensor and as 200 tensors; adam also with an XLA:CPU compiler option; sgd/adam/adamw also
with ``fused=True``, torch's fused CPU kernels run natively, against torch's own), whole training steps of
four small models (benchmarks/train_steps.py), the compat layer's step on a small model, loss
forward+backward (incl. ctc_loss and linear_cross_entropy), linear_cross_entropy peak memory, compile time
of a jitted train step, and on a CUDA machine a GPU section (triad, optimizer steps with achieved bandwidth,
training steps).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

import jaxopt_losses
from benchmarks.timing import interleaved
from benchmarks.train_steps import bench_train_steps, render_train_steps
from jaxopt_losses import losses as L
from jaxopt_losses import optim

RESULTS = Path(__file__).with_name("RESULTS.md")


# --------------------------------------------------------------------------------------------- machine
def machine_description() -> str:
    cpu = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()} {platform.machine()}; "
        f"Python {platform.python_version()}, jax {jax.__version__} ({jax.default_backend()}), "
        f"optax {optax.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}), "
        f"jaxopt_losses {jaxopt_losses.__version__}"
    )


# --------------------------------------------------------------------------------------------- roofline
def triad_bandwidth(n: int, rounds: int) -> dict[str, float]:
    """Bytes/s of a = b + s*c (2 reads, 1 write of n float32) in JAX (donated) and torch (out=)."""
    b, c = jnp.ones(n, jnp.float32), jnp.full(n, 0.5, jnp.float32)
    holder = [jnp.zeros(n, jnp.float32)]
    # keep_unused: an unused donated argument would be pruned and its buffer not reused for the output
    triad = jax.jit(lambda a, b, c: b + 3.0 * c, donate_argnums=0, keep_unused=True)

    def jax_triad():
        holder[0] = triad(holder[0], b, c)
        holder[0].block_until_ready()

    tb, tc, ta = torch.ones(n), torch.full((n,), 0.5), torch.empty(n)
    times = interleaved({"jax": jax_triad, "torch": lambda: torch.add(tb, tc, alpha=3.0, out=ta)}, rounds)
    return {k: 12 * n / t for k, t in times.items()}


# --------------------------------------------------------------------------------------------- optimizers
# name -> (ours, optax nearest, torch class, torch kwargs, bytes moved per parameter per step)
OPTIMIZERS = {
    "sgd(momentum=0.9)": (
        lambda: optim.sgd(lr=1e-3, momentum=0.9),
        lambda: optax.sgd(1e-3, momentum=0.9),
        torch.optim.SGD,
        {"lr": 1e-3, "momentum": 0.9},
        20,  # read p, g, buf; write p, buf
    ),
    "adam": (lambda: optim.adam(lr=1e-3), lambda: optax.adam(1e-3), torch.optim.Adam, {"lr": 1e-3}, 28),
    "adamw": (
        lambda: optim.adamw(lr=1e-3),
        lambda: optax.adamw(1e-3, weight_decay=1e-2),
        torch.optim.AdamW,
        {"lr": 1e-3},
        28,
    ),
    "rmsprop": (
        lambda: optim.rmsprop(lr=1e-2),
        lambda: optax.rmsprop(1e-2, decay=0.99, eps=1e-8),
        torch.optim.RMSprop,
        {"lr": 1e-2},
        20,
    ),
}
TORCH_FUSED = {torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.Adagrad}
# fused=True: torch's fused CPU kernels, natively through jax.ffi, stepped with optim.apply_step (in place).
OURS_FUSED = {
    "sgd(momentum=0.9)": lambda: optim.sgd(lr=1e-3, momentum=0.9, fused=True),
    "adam": lambda: optim.adam(lr=1e-3, fused=True),
    "adamw": lambda: optim.adamw(lr=1e-3, fused=True),
}
# An XLA:CPU option shown beside the default build for adam. It is passed per computation
# (``jax.jit(f).lower(...).compile(compiler_options=...)``); the library never sets global XLA_FLAGS.
XLA_VARIANT = ("ours, vector width 512", {"xla_cpu_prefer_vector_width": 512})


def _train_step(tx: optax.GradientTransformation):
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def _jax_stepper(tx: optax.GradientTransformation, params, grads, compiler_options=None):
    state = jax.jit(tx.init)(params)
    jitted = jax.jit(_train_step(tx), donate_argnums=(0, 1))
    step = jitted.lower(params, state, grads).compile(compiler_options=compiler_options)
    box = [params, state]

    def run():
        box[0], box[1] = step(box[0], box[1], grads)
        jax.block_until_ready(box[0])

    return run


def _jax_fused_stepper(tx: optax.GradientTransformation, params, grads):
    """``optim.apply_step`` jitted with donated params and state: the kernel writes them in place."""
    state = jax.jit(tx.init)(params)
    jitted = jax.jit(lambda p, s, g: optim.apply_step(tx, g, s, p), donate_argnums=(0, 1))
    box = [params, state]

    def run():
        box[0], box[1] = jitted(box[0], box[1], grads)
        jax.block_until_ready(box[0])

    return run


def _torch_stepper(cls, kwargs, shapes, **switches):
    ps = [torch.randn(s, requires_grad=True) for s in shapes]
    for p in ps:
        p.grad = torch.randn(s) * 1e-2 if (s := p.shape) else torch.randn(()) * 1e-2
    opt = cls(ps, **kwargs, **switches)
    return opt.step


def _shapes(total: int, tensors: int) -> list[tuple[int, ...]]:
    per = total // tensors
    return [(per,)] * tensors


def hlo_structure(text: str) -> dict[str, int]:
    """Counts in an optimized HLO module: loop fusions writing arrays (one pass over memory each) and copies
    of arrays (scalars, such as the step count, are not counted)."""
    entry = text[text.index("\nENTRY") :]
    array_fusions = re.findall(r"= \w+\[\d[\d,]*\]\S* fusion\(", entry)
    array_copies = re.findall(r"= \w+\[\d[\d,]*\]\S* copy\(", entry)
    return {"array_fusions": len(array_fusions), "copies": len(array_copies)}


def bench_structure(n: int = 1 << 16):
    """Passes over memory per parameter tensor: loop fusions writing an n-element array, ours vs optax."""
    rows = []
    params = [jnp.ones((n,), jnp.float32)]
    for name, (ours, nearest, _, _, _) in OPTIMIZERS.items():
        row = {}
        for who, factory in (("ours", ours), ("optax", nearest)):
            tx = factory()
            state = tx.init(params)
            jitted = jax.jit(_train_step(tx), donate_argnums=(0, 1))
            row[who] = hlo_structure(jitted.lower(params, state, params).compile().as_text())
        rows.append((name, row))
        print(f"  {name:18s} {row}", flush=True)
    return rows


def bench_optimizers(sizes, layouts, rounds, names=None, fused_only=False):
    """Every contender per (optimizer, size, layout), interleaved; ``fused_only``: only ``ours fused``,
    ``torch fused`` and ``ours`` (pure XLA), what the ``fused=True`` table shows (less memory and time at
    100M parameters, and no other contender's traffic between them)."""
    rows = []
    for name, (ours, nearest, cls, kwargs, nbytes) in OPTIMIZERS.items():
        if names is not None and name not in names:
            continue
        for total in sizes:
            for tensors in layouts:
                shapes = _shapes(total, tensors)
                rng = np.random.default_rng(0)
                params = [jnp.asarray(rng.standard_normal(s, dtype=np.float32)) for s in shapes]
                grads = [jnp.asarray(1e-2 * rng.standard_normal(s, dtype=np.float32)) for s in shapes]
                contenders = {"ours": _jax_stepper(ours(), params, grads)}
                if not fused_only:
                    contenders["optax"] = _jax_stepper(nearest(), [p.copy() for p in params], grads)
                    contenders["torch default"] = _torch_stepper(cls, kwargs, shapes)
                    contenders["torch foreach"] = _torch_stepper(cls, kwargs, shapes, foreach=True)
                if cls in TORCH_FUSED:
                    contenders["torch fused"] = _torch_stepper(cls, kwargs, shapes, fused=True)
                if name in OURS_FUSED:
                    contenders["ours fused"] = _jax_fused_stepper(
                        OURS_FUSED[name](), [p.copy() for p in params], grads
                    )
                if name == "adam" and not fused_only:
                    label, options = XLA_VARIANT
                    contenders[label] = _jax_stepper(ours(), [p.copy() for p in params], grads, options)
                cpu = {}
                times = interleaved(contenders, rounds, cpu=cpu)
                times["ours cores"] = cpu["ours"] / times["ours"]
                if "ours fused" in times:
                    times["ours fused cores"] = cpu["ours fused"] / times["ours fused"]
                rows.append((name, total, tensors, times, nbytes * total))
                del contenders, params, grads
                print(
                    f"  {name:18s} {total:>11,d} params x {tensors:3d} tensors: "
                    + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in times.items() if "cores" not in k)
                    + f", ours cores {times['ours cores']:.2f}",
                    flush=True,
                )
    return rows


# --------------------------------------------------------------------------------------------- compat
def bench_compat(rounds):
    from jaxopt_losses.compat import optim as compat_optim

    rng = np.random.default_rng(0)
    # ~100k parameters in 24 tensors: 12 (weight, bias) layers
    shapes = []
    for _ in range(12):
        shapes += [(90, 90), (90,)]
    arrays = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    grads = [jnp.asarray(1e-2 * rng.standard_normal(s, dtype=np.float32)) for s in shapes]
    ours = compat_optim.Adam([jnp.asarray(a) for a in arrays], lr=1e-3)
    raw = _jax_stepper(optim.adam(lr=1e-3), [jnp.asarray(a) for a in arrays], grads)
    tps = [torch.tensor(a, requires_grad=True) for a in arrays]
    for p, g in zip(tps, grads, strict=True):
        p.grad = torch.tensor(np.asarray(g))
    topt = torch.optim.Adam(tps, lr=1e-3)

    def compat_step():
        ours.step(grads)
        jax.block_until_ready(ours.params)

    times = interleaved(
        {"compat .step(grads)": compat_step, "raw jitted step": raw, "torch Adam.step()": topt.step}, rounds
    )
    return sum(a.size for a in arrays), times


# --------------------------------------------------------------------------------------------- losses
def bench_losses(quick, rounds):
    """value_and_grad of each loss w.r.t. its differentiable inputs, jitted; targets and lengths are
    passed as arguments (as in a train step), not closed over: a closed-over target is a compile-time
    constant, which lets XLA fold index masks into parameter-sized constants and skews the timing."""
    rng = np.random.default_rng(0)
    n, c = (256, 512) if quick else (4096, 8192)
    logits = rng.standard_normal((n, c), dtype=np.float32)
    labels = rng.integers(0, c, n)
    x = rng.standard_normal((n, 256), dtype=np.float32)
    y = rng.standard_normal((n, 256), dtype=np.float32)
    yb = (rng.random((n, 256)) > 0.5).astype(np.float32)
    t_len, batch, classes, s_len = (50, 8, 20, 10) if quick else (200, 32, 40, 40)
    lp = rng.standard_normal((t_len, batch, classes), dtype=np.float32)
    tgt = rng.integers(1, classes, (batch, s_len))
    in_len = np.full(batch, t_len)
    tg_len = rng.integers(s_len // 2, s_len + 1, batch)
    pad = (np.arange(s_len)[None, :] >= tg_len[:, None]).astype(np.float32)
    ln, ld, lc = (128, 64, 2048) if quick else (1024, 512, 32768)
    lx = rng.standard_normal((ln, ld), dtype=np.float32)
    lw = 0.02 * rng.standard_normal((lc, ld), dtype=np.float32)
    lt = rng.integers(0, lc, ln)
    F = torch.nn.functional

    def ctc_optax(a, tgt, tg_len, pad):
        per_seq = optax.ctc_loss(jnp.swapaxes(a, 0, 1), jnp.zeros(a.shape[1::-1]), tgt, pad)
        return (per_seq / tg_len).mean()

    # name: (ours, optax nearest, torch, differentiable inputs, other inputs)
    cases = {
        f"cross_entropy {n}x{c}": (
            L.cross_entropy,
            lambda a, t: optax.softmax_cross_entropy_with_integer_labels(a, t).mean(),
            F.cross_entropy,
            (logits,),
            (labels,),
        ),
        f"binary_cross_entropy_with_logits {n}x256": (
            L.binary_cross_entropy_with_logits,
            lambda a, t: optax.sigmoid_binary_cross_entropy(a, t).mean(),
            F.binary_cross_entropy_with_logits,
            (x,),
            (yb,),
        ),
        f"mse_loss {n}x256": (
            L.mse_loss,
            lambda a, t: (2.0 * optax.l2_loss(a, t)).mean(),
            F.mse_loss,
            (x,),
            (y,),
        ),
        f"huber_loss {n}x256": (
            L.huber_loss,
            lambda a, t: optax.huber_loss(a, t).mean(),
            F.huber_loss,
            (x,),
            (y,),
        ),
        f"ctc_loss T={t_len} N={batch} C={classes} S={s_len}": (
            lambda a, tgt, il, tl, _: L.ctc_loss(jax.nn.log_softmax(a, -1), tgt, il, tl),
            lambda a, tgt, il, tl, pad: ctc_optax(a, tgt, tl, pad),
            lambda a, tgt, il, tl, _: F.ctc_loss(a.log_softmax(-1), tgt, il, tl),
            (lp,),
            (tgt, in_len, tg_len, pad),
        ),
        # gradients w.r.t. input and weight; optax has no fused form: its nearest is the naive
        # softmax_cross_entropy_with_integer_labels(x @ W.T, t)
        f"linear_cross_entropy N={ln} D={ld} C={lc}": (
            L.linear_cross_entropy,
            lambda a, w, t: optax.softmax_cross_entropy_with_integer_labels(a @ w.T, t).mean(),
            F.linear_cross_entropy,
            (lx, lw),
            (lt,),
        ),
    }
    rows = []
    for name, (ours, nearest, theirs, diff, other) in cases.items():
        args = tuple(jnp.asarray(v) for v in diff + other)
        argnums = tuple(range(len(diff)))
        g_ours = jax.jit(jax.value_and_grad(ours, argnums=argnums))
        g_opt = jax.jit(jax.value_and_grad(nearest, argnums=argnums))
        t_diff = tuple(torch.tensor(v, requires_grad=True) for v in diff)
        t_other = tuple(torch.as_tensor(v) for v in other)

        def torch_fb(t_diff=t_diff, t_other=t_other, theirs=theirs):
            for t in t_diff:
                t.grad = None
            theirs(*t_diff, *t_other).backward()

        times = interleaved(
            {
                "ours": lambda g=g_ours, a=args: jax.block_until_ready(g(*a)),
                "optax": lambda g=g_opt, a=args: jax.block_until_ready(g(*a)),
                "torch": torch_fb,
            },
            rounds,
        )
        rows.append((name, times))
        print(f"  {name:45s} " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in times.items()), flush=True)
    return rows


def bench_linear_cross_entropy(quick):
    """Peak temporary memory (XLA's compiled memory analysis) and time of value+grad, ours vs naive."""
    n, d, c = (256, 64, 16384) if quick else (2048, 512, 65536)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((n, d), dtype=np.float32))
    w = jnp.asarray(0.02 * rng.standard_normal((c, d), dtype=np.float32))
    t = jnp.asarray(rng.integers(0, c, n))

    def naive(x, w):
        return L.cross_entropy(x @ w.T, t)

    def fused(x, w):
        return L.linear_cross_entropy(x, w, t)

    out = {}
    fns = {}
    for name, fn in (("naive", naive), ("linear_cross_entropy", fused)):
        g = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))
        compiled = g.lower(x, w).compile()
        mem = compiled.memory_analysis()
        out[name] = {"temp_bytes": mem.temp_size_in_bytes}
        fns[name] = lambda g=g: jax.block_until_ready(g(x, w))
    times = interleaved(fns, 3 if quick else 5, warmup=1)
    for name in out:
        out[name]["seconds"] = times[name]
    return (n, d, c), out


# --------------------------------------------------------------------------------------------- compile
def bench_compile(quick):
    """Wall time to trace+compile a jitted train step of a 100-tensor MLP, ours vs optax (fresh closures)."""
    rng = np.random.default_rng(0)
    width = 32 if quick else 64
    params = [jnp.asarray(0.1 * rng.standard_normal((width, width), dtype=np.float32)) for _ in range(50)]
    params += [jnp.zeros((width,), jnp.float32) for _ in range(50)]
    x = jnp.asarray(rng.standard_normal((16, width), dtype=np.float32))

    def loss_fn(ps):
        h = x
        for w, b in zip(ps[:50], ps[50:], strict=True):
            h = jnp.tanh(h @ w + b)
        return jnp.mean(h**2)

    def make(tx):
        def step(ps, st):
            g = jax.grad(loss_fn)(ps)
            u, st = tx.update(g, st, ps)
            return optax.apply_updates(ps, u), st

        return jax.jit(step), tx.init(params)

    res = {}
    reps = 1 if quick else 3
    for name, factory in (
        ("ours adam", lambda: optim.adam(lr=1e-3)),
        ("optax adam", lambda: optax.adam(1e-3)),
    ):
        ts = []
        for _ in range(reps):
            step, st = make(factory())
            t0 = time.perf_counter()
            step.lower(params, st).compile()
            ts.append(time.perf_counter() - t0)
        res[name] = float(np.median(ts))
    return res


# --------------------------------------------------------------------------------------------- report
def _ms(s):
    return f"{s * 1e3:.2f}"


def render_fused(opt_rows, best_bw) -> list[str]:
    lines = [
        "## `fused=True` against torch's `fused=True` (ms, median)",
        "",
        "`ours fused`: `fused=True`, torch's fused CPU kernel run natively through `jax.ffi` (one call for",
        "all the tensors), stepped with `optim.apply_step` (parameters and state updated in place;",
        "bit-identical to torch's fused step), jitted with donated parameters and state. GB/s = bytes the",
        "update must move (sgd 20, adam/adamw 28 per parameter) / time; roofline = that / the best triad",
        "bandwidth. At 200 tensors each JAX call also dispatches ~1,000 arrays (parameters, gradients,",
        "state in; parameters, state out), which a compiled train step does not.",
        "",
        "| optimizer | params | tensors | ours fused | torch fused | ours (XLA) | fused vs torch fused "
        "| fused vs ours (XLA) | GB/s fused | GB/s torch fused | roofline fused | roofline torch fused "
        "| cores fused |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, total, tensors, t, nbytes in opt_rows:
        if "ours fused" not in t:
            continue
        f, tf = t["ours fused"], t["torch fused"]
        lines.append(
            f"| {name} | {total:,} | {tensors} | {_ms(f)} | {_ms(tf)} | {_ms(t['ours'])} | {tf / f:.2f}x "
            f"| {t['ours'] / f:.2f}x | {nbytes / f / 1e9:.1f} | {nbytes / tf / 1e9:.1f} "
            f"| {nbytes / best_bw / f:.2f} | {nbytes / best_bw / tf:.2f} | {t['ours fused cores']:.2f} |"
        )
    return lines + [""]


def render_gpu(gpu) -> list[str]:
    lines = ["## GPU", ""]
    if gpu is None:
        return lines + [
            "Not measured in this run: it needs a CUDA device visible to both JAX and torch. On such a",
            "machine `python -m benchmarks` fills in this section (device triad bandwidth, optimizer steps",
            "with achieved bandwidth against it, and the whole-training-step table). `fused=True` is",
            "CPU-only: on GPU XLA fuses the update itself.",
            "",
        ]
    device, bw, rows, train_rows = gpu
    best = max(bw.values())
    lines += [
        f"Device: {device}. Triad bandwidth: "
        + ", ".join(f"{k} {v / 1e9:.0f} GB/s" for k, v in bw.items())
        + " (the achieved peak used below).",
        "",
        "| optimizer | params | tensors | ours (XLA) | torch fused | ours GB/s | torch fused GB/s "
        "| ours / peak | torch fused / peak |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, total, tensors, t, nbytes in rows:
        o, tf = t["ours"], t["torch fused"]
        lines.append(
            f"| {name} | {total:,} | {tensors} | {_ms(o)} | {_ms(tf)} | {nbytes / o / 1e9:.0f} "
            f"| {nbytes / tf / 1e9:.0f} | {nbytes / o / best:.2f} | {nbytes / tf / best:.2f} |"
        )
    return lines + [""] + render_train_steps(train_rows, torch_compile=False, title=" on GPU")


def bench_gpu(quick, rounds):
    """The GPU section, or None without a CUDA device visible to both JAX and torch."""
    if not (torch.cuda.is_available() and jax.default_backend() == "gpu"):
        return None
    n = 1_000_000 if quick else 100_000_000
    b, c = jnp.ones(n), jnp.full(n, 0.5)
    holder = [jnp.zeros(n)]
    triad = jax.jit(lambda a, b, c: b + 3.0 * c, donate_argnums=0, keep_unused=True)
    tb, tc, ta = (
        torch.ones(n, device="cuda"),
        torch.full((n,), 0.5, device="cuda"),
        torch.empty(n, device="cuda"),
    )

    def jax_triad():
        holder[0] = triad(holder[0], b, c)
        holder[0].block_until_ready()

    def torch_triad():
        torch.add(tb, tc, alpha=3.0, out=ta)
        torch.cuda.synchronize()

    bw = {k: 12 * n / t for k, t in interleaved({"jax": jax_triad, "torch": torch_triad}, rounds).items()}
    rows = []
    for name in ("adam", "adamw", "sgd(momentum=0.9)"):
        ours, _, cls, kwargs, nbytes = OPTIMIZERS[name]
        for total in [1_000_000] if quick else [10_000_000, 100_000_000]:
            for tensors in (1, 200):
                shapes = _shapes(total, tensors)
                params = [jnp.ones(s) for s in shapes]
                grads = [jnp.full(s, 1e-2) for s in shapes]
                ps = [torch.ones(s, device="cuda", requires_grad=True) for s in shapes]
                for p in ps:
                    p.grad = torch.full_like(p, 1e-2)
                opt = cls(ps, **kwargs, fused=True)

                def torch_step(opt=opt):
                    opt.step()
                    torch.cuda.synchronize()

                times = interleaved(
                    {"ours": _jax_stepper(ours(), params, grads), "torch fused": torch_step}, rounds
                )
                rows.append((name, total, tensors, times, nbytes * total))
    train_rows = bench_train_steps(quick, rounds, torch_compile=False, device="cuda")
    return torch.cuda.get_device_name(), bw, rows, train_rows


def render(
    machine, bw, structure, opt_rows, compat, loss_rows, lce, compile_times, train=None, gpu=None, load=""
) -> str:
    best_bw = max(bw.values())
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine}",
        "",
        *([f"Load: {load}", ""] if load else []),
        "Produced by `python -m benchmarks` (one process; contenders interleaved round by round; medians).",
        "JAX steps are jitted with donated parameter and state buffers, as a training loop runs them.",
        "",
        "## Memory bandwidth (STREAM-style triad a = b + s*c, float32)",
        "",
        "| implementation | GB/s |",
        "|---|---|",
        *[f"| {k} | {v / 1e9:.1f} |" for k, v in bw.items()],
        "",
        f"Roofline below uses the best triad bandwidth, {best_bw / 1e9:.1f} GB/s.",
        "",
        "## Compiled structure of one step on one float32 tensor",
        "",
        "Loop fusions that write a whole parameter-sized array: each is one pass over memory. XLA:CPU has",
        "no multi-output fusion, so every updated array (parameter, each state buffer) is its own pass;",
        "torch's fused kernels update everything in one pass. Copies would be extra passes (0 = donation",
        "updates in place).",
        "",
        "| optimizer | ours passes | ours copies | optax passes | optax copies |",
        "|---|---|---|---|---|",
        *[
            f"| {name} | {r['ours']['array_fusions']} | {r['ours']['copies']} "
            f"| {r['optax']['array_fusions']} | {r['optax']['copies']} |"
            for name, r in structure
        ],
        "",
        "## Optimizer step time (ms, median)",
        "",
        "Ratios > 1 mean ours is faster. Roofline = (bytes the update must move / best triad bandwidth)"
        " / our time. Cores = our CPU time / wall time. "
        f"`{XLA_VARIANT[0]}`: ours compiled with `compiler_options={XLA_VARIANT[1]}`.",
        "",
        "| optimizer | params | tensors | ours | optax | torch default | torch foreach | torch fused "
        f"| {XLA_VARIANT[0]} | vs optax | vs torch fused (or best torch) | roofline | cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, total, tensors, t, nbytes in opt_rows:
        best_torch = t.get("torch fused", min(t["torch default"], t["torch foreach"]))
        variant = t.get(XLA_VARIANT[0])
        lines.append(
            f"| {name} | {total:,} | {tensors} | {_ms(t['ours'])} | {_ms(t['optax'])} "
            f"| {_ms(t['torch default'])} "
            f"| {_ms(t['torch foreach'])} | {_ms(t['torch fused']) if 'torch fused' in t else '-'} "
            f"| {_ms(variant) if variant is not None else '-'} "
            f"| {t['optax'] / t['ours']:.2f}x | {best_torch / t['ours']:.2f}x "
            f"| {nbytes / best_bw / t['ours']:.2f} | {t['ours cores']:.2f} |"
        )
    lines += ["", *render_fused(opt_rows, best_bw)]
    if train is not None:
        train_rows, torch_compile = train
        lines += render_train_steps(train_rows, torch_compile)
    nparams, ct = compat
    lines += [
        "",
        f"## compat layer: `Adam.step(grads)` on a 24-tensor, {nparams:,}-parameter model (ms, median)",
        "",
        "| contender | ms | torch eager / this |",
        "|---|---|---|",
        *[f"| {k} | {_ms(v)} | {ct['torch Adam.step()'] / v:.2f}x |" for k, v in ct.items()],
        "",
        "## Loss forward + backward (ms, median)",
        "",
        "| loss | ours | optax nearest | torch | vs optax | vs torch |",
        "|---|---|---|---|---|---|",
        *[
            f"| {name} | {_ms(t['ours'])} | {_ms(t['optax'])} | {_ms(t['torch'])} "
            f"| {t['optax'] / t['ours']:.2f}x | {t['torch'] / t['ours']:.2f}x |"
            for name, t in loss_rows
        ],
    ]
    (n, d, c), res = lce
    lce_ratio = res["linear_cross_entropy"]["temp_bytes"] / res["naive"]["temp_bytes"]
    lines += [
        "",
        f"## linear_cross_entropy vs naive `cross_entropy(x @ W.T, t)`, value+grad, N={n}, D={d}, C={c}",
        "",
        "| form | XLA temp memory (MiB) | ms |",
        "|---|---|---|",
        *[f"| {k} | {v['temp_bytes'] / 2**20:.1f} | {_ms(v['seconds'])} |" for k, v in res.items()],
        "",
        f"Peak temporary memory ratio: {lce_ratio:.1%} of naive.",
        "",
        "## Compile time of a jitted train step (100-tensor MLP), seconds",
        "",
        "| optimizer | s |",
        "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in compile_times.items()],
        "",
        *render_gpu(gpu),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few rounds; writes nothing")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds per contender")
    parser.add_argument("--out", type=Path, default=None, help="where to write the Markdown report")
    parser.add_argument("--no-torch-compile", action="store_true", help="skip torch.compile in train steps")
    parser.add_argument(
        "--fused-only",
        action="store_true",
        help="only the triad, fused=True vs torch fused (10M/100M) and the train steps; prints, writes --out",
    )
    parser.add_argument(
        "--compat-models",
        action="store_true",
        help="only the compat.nn models' training steps vs torch eager (benchmarks/compat_models.py); prints",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    rounds = args.rounds or (3 if quick else 15)
    machine = machine_description()
    print(machine, flush=True)
    if args.compat_models:
        from benchmarks.compat_models import bench_compat_models, render_compat_models

        print("\n".join(render_compat_models(bench_compat_models(quick, rounds))))
        return None
    if args.fused_only:
        return _fused_only(args, quick, rounds, machine)
    print("triad bandwidth", flush=True)
    bw = triad_bandwidth(1_000_000 if quick else 50_000_000, rounds)
    print("compiled structure", flush=True)
    structure = bench_structure()
    print("optimizer steps", flush=True)
    sizes = [100_000] if quick else [1_000_000, 10_000_000, 100_000_000]
    opt_rows = bench_optimizers(sizes, [1, 20] if quick else [1, 200], rounds)
    print("train steps", flush=True)
    torch_compile = not (quick or args.no_torch_compile)
    train = (bench_train_steps(quick, rounds, torch_compile), torch_compile)
    print("compat step", flush=True)
    compat = bench_compat(rounds * 4)
    print("losses", flush=True)
    loss_rows = bench_losses(quick, rounds)
    print("linear_cross_entropy memory", flush=True)
    lce = bench_linear_cross_entropy(quick)
    print("compile time", flush=True)
    compile_times = bench_compile(quick)
    print("gpu", flush=True)
    gpu = bench_gpu(quick, rounds)
    load = f"load average {os.getloadavg()[0]:.1f} at the end of the run ({os.cpu_count()} cores)"
    report = render(machine, bw, structure, opt_rows, compat, loss_rows, lce, compile_times, train, gpu, load)
    print(report)
    out = args.out if args.out is not None else (None if quick else RESULTS)
    if out is not None:
        out.write_text(report)
        print(f"wrote {out}", file=sys.stderr)


def _fused_only(args, quick, rounds, machine) -> None:
    """The sections of issue 18 alone (a shorter run on a loaded machine): triad, fused steps, train steps."""
    load0 = os.getloadavg()[0]
    bw = triad_bandwidth(1_000_000 if quick else 50_000_000, rounds)
    sizes = [100_000] if quick else [10_000_000, 100_000_000]
    opt_rows = bench_optimizers(
        sizes, [1, 20] if quick else [1, 200], rounds, names=set(OURS_FUSED), fused_only=True
    )
    torch_compile = not (quick or args.no_torch_compile)
    train_rows = bench_train_steps(quick, rounds, torch_compile)
    best = max(bw.values())
    lines = [
        f"Machine: {machine}",
        "",
        f"Load average {load0:.1f} at the start and {os.getloadavg()[0]:.1f} at the end of this run "
        f"({os.cpu_count()} cores). Triad: " + ", ".join(f"{k} {v / 1e9:.1f} GB/s" for k, v in bw.items()),
        "",
        *render_fused(opt_rows, best),
        *render_train_steps(train_rows, torch_compile),
    ]
    report = "\n".join(lines)
    print(report)
    if args.out is not None:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
