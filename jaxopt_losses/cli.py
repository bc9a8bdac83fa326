"""The ``jaxopt-losses`` command.

``jaxopt-losses compare`` answers two questions with one run: which optimizer and which loss work best on
real data, and whether jaxopt_losses trains exactly like PyTorch (same model, same initial weights, same
minibatches, compared step by step).

Example::

    $ jaxopt-losses compare --quick                      # 3 epochs, one loss per dataset (CI)
    $ jaxopt-losses compare                              # the article's SGD, momentum, Adam, RMSprop
    $ jaxopt-losses compare --model lstm,resnet18 --html # the article's RNN and CNN examples
    $ jaxopt-losses compare --data mine.csv --target price --model mlp,mypkg.models:factory
    $ jaxopt-losses compare --optimizers adamw,nadam --scheduler steplr --step-size 5 --gamma 0.5 \
          --clip-grad-norm 1.0 --weight-decay 1e-4 --out runs/cmp

Models (``--model``): ``mlp`` (a tanh MLP on scikit-learn's digits, breast_cancer and diabetes), ``cnn`` (a
small LeNet on the digits as 1x8x8 images), ``rnn`` / ``lstm`` / ``gru`` (the article's RNN example on the
digits as 8 rows of 8 and on statsmodels' sunspots series), ``resnet18`` (the article's CNN example on the
digits upsampled to 3x32x32, a few steps), or ``module:factory``: the user's ``factory(nn)`` building the
model from ``torch.nn`` and from ``jaxopt_losses.compat.nn`` (see :mod:`jaxopt_losses._compare.models`).
Data (``--data``): the bundled datasets, or the user's ``.npz`` (``x``, ``y``) / ``.csv`` (``--target``).

Each run trains in JAX with a jitted step built from ``jaxopt_losses.losses``, ``jaxopt_losses.optim``,
``jaxopt_losses.schedules`` and ``jaxopt_losses.clip``, and, when torch is installed, in PyTorch with
``torch.optim``, ``torch.nn.functional``, ``torch.optim.lr_scheduler`` and ``clip_grad_norm_``, from the same
weights. The command prints a table (final losses, accuracy / R², steps per second in each framework, the
largest parameter and loss deviation between the frameworks) and writes into ``--out`` one figure per
dataset (``loss_curves_<dataset>.png``: loss curves over the per-step deviation), ``results.json`` (rewritten
atomically after every run) and, with ``--html``, a self-contained ``report.html``. ``--out`` is checked
before any training: a file is an error, a non-empty folder is refused unless ``--overwrite``. Ctrl-C stops
the run in progress and keeps the finished ones (exit status 130).

Without torch it runs JAX alone (also with ``--no-torch`` or ``JAXOPT_LOSSES_NO_TORCH=1``); without rich it
prints plain text; without matplotlib it skips the figures. Argument errors exit with status 2, a missing
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
    DEFAULT_MODELS,
    DEFAULT_OPTIMIZERS,
    LOSSES,
    MODELS,
    NOT_COMPARED,
    OPTIMIZERS,
    SCHEDULERS,
)

QUICK_EPOCHS = 3
DEFAULT_EPOCHS = 20
NO_TORCH_ENV = "JAXOPT_LOSSES_NO_TORCH"
INTERRUPTED = 130  # the shell's status for a command ended by SIGINT


def version() -> str:
    """The version of the jaxopt_losses being run (``jaxopt_losses.__version__``, which the packaging
    metadata also carries)."""
    import jaxopt_losses

    return jaxopt_losses.__version__


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
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    p = sub.add_parser(
        "compare",
        help="train models in JAX and PyTorch side by side; table, figures, results.json",
        description=(
            "Train models (an MLP, a CNN, the article's RNN and ResNet-18 examples, or your own) on real "
            "data (bundled offline, or your own file) with several optimizers and losses, in JAX through "
            "jaxopt_losses and (when installed) in PyTorch from the same initial weights and the same "
            "minibatch order; report final losses, accuracy / R^2, speed and the deviation between the "
            "frameworks, step by step. No network access is needed."
        ),
    )
    p.set_defaults(subparser=p)
    p.add_argument(
        "--model",
        "--models",
        dest="model",
        metavar="MODEL",
        help=f"comma-separated, or 'all': {', '.join(MODELS)}, or module:factory for your own "
        "(factory(nn) builds it from torch.nn and from jaxopt_losses.compat.nn; or "
        "module:torch_factory,compat_factory) (default: mlp)",
    )
    p.add_argument(
        "--datasets",
        help=f"comma-separated, or 'all' [{','.join(DATASETS)}] (default: each model's; mlp: digits, "
        "breast_cancer, diabetes; cnn, resnet18: digits; rnn, lstm, gru: digits, sunspots)",
    )
    p.add_argument(
        "--data",
        type=Path,
        metavar="FILE",
        help="your data: .npz with arrays x [n, ...] and y [n], or .csv with a header row",
    )
    p.add_argument("--target", metavar="COLUMN", help="--data .csv: the target column (default: the last)")
    p.add_argument(
        "--task",
        choices=("classification", "regression"),
        help="--data: the task (default: inferred; an integer-valued target with at most 20 values is a "
        "class label)",
    )
    p.add_argument(
        "--losses",
        help=f"comma-separated, or 'all'; each dataset uses those that fit its task [{','.join(LOSSES)}] "
        "(default: digits cross_entropy, breast_cancer bce_with_logits,bce, diabetes mse,huber, "
        "sunspots mse; --data: cross_entropy or mse)",
    )
    p.add_argument(
        "--optimizers",
        help=f"comma-separated, or 'all' [{','.join(OPTIMIZERS)}] (default: {','.join(DEFAULT_OPTIMIZERS)}; "
        "rnn, lstm, gru: momentum; resnet18: adam, as in the article)",
    )
    p.add_argument(
        "--epochs",
        type=_positive_int,
        help=f"default {DEFAULT_EPOCHS}, {QUICK_EPOCHS} with --quick; resnet18: 2 (64 training images)",
    )
    p.add_argument("--batch-size", type=_positive_int, help="default: 32; sunspots: 8 (234 training windows)")
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
    p.add_argument(
        "--out", type=Path, help="output folder, new or empty (default: ./compare-YYYYmmdd-HHMMSS)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="write into a non-empty --out, replacing earlier results"
    )
    p.add_argument("--html", action="store_true", help="also write a self-contained report.html")
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


def _model_names(parser: argparse.ArgumentParser, value: str | None) -> list[str]:
    if value is None:
        return list(DEFAULT_MODELS)
    names = [v.strip() for v in value.split(",") if v.strip()]
    if names == ["all"]:
        return list(MODELS)
    # "module:torch_factory,compat_factory" holds a comma: glue it back to its module
    glued: list[str] = []
    for n in names:
        if glued and ":" in glued[-1] and ":" not in n and n.lower() not in MODELS and "," not in glued[-1]:
            glued[-1] += "," + n
        else:
            glued.append(n)
    out = []
    for n in glued:
        if ":" not in n:
            n = n.lower()
            if n not in MODELS:
                parser.error(f"unknown model {n!r}; valid models: {', '.join(MODELS)}, or module:factory")
        out.append(n)
    if not out:
        parser.error(f"--model needs at least one name (valid: {', '.join(MODELS)}, or module:factory)")
    return list(dict.fromkeys(out))


def _user_data(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The --data file's spec (loaded once here so that a bad file fails before anything runs)."""
    from jaxopt_losses._compare.data import DataFileError, load_file

    if args.data is None:
        if args.target is not None or args.task is not None:
            parser.error("--target and --task go with --data")
        return None
    try:
        return load_file(args.data, target=args.target, task=args.task, seed=args.seed).spec
    except DataFileError as e:
        parser.error(str(e))


