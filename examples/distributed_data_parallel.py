"""Multi-process data-parallel training with a jaxopt_losses optimizer, checked against one process.

Run ``python examples/distributed_data_parallel.py`` (launcher mode): it starts ``--num-processes``
(default 2) copies of itself on 127.0.0.1 that call ``jax.distributed.initialize`` and train one model
together, each on its own part of every batch; XLA sums the gradients across processes (CPU collectives
over gloo). Every worker also trains the same model on the full batches alone and checks that both agree;
worker 0 writes ``ddp_result.json`` to ``--out`` (when given). All sockets are on loopback; the launcher kills
the workers after ``--timeout`` seconds.

On a multi-host GPU/TPU cluster the worker code is unchanged: start one process per host (SLURM, Open MPI
and Cloud TPU are detected by a bare ``jax.distributed.initialize()``; otherwise pass the coordinator's
address, the process count and this process's id), drop the CPU-only settings (``JAX_PLATFORMS``, the
virtual device count, gloo), and each process feeds its local shard of every batch; ``jax.devices()`` then
spans all hosts and the gradients are reduced over NCCL/ICI.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: argparse.Namespace) -> int:
    """Start the workers, wait for them (bounded by ``args.timeout``), print their output."""
    addr = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.local_devices}"
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--coordinator", addr]
    cmd += ["--num-processes", str(args.num_processes), "--steps", str(args.steps)]
    cmd += ["--local-devices", str(args.local_devices)] + (["--out", args.out] if args.out else [])
    procs = [
        subprocess.Popen(
            [*cmd, "--process-id", str(i)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for i in range(args.num_processes)
    ]
    deadline = time.monotonic() + args.timeout
    codes = []
    for i, p in enumerate(procs):
        try:
            out, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            out, _ = p.communicate()
            print(f"[launcher] worker {i} timed out after {args.timeout}s", flush=True)
        codes.append(p.returncode)
        print(out.decode(errors="replace"), end="", flush=True)
    print(f"[launcher] exit codes {codes}", flush=True)
    return 0 if all(c == 0 for c in codes) else 1


def worker(args: argparse.Namespace) -> int:
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # the default on CPU; explicit here
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
        initialization_timeout=60,
    )
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from jaxopt_losses import optim
    from jaxopt_losses.losses import cross_entropy

    pid, n_proc = jax.process_index(), jax.process_count()
    mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    replicated, by_row = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))

    # The same data and initial parameters in every process (seeded); each feeds only its rows.
    rng = np.random.default_rng(0)
    batch = 8 * jax.device_count()
    xs = rng.standard_normal((args.steps, batch, 20)).astype(np.float32)
    w_true = rng.standard_normal((20, 5)).astype(np.float32)
    ys = np.argmax(xs @ w_true, -1).astype(np.int32)
    params0 = {
        "w1": (rng.standard_normal((20, 32)) / 4).astype(np.float32),
        "b1": np.zeros(32, np.float32),
        "w2": (rng.standard_normal((32, 5)) / 6).astype(np.float32),
    }
    tx = optim.adamw(1e-2, weight_decay=1e-2, amsgrad=True)

    def loss_fn(p, x, y):
        return cross_entropy(jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"], y)

    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    # Data parallel over every device of every process: parameters and state replicated, batch split.
    rows = slice(pid * batch // n_proc, (pid + 1) * batch // n_proc)
    params = jax.tree.map(lambda a: jax.make_array_from_process_local_data(replicated, a), params0)
    state = jax.jit(tx.init)(params)
    dp_step = jax.jit(step, out_shardings=(replicated, replicated, replicated))
    for t in range(args.steps):
        x = jax.make_array_from_process_local_data(by_row, xs[t, rows], (batch, 20))
        y = jax.make_array_from_process_local_data(by_row, ys[t, rows], (batch,))
        params, state, loss = dp_step(params, state, x, y)
    dp = {k: np.asarray(v.addressable_data(0)) for k, v in params.items()}
    dp_loss = float(np.asarray(loss.addressable_data(0)))

    # Reference: this process alone on its first local device, full batches.
    dev = jax.local_devices()[0]
    p1 = jax.device_put(params0, dev)
    s1 = jax.jit(tx.init)(p1)
    local_step = jax.jit(step)
    for t in range(args.steps):
        p1, s1, loss1 = local_step(p1, s1, jax.device_put(xs[t], dev), jax.device_put(ys[t], dev))
    ref = {k: np.asarray(v) for k, v in p1.items()}

    max_diff = max(float(np.max(np.abs(dp[k] - ref[k]))) for k in ref)
    moved = max(float(np.max(np.abs(ref[k] - params0[k]))) for k in ref)
    ok = max_diff <= 1e-5 and moved > 1e-2
    result = {
        "process": pid,
        "processes": n_proc,
        "global_devices": jax.device_count(),
        "steps": args.steps,
        "final_loss": dp_loss,
        "single_process_final_loss": float(loss1),
        "max_abs_diff_vs_single_process": max_diff,
        "ok": ok,
    }
    print(f"[worker {pid}] " + json.dumps(result), flush=True)
    if pid == 0 and args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "ddp_result.json"), "w") as f:
            json.dump(result, f)
    jax.distributed.shutdown()
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-processes", type=int, default=2)
    parser.add_argument("--local-devices", type=int, default=2, help="virtual CPU devices per process")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="launcher: seconds before killing workers"
    )
    parser.add_argument("--out", default=None, help="folder for ddp_result.json (written by worker 0)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--coordinator", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return worker(args) if args.worker else launch(args)


if __name__ == "__main__":
    sys.exit(main())
