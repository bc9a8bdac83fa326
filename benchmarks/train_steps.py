"""Whole training steps (forward + backward + Adam update, one compiled call in JAX) for four small models,
JAX (ours, ours fused, optax) beside torch eager (default and fused Adam) and ``torch.compile``.

The models are written twice, as plain JAX functions over a parameter dict and as ``torch.nn`` modules, with
the same shapes: an MLP, a small CNN (two conv + pool blocks, MNIST-sized), an LSTM classifier and a small
pre-norm transformer language model. "update share" is the time of the optimizer step alone (the same
parameters, jitted with donation in JAX; ``opt.step()`` in torch) over the whole step's time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

from benchmarks.timing import interleaved
from jaxopt_losses import losses as L
from jaxopt_losses import optim

nn = torch.nn
F = torch.nn.functional


# --------------------------------------------------------------------------------------------- models
def _dense(rng, fan_in, fan_out):
    bound = 1 / math.sqrt(fan_in)
    return {
        "w": rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
        "b": rng.uniform(-bound, bound, (fan_out,)).astype(np.float32),
    }


def _linear(p, x):
    return x @ p["w"].T + p["b"]


def mlp(quick: bool):
    width, batch = (128, 32) if quick else (1024, 128)
    rng = np.random.default_rng(0)
    params = {"l1": _dense(rng, 784, width), "l2": _dense(rng, width, width), "l3": _dense(rng, width, 10)}

    def loss(p, x, y):
        h = jax.nn.relu(_linear(p["l1"], x))
        h = jax.nn.relu(_linear(p["l2"], h))
        return L.cross_entropy(_linear(p["l3"], h), y)

    torch_model = nn.Sequential(
        nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10)
    )
    x = rng.standard_normal((batch, 784), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    return params, loss, torch_model, (x, y)


def cnn(quick: bool):
    batch = 16 if quick else 64
    rng = np.random.default_rng(0)

    def conv(cin, cout, k):
        bound = 1 / math.sqrt(cin * k * k)
        return {
            "w": rng.uniform(-bound, bound, (cout, cin, k, k)).astype(np.float32),
            "b": rng.uniform(-bound, bound, (cout,)).astype(np.float32),
        }

    params = {
        "c1": conv(1, 32, 3),
        "c2": conv(32, 64, 3),
        "f1": _dense(rng, 64 * 5 * 5, 128),
        "f2": _dense(rng, 128, 10),
    }

    def conv2d(p, x):
        y = jax.lax.conv_general_dilated(
            x, p["w"], (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")
        )
        return y + p["b"][None, :, None, None]

    def pool(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def loss(p, x, y):
        h = pool(jax.nn.relu(conv2d(p["c1"], x)))
        h = pool(jax.nn.relu(conv2d(p["c2"], h)))
        h = jax.nn.relu(_linear(p["f1"], h.reshape(h.shape[0], -1)))
        return L.cross_entropy(_linear(p["f2"], h), y)

    torch_model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip
    x = rng.standard_normal((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    return params, loss, torch_model, (x, y)


class _TorchLSTM(nn.Module):
    def __init__(self, d_in, hidden):
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def lstm(quick: bool):
    d_in, hidden, seq, batch = (16, 32, 10, 8) if quick else (32, 256, 50, 32)
    rng = np.random.default_rng(0)
    bound = 1 / math.sqrt(hidden)
    u = lambda *s: rng.uniform(-bound, bound, s).astype(np.float32)
    params = {
        "w_ih": u(4 * hidden, d_in),
        "w_hh": u(4 * hidden, hidden),
        "b_ih": u(4 * hidden),
        "b_hh": u(4 * hidden),
        "head": _dense(rng, hidden, 10),
    }

    def loss(p, x, y):
        def cell(carry, xt):
            h, c = carry
            gates = xt @ p["w_ih"].T + p["b_ih"] + h @ p["w_hh"].T + p["b_hh"]
            i, f, g, o = jnp.split(gates, 4, axis=-1)  # torch's gate order
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), None

        zeros = jnp.zeros((x.shape[0], hidden), x.dtype)
        (h, _), _ = jax.lax.scan(cell, (zeros, zeros), jnp.swapaxes(x, 0, 1))
        return L.cross_entropy(_linear(p["head"], h), y)

    x = rng.standard_normal((batch, seq, d_in), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    return params, loss, _TorchLSTM(d_in, hidden), (x, y)


class _TorchLM(nn.Module):
    def __init__(self, vocab, d, heads, layers, seq):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(seq, d))
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(seq))

    def forward(self, tokens):
        h = self.emb(tokens) + self.pos
        h = self.blocks(h, mask=self.mask, is_causal=True)
        return self.head(self.norm(h)).flatten(0, 1)


def transformer(quick: bool):
    vocab, d, heads, layers, seq, batch = (64, 32, 2, 1, 16, 4) if quick else (1000, 128, 4, 2, 64, 16)
    rng = np.random.default_rng(0)
    params = {
        "emb": rng.standard_normal((vocab, d)).astype(np.float32),
        "pos": np.zeros((seq, d), np.float32),
        "norm": {"g": np.ones(d, np.float32), "b": np.zeros(d, np.float32)},
        "head": _dense(rng, d, vocab),
        "blocks": [
            {
                "ln1": {"g": np.ones(d, np.float32), "b": np.zeros(d, np.float32)},
                "qkv": _dense(rng, d, 3 * d),
                "out": _dense(rng, d, d),
                "ln2": {"g": np.ones(d, np.float32), "b": np.zeros(d, np.float32)},
                "ff1": _dense(rng, d, 4 * d),
                "ff2": _dense(rng, 4 * d, d),
            }
            for _ in range(layers)
        ],
    }
    causal = np.tril(np.ones((seq, seq), bool))

    def layer_norm(p, x):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + 1e-5) * p["g"] + p["b"]

    def attention(p, x):
        b, s, _ = x.shape
        q, k, v = jnp.split(_linear(p["qkv"], x).reshape(b, s, 3 * heads, d // heads), 3, axis=2)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d // heads)
        weights = jax.nn.softmax(jnp.where(causal, logits, -jnp.inf), axis=-1)
        return _linear(p["out"], jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, s, d))

    def loss(p, tokens, targets):
        h = p["emb"][tokens] + p["pos"]
        for blk in p["blocks"]:
            h = h + attention(blk, layer_norm(blk["ln1"], h))
            h = h + _linear(blk["ff2"], jax.nn.relu(_linear(blk["ff1"], layer_norm(blk["ln2"], h))))
        logits = _linear(p["head"], layer_norm(p["norm"], h))
        return L.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))

    tokens = rng.integers(0, vocab, (batch, seq))
    targets = rng.integers(0, vocab, (batch, seq))
    return params, loss, _TorchLM(vocab, d, heads, layers, seq), (tokens, targets)


MODELS: dict[str, Callable[[bool], Any]] = {"MLP": mlp, "CNN": cnn, "LSTM": lstm, "transformer": transformer}


# --------------------------------------------------------------------------------------------- steppers
def _jax_train_step(loss_fn, tx, params, batch):
    """A stepper running one jitted forward+backward+update with donated params and state."""

    def step(params, state, *batch):
        value, grads = jax.value_and_grad(loss_fn)(params, *batch)
        params, state = optim.apply_step(tx, grads, state, params)
        return params, state, value

    params = jax.tree.map(jnp.asarray, params)
    batch = tuple(jnp.asarray(b) for b in batch)
    state = tx.init(params)
    jitted = jax.jit(step, donate_argnums=(0, 1))
    box = [params, state]

    def run():
        box[0], box[1], value = jitted(box[0], box[1], *batch)
        jax.block_until_ready(value)

    return run


def _jax_update_only(tx, params):
    params = jax.tree.map(jnp.asarray, params)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 1e-3), params)
    jitted = jax.jit(lambda p, s, g: optim.apply_step(tx, g, s, p), donate_argnums=(0, 1))
    box = [params, tx.init(params)]

    def run():
        box[0], box[1] = jitted(box[0], box[1], grads)
        jax.block_until_ready(box[0])

    return run


def _torch_train_step(model, batch, *, fused, compiled=False, device="cpu"):
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    forward = torch.compile(model) if compiled else model
    x, y = (torch.as_tensor(b, device=device) for b in batch)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x), y.flatten()).backward()
        opt.step()
        sync()

    def step():
        opt.step()
        sync()

    return run, step


def bench_train_steps(
    quick: bool, rounds: int, torch_compile: bool, device: str = "cpu"
) -> list[tuple[str, int, dict[str, float]]]:
    """``device`` is torch's ("cpu" or "cuda"); JAX runs on its default backend. ``ours fused`` (torch's
    fused CPU kernels) runs only on CPU."""
    rows = []
    for name, build in MODELS.items():
        params, loss_fn, torch_model, batch = build(quick)
        nparams = sum(np.size(p) for p in jax.tree.leaves(params))
        contenders = {
            "ours": _jax_train_step(loss_fn, optim.adam(lr=1e-3), params, batch),
            "optax": _jax_train_step(loss_fn, optax.adam(1e-3), params, batch),
            "ours update": _jax_update_only(optim.adam(lr=1e-3), params),
        }
        if device == "cpu":
            contenders["ours fused"] = _jax_train_step(
                loss_fn, optim.adam(lr=1e-3, fused=True), params, batch
            )
            contenders["ours fused update"] = _jax_update_only(optim.adam(lr=1e-3, fused=True), params)
        contenders["torch eager"], contenders["torch eager update"] = _torch_train_step(
            torch_model, batch, fused=None, device=device
        )
        contenders["torch eager fused"], contenders["torch fused update"] = _torch_train_step(
            torch_model, batch, fused=True, device=device
        )
        if torch_compile:
            t0 = time.perf_counter()
            run, _ = _torch_train_step(torch_model, batch, fused=True, compiled=True, device=device)
            try:
                run()  # compiles
                contenders["torch.compile + fused"] = run
            except Exception as e:  # noqa: BLE001 - a broken toolchain is reported, not fatal
                print(f"  torch.compile failed for {name}: {type(e).__name__}: {e}", flush=True)
            print(f"  torch.compile {name}: {time.perf_counter() - t0:.1f} s to compile", flush=True)
        times = interleaved(contenders, rounds)
        rows.append((name, nparams, times))
        print(
            f"  {name:12s} {nparams:>9,d} params: "
            + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in times.items())
        )
    return rows


def render_train_steps(rows, torch_compile: bool, title: str = "") -> list[str]:
    ms = lambda s: f"{s * 1e3:.2f}" if s is not None else "-"
    cols = ["ours", "ours fused", "optax", "torch eager", "torch eager fused"]
    if torch_compile:
        cols.append("torch.compile + fused")
    ratio = lambda a, b: f"{a / b:.2f}x" if a is not None and b is not None else "-"
    share = lambda a, b: f"{a / b:.0%}" if a is not None and b is not None else "-"
    lines = [
        f"## Whole training step{title}: forward + backward + Adam update (ms, median)",
        "",
        "One jitted call per step in JAX (params and state donated; `ours fused` = `adam(fused=True)`",
        "through `optim.apply_step`); torch: `zero_grad`, forward, `backward`, `opt.step()`",
        "(`torch.compile` compiles the model; its optimizer is fused Adam).",
        "Update share = the optimizer step alone / the whole step.",
        "",
        "| model | params | " + " | ".join(cols) + " | ours fused vs torch eager fused | update share ours "
        "| update share ours fused | update share torch fused |",
        "|---|---|" + "---|" * (len(cols) + 4),
    ]
    for name, nparams, t in rows:
        g = t.get
        lines.append(
            f"| {name} | {nparams:,} | "
            + " | ".join(ms(g(c)) for c in cols)
            + f" | {ratio(g('torch eager fused'), g('ours fused'))}"
            + f" | {share(g('ours update'), g('ours'))} | {share(g('ours fused update'), g('ours fused'))}"
            + f" | {share(g('torch fused update'), g('torch eager fused'))} |"
        )
    lines.append("")
    return lines