def _configs(parser: argparse.ArgumentParser, args: argparse.Namespace):
    from jaxopt_losses._compare import models as models_mod
    from jaxopt_losses._compare.config import RunConfig

    model_names = _model_names(parser, args.model)
    user = _user_data(parser, args)
    specs = dict(DATASETS)
    if user is not None:
        specs[user.name] = user
    explicit = _names(parser, args.datasets, list(DATASETS), "datasets")
    losses = _names(parser, args.losses, list(LOSSES), "losses")
    optimizers = _names(parser, args.optimizers, list(OPTIMIZERS), "optimizers")
    plan: list[tuple[str, str, list[str], list[str], int, int]] = []  # model, dataset, losses, optimizers,
    # epochs, batch size
    skipped: list[str] = []
    for model in model_names:
        builtin = MODELS.get(model)
        try:
            view = models_mod.view_of(model)
        except models_mod.ModelError as e:
            parser.error(str(e))
        if explicit is not None or user is not None:
            datasets = [*(explicit or []), *([user.name] if user is not None else [])]
        else:
            datasets = list(builtin.datasets) if builtin is not None else ["digits"]
        for name in datasets:
            spec = specs[name]
            if view is not None and view != "image3x32" and spec.view(view) is None:
                skipped.append(f"{model} on {name} (no {view} view)")
                continue
            if view == "image3x32" and spec.view("image") is None:
                skipped.append(f"{model} on {name} (no image view)")
                continue
            if losses is None:
                chosen = list(spec.default_losses[:1] if args.quick else spec.default_losses)
            else:
                chosen = [l for l in losses if l in spec.losses]
            if not chosen:
                skipped.append(
                    f"{model} on {name} (none of the chosen losses fits: it takes {', '.join(spec.losses)})"
                )
                continue
            n_train = spec.n_train()
            if builtin is not None and builtin.max_train is not None:
                n_train = min(n_train, builtin.max_train)
            batch_size = args.batch_size or spec.batch_size
            if batch_size > n_train:
                parser.error(
                    f"--batch-size {batch_size} exceeds the {n_train} training samples of {name}"
                    + (f" for {model}" if n_train < spec.n_train() else "")
                )
            epochs = args.epochs or (builtin.epochs if builtin and builtin.epochs else None)
            epochs = epochs or (QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS)
            opts = optimizers or list(builtin.optimizers if builtin is not None else DEFAULT_OPTIMIZERS)
            plan.append((model, name, chosen, opts, epochs, batch_size))
    if not plan:
        parser.error("nothing to run: " + "; ".join(skipped))
    configs = [
        RunConfig(
            dataset=d,
            loss=l,
            optimizer=o,
            lr=args.lr if args.lr is not None else OPTIMIZERS[o].lr,
            epochs=epochs,
            batch_size=batch_size,
            seed=args.seed,
            model=model,
            task=specs[d].task,
            weight_decay=args.weight_decay,
            clip_grad_norm=args.clip_grad_norm,
            scheduler=args.scheduler,
            step_size=args.step_size,
            gamma=args.gamma,
            t_max=args.t_max,
            eta_min=args.eta_min,
        )
        for model, d, ls, opts, epochs, batch_size in plan
        for l in ls
        for o in opts
    ]
    return configs, skipped, user


