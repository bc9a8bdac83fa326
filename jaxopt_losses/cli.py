"""The ``jaxopt-losses`` command.

``jaxopt-losses compare`` answers two questions with one run: which optimizer and which loss work best on
small real datasets (scikit-learn's digits, breast_cancer and diabetes), and whether jaxopt_losses trains
exactly like PyTorch (same model, same initial weights, same minibatches, compared step by step).

Example::

    $ jaxopt-losses compare --quick                      # 3 epochs, one loss per dataset (CI)
    $ jaxopt-losses compare                              # the article's SGD, momentum, Adam, RMSprop
    $ jaxopt-losses compare --optimizers adamw,nadam --scheduler steplr --step-size 5 --gamma 0.5 \
          --clip-grad-norm 1.0 --weight-decay 1e-4 --out runs/cmp

Each run trains in JAX with a jitted step built from ``jaxopt_losses.losses``, ``jaxopt_losses.optim``,
``jaxopt_losses.schedules`` and ``jaxopt_losses.clip``, and, when torch is installed, in PyTorch with
``torch.optim``, ``torch.nn.functional``, ``torch.optim.lr_scheduler`` and ``clip_grad_norm_``. The command
prints a table (final losses, accuracy / R², steps per second in each framework, largest parameter and
loss deviation between the frameworks), and writes ``loss_curves.png`` and ``results.json`` into ``--out``.
Without torch it runs JAX alone (also with ``--no-torch`` or ``JAXOPT_LOSSES_NO_TORCH=1``); without rich it
prints plain text; without matplotlib it skips the PNG. Argument errors exit with status 2, a missing
scikit-learn with 1, and ``--fail-above TOL`` exits with 1 when a parameter deviates by more than ``TOL``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

from jaxopt_losses._compare.registry import (
    DATASETS,
    DEFAULT_OPTIMIZERS,
    LOSSES,
    NOT_COMPARED,
    OPTIMIZERS,
    SCHEDULERS,
)

QUICK_EPOCHS = 3
DEFAULT_EPOCHS = 20
NO_TORCH_ENV = "JAXOPT_LOSSES_NO_TORCH"


def _names(parser: argparse.ArgumentParser, value: str | None, valid, what: str) -> list[str] | None:
    """Split a comma-separated list and check every name; ``all`` selects every valid name."""
    if value is None:
        return None
    names = [v.strip().lower().replace("-", "_") for v in value.split(",") if v.strip()]
    if names == ["all"]:
        return list(valid)
    if not names:
        parser.error(f"--{what} needs at least one name (valid: {', '.join(valid)})")
    for n in names:
        if n not in valid:
            hint = f" ({NOT_COMPARED[n]})" if n in NOT_COMPARED else ""
            singular = {"losses": "loss"}.get(what, what[:-1])
            parser.error(f"unknown {singular} {n!r}{hint}; valid {what}: {', '.join(valid)}")
    return list(dict.fromkeys(names))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("must be > 0, got 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxopt-losses", description="PyTorch's optimizers and losses for JAX: command-line tools."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    p = sub.add_parser(
        "compare",
        help="train small models in JAX and PyTorch side by side; table, PNG and results.json",
        description=(
            "Train an MLP on scikit-learn's bundled datasets with several optimizers and losses, in JAX "
            "through jaxopt_losses and (when installed) in PyTorch from the same initial weights and the "
            "same minibatch order; report final losses, accuracy / R^2, speed and the largest deviation "
            "between the frameworks. No network access is needed."
        ),
    )
    p.set_defaults(subparser=p)
    p.add_argument("--datasets", help=f"comma-separated, or 'all' [{','.join(DATASETS)}] (default: all)")
    p.add_argument(
        "--losses",
        help=f"comma-separated, or 'all'; each dataset uses those that fit its task [{','.join(LOSSES)}] "
        "(default: digits cross_entropy, breast_cancer bce_with_logits,bce, diabetes mse,huber)",
    )
    p.add_argument(
        "--optimizers",
        help=f"comma-separated, or 'all' [{','.join(OPTIMIZERS)}] (default: {','.join(DEFAULT_OPTIMIZERS)})",
    )
    p.add_argument(
        "--epochs", type=_positive_int, help=f"default {DEFAULT_EPOCHS}, {QUICK_EPOCHS} with --quick"
    )
    p.add_argument("--batch-size", type=_positive_int, default=32, help="(default: %(default)s)")
    p.add_argument(
        "--lr", type=_non_negative_float, help="learning rate for every optimizer (default: per optimizer)"
    )
    p.add_argument("--weight-decay", type=_non_negative_float, help="default: each optimizer's torch default")
    p.add_argument(
        "--clip-grad-norm", type=_positive_float, metavar="MAX_NORM", help="clip the gradients' 2-norm"
    )
    p.add_argument(
        "--scheduler", default="none", choices=SCHEDULERS, help="epoch-wise LR schedule (default: none)"
    )
    p.add_argument(
        "--step-size", type=_positive_int, default=10, help="steplr: epochs per decay (default: 10)"
    )
    p.add_argument(
        "--gamma", type=_non_negative_float, default=0.1, help="steplr / exponential: decay (default: 0.1)"
    )
    p.add_argument("--t-max", type=_positive_int, help="cosine: half period in epochs (default: --epochs)")
    p.add_argument("--eta-min", type=_non_negative_float, default=0.0, help="cosine: minimum LR (default: 0)")
    p.add_argument("--seed", type=int, default=0, help="split, weights, minibatch order (default: 0)")
    p.add_argument("--out", type=Path, help="output folder (default: ./compare-YYYYmmdd-HHMMSS)")
    p.add_argument(
        "--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs and one loss per dataset (for CI)"
    )
    p.add_argument(
        "--no-torch",
        action="store_true",
        help=f"JAX only, even when PyTorch is installed (also: {NO_TORCH_ENV}=1)",
    )
    p.add_argument(
        "--fail-above",
        type=_positive_float,
        metavar="TOL",
        help="exit with status 1 when a parameter deviates from PyTorch by more than TOL",
    )
    return parser


def _configs(parser: argparse.ArgumentParser, args: argparse.Namespace):
    from jaxopt_losses._compare.config import RunConfig

    datasets = _names(parser, args.datasets, list(DATASETS), "datasets") or list(DATASETS)
    losses = _names(parser, args.losses, list(LOSSES), "losses")
    optimizers = _names(parser, args.optimizers, list(OPTIMIZERS), "optimizers") or list(DEFAULT_OPTIMIZERS)
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS)
    plan: list[tuple[str, list[str]]] = []
    skipped = []
    for name in datasets:
        spec = DATASETS[name]
        if losses is None:
            chosen = list(spec.default_losses[:1] if args.quick else spec.default_losses)
        else:
            chosen = [l for l in losses if l in spec.losses]
        if chosen:
            plan.append((name, chosen))
        else:
            skipped.append(name)
    if not plan:
        parser.error(
            "none of the losses fits the datasets: "
            + "; ".join(f"{d} takes {', '.join(DATASETS[d].losses)}" for d in datasets)
        )
    configs = [
        RunConfig(
            dataset=d,
            loss=l,
            optimizer=o,
            lr=args.lr if args.lr is not None else OPTIMIZERS[o].lr,
            epochs=epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            weight_decay=args.weight_decay,
            clip_grad_norm=args.clip_grad_norm,
            scheduler=args.scheduler,
            step_size=args.step_size,
            gamma=args.gamma,
            t_max=args.t_max,
            eta_min=args.eta_min,
        )
        for d, ls in plan
        for l in ls
        for o in optimizers
    ]
    return configs, skipped


def _default_out() -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(f"compare-{stamp}")
    k = 1
    while out.exists():
        k += 1
        out = Path(f"compare-{stamp}-{k}")
    return out


def compare(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    configs, skipped = _configs(parser, args)
    for name in dict.fromkeys(c.dataset for c in configs):
        n_train = DATASETS[name].n_train()
        if args.batch_size > n_train:
            parser.error(f"--batch-size {args.batch_size} exceeds the {n_train} training samples of {name}")
    from jaxopt_losses._compare import session

    if skipped:
        print(f"skipping {', '.join(skipped)}: none of the chosen losses fits", flush=True)
    use_torch = not args.no_torch and os.environ.get(NO_TORCH_ENV, "") in ("", "0")
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "subparser"}
    settings["epochs"] = configs[0].epochs
    from jaxopt_losses._compare.data import MissingDependency

    try:
        outcome = session.run(configs, args.out or _default_out(), use_torch=use_torch, settings=settings)
    except MissingDependency as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    if args.fail_above is not None and outcome.with_torch:
        worst = max(r.deviation.max_param_abs for r in outcome.records if r.deviation is not None)
        if not worst <= args.fail_above:
            print(
                f"largest parameter deviation {worst:.3g} > --fail-above {args.fail_above:g}", file=sys.stderr
            )
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxopt-losses`` console script; returns the exit status.

    Args:
      argv: the arguments (default: ``sys.argv[1:]``), e.g. ``["compare", "--quick"]``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "compare":
        return compare(args.subparser, args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects it first
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
