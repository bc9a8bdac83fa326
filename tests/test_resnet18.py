"""The article's CNN example: ResNet-18 trained with Adam(lr=0.001) + CrossEntropyLoss, in torch and in
jaxopt_losses.compat from the same weights, step for step.

``resnet18(nn)`` (jaxopt_losses/_compare/models.py, the compare CLI's ``--model resnet18``) is
torchvision's ResNet-18 source (architecture, ``state_dict`` keys and init; the optional arguments dropped),
written once against an ``nn`` namespace and instantiated twice: with ``torch.nn`` and with
``jaxopt_losses.compat.nn`` (torchvision's wheel does not load with the CPU build of torch, so the model is
written out there).

Each step starts ours from torch's state (model and Adam state dicts loaded torch -> compat), so every
step is compared on its own. Measured per step (float32, 5-6 steps, batch 4x3x32x32, 10 classes): loss
relative <= 4.3e-6, logits <= 2.2e-5 of their scale, BatchNorm statistics <= 1.8e-6; the parameter update
agrees to 1% in relative L2 at step 1 and to 1.4e-4 from step 3 on: Adam's first steps are ~lr * sign(grad),
so the weights whose gradients are within float32 rounding of 0 move by up to 2 * lr differently (a
handful per million at step 1). float64 (opt-in, JAXOPT_LOSSES_LONG=1): loss 1e-14, logits 6e-14,
parameters 1.4e-10, update relative L2 7.6e-11. Ours then loads back into torch, which trains on.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from flax import nnx

import jaxopt_losses.compat as compat
from jaxopt_losses._compare.models import resnet18


def rel(a, b):
    """Max abs difference over the scale of ``b`` (at least 1)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def batches(steps, np_dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (rng.standard_normal((4, 3, 32, 32)).astype(np_dtype), rng.integers(0, 10, 4)) for _ in range(steps)
    ]


def models(dtype, seed=0):
    torch.manual_seed(seed)
    ref = resnet18(torch.nn, num_classes=10).to(dtype)
    ours = resnet18(compat.nn, num_classes=10)
    if dtype == torch.float64:
        ours.double()
    ours.load_state_dict(ref.state_dict())  # torch tensors load directly
    assert list(ours.state_dict()) == list(ref.state_dict())  # torchvision's keys, in torchvision's order
    assert len(ours.state_dict()) == 122 and len(list(ours.parameters())) == 62
    return ref, ours


def train_side_by_side(dtype, steps):
    """Adam(lr=0.001) + CrossEntropyLoss for ``steps`` steps in torch and in compat. Before each step ours
    is put in torch's state (model and Adam state dicts, torch -> ours), so every step is compared on its
    own: float32 rounding compounds chaotically over steps (BatchNorm over 4 values in layer4, Adam's
    sign-like first steps) — torch float32 itself drifts from torch float64 by 4% in loss after 6 steps."""
    ref, ours = models(dtype)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    criterion_t, optimizer_t = torch.nn.CrossEntropyLoss(), torch.optim.Adam(ref.parameters(), lr=0.001)
    criterion, optimizer = compat.nn.CrossEntropyLoss(), compat.optim.Adam(ours.parameters(), lr=0.001)

    @nnx.jit
    def loss_and_grads(model, images, labels):
        def loss_fn(model):
            logits = model(images)
            return criterion(logits, labels), logits

        return nnx.value_and_grad(loss_fn, has_aux=True)(model)

    devs = []
    for images, labels in batches(steps, np_dtype):
        ours.load_state_dict(ref.state_dict())
        optimizer.load_state_dict(optimizer_t.state_dict())
        before = {k: v.detach().numpy().copy() for k, v in ref.named_parameters()}

        optimizer_t.zero_grad()
        logits_t = ref(torch.from_numpy(images))
        loss_t = criterion_t(logits_t, torch.from_numpy(labels))
        loss_t.backward()
        optimizer_t.step()

        optimizer.zero_grad()
        (loss, logits), grads = loss_and_grads(ours, images, labels)
        optimizer.step(grads)

        dev = {
            "loss": abs(float(loss) - loss_t.item()) / abs(loss_t.item()),
            "logits": rel(logits, logits_t.detach().numpy()),
            "buffers": 0.0,
        }
        diffs, updates, sd_t = [], [], ref.state_dict()
        for k, v in ours.state_dict().items():
            if "running" in k:
                dev["buffers"] = max(dev["buffers"], rel(v, sd_t[k].numpy()))
            elif "num_batches" in k:
                assert int(v) == int(sd_t[k])
            else:
                diffs.append((np.asarray(v, np.float64) - sd_t[k].numpy()).ravel())
                updates.append((sd_t[k].numpy().astype(np.float64) - before[k]).ravel())
        diffs, updates = np.concatenate(diffs), np.concatenate(updates)
        dev["params_max"] = float(np.abs(diffs).max())
        dev["update_rel_l2"] = float(np.linalg.norm(diffs) / np.linalg.norm(updates))
        devs.append(dev)
    return ref, ours, devs


def test_resnet18_float32_step_for_step_and_loads_back():
    ref, ours, devs = train_side_by_side(torch.float32, steps=5)
    for dev in devs:
        assert dev["loss"] <= 1e-5 and dev["logits"] <= 1e-4 and dev["buffers"] <= 1e-4, dev
        # Adam's update m / sqrt(v) is ~lr * sign(grad) in the first steps, so a weight whose gradient is
        # within float32 rounding of 0 can move by up to 2 * lr differently; the update as a whole agrees
        assert dev["update_rel_l2"] <= 2e-2 and dev["params_max"] <= 2 * 0.001 + 1e-5, dev

    # ours loads back into a fresh torch model (torch.as_tensor of the arrays) and training continues there
    back = resnet18(torch.nn, num_classes=10)
    back.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in ours.state_dict().items()})
    images = np.random.default_rng(9).standard_normal((4, 3, 32, 32)).astype(np.float32)
    back.eval()
    ours.eval()
    with torch.no_grad():
        assert rel(ours(images), back(torch.from_numpy(images)).numpy()) <= 1e-5
    back.train()
    optimizer = torch.optim.Adam(back.parameters(), lr=0.001)
    for images, labels in batches(2, np.float32, seed=3):
        optimizer.zero_grad()
        loss = torch.nn.CrossEntropyLoss()(back(torch.from_numpy(images)), torch.from_numpy(labels))
        loss.backward()
        optimizer.step()
        assert np.isfinite(loss.item())


@pytest.mark.skipif(not os.environ.get("JAXOPT_LOSSES_LONG"), reason="long run: set JAXOPT_LOSSES_LONG=1")
def test_resnet18_float64_matches_tightly(x64):
    _, _, devs = train_side_by_side(torch.float64, steps=3)
    for dev in devs:
        assert dev["loss"] <= 1e-12 and dev["logits"] <= 1e-12 and dev["buffers"] <= 1e-12, dev
        assert dev["update_rel_l2"] <= 1e-9 and dev["params_max"] <= 1e-9, dev