def _default_out() -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(f"compare-{stamp}")
    k = 1
    while out.exists():
        k += 1
        out = Path(f"compare-{stamp}-{k}")
    return out


def compare(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from jaxopt_losses._compare import outdir

    out = args.out or _default_out()
    try:  # before anything heavy: a bad --out must not cost a training run
        outdir.check(out, overwrite=args.overwrite)
    except outdir.OutputError as e:
        parser.error(str(e))
    configs, skipped, user = _configs(parser, args)
    from jaxopt_losses._compare import models, session
    from jaxopt_losses._compare.data import MissingDependency, load_file

    if skipped:
        print(f"skipping {'; '.join(skipped)}", flush=True)
    use_torch = not args.no_torch and os.environ.get(NO_TORCH_ENV, "") in ("", "0")
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "subparser"}
    settings["out"] = str(out)
    settings["epochs"] = {c.model: c.epochs for c in configs}
    sources = {}
    if user is not None:
        sources[user.name] = lambda seed: load_file(args.data, target=args.target, task=args.task, seed=seed)
    try:
        outcome = session.run(
            configs, out, use_torch=use_torch, settings=settings, sources=sources, html=args.html
        )
    except MissingDependency as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    except models.ModelError as e:
        parser.error(str(e))
    if outcome.interrupted:
        return INTERRUPTED
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
    try:
        if args.command == "compare":
            return compare(args.subparser, args)
    except KeyboardInterrupt:  # before or after training (during it, the session keeps finished runs)
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse rejects it first
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
