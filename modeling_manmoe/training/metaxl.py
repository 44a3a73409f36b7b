"""MetaXL's look-ahead meta-gradient (Xia et al., NAACL 2021): how the representation transformation network (RTN)
should change so that one SGD step of the model on the transformed source rows lowers the loss on target rows.

With the model's parameters theta (the discriminator and the RTN excluded), the RTN's phi, the source objective
L_s(theta, phi) (the source rows, their E(x) transformed) and the target objective L_t(theta) (the few labeled
target rows, untransformed), the virtual step is theta' = theta - eta * grad_theta L_s(theta, phi), and

    d L_t(theta') / d phi = -eta * d/dphi [ grad_theta L_s(theta, phi) . v ],   v = grad L_t(theta') held constant.

- `method="exact"`: the product's gradient through the virtual step's graph (a double backward, as `mlt.py`).
- `method="finite_difference"`: the same mixed second derivative from first-order gradients only, by a central
  difference along v (DARTS's approximation): -eta * [grad_phi L_s(theta + r v) - grad_phi L_s(theta - r v)] / (2 r),
  r = epsilon / |v|. It differs from the exact one by O(r^2).

The exact method runs the model's plain torch modules (`plain_kernels`): the hand-written CPU kernels have no double
backward. The finite-difference method needs first-order gradients only, so it keeps the model's kernels (the fast
ones by default): it costs three source passes and one target pass, each forward and backward, with the memory of
an ordinary training step; the exact one two source passes, one of them a double backward that holds the first
backward's graph. Every source evaluation of one meta step draws the same dropout masks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.func import functional_call

META_GRADIENTS = ("exact", "finite_difference")


@contextlib.contextmanager
def plain_kernels(model: nn.Module) -> Iterator[None]:
    """Inside: every module of `model` that chose the fast kernels (`kernels` attribute) runs its plain torch path."""
    chosen = [(module, module.kernels) for module in model.modules() if getattr(module, "kernels", None) is not None]
    for module, _ in chosen:
        module.kernels = None
    try:
        yield
    finally:
        for module, kernels in chosen:
            module.kernels = kernels


@contextlib.contextmanager
def parameters_requiring_grad(parameters: list[nn.Parameter], flag: bool) -> Iterator[None]:
    """Inside: each of `parameters` has `requires_grad=flag`; their own flags come back on exit. (Operations
    recorded inside keep what they recorded: with `flag=False`, no gradient for those parameters.)"""
    saved = [p.requires_grad for p in parameters]
    for p in parameters:
        p.requires_grad_(flag)
    try:
        yield
    finally:
        for p, previous in zip(parameters, saved, strict=True):
            p.requires_grad_(previous)


def meta_parameters(model: nn.Module) -> tuple[dict[str, nn.Parameter], list[nn.Parameter]]:
    """theta: {name: parameter} of the trainable parameters the virtual step moves (all but the discriminator's and
    the RTN's); phi: the RTN's parameters."""
    base = model.manmoe
    if base.transformation is None:
        raise ValueError("the model has no representation transformation (config.rtn_bottleneck)")
    skip = {id(p) for module in (base.discriminator, base.transformation) if module is not None
            for p in module.parameters()}  # fmt: skip
    theta = {name: p for name, p in model.named_parameters() if p.requires_grad and id(p) not in skip}
    return theta, list(base.transformation.parameters())


def meta_gradient(
    model: nn.Module,
    source_inputs: dict,
    target_inputs: dict,
    learning_rate: float,
    method: str = "exact",
    epsilon: float = 0.01,
) -> list[torch.Tensor]:
    """d L_t(theta') / d phi for the RTN's parameters (module docstring). `source_inputs` / `target_inputs`: keyword
    arguments of the model's forward whose `.loss` is L_s (with `transform_rows`) and L_t; `learning_rate`: eta."""
    if method not in META_GRADIENTS:
        raise ValueError(f"meta_gradient={method!r}; expected one of {list(META_GRADIENTS)}")
    theta, phi = meta_parameters(model)
    names, weights = list(theta), list(theta.values())
    rng = torch.get_rng_state()

    def source_loss(parameters: dict | None = None) -> torch.Tensor:
        torch.set_rng_state(rng)  # the same dropout masks in every source evaluation
        if parameters is None:
            return model(**source_inputs).loss
        return functional_call(model, parameters, args=(), kwargs=source_inputs, strict=False).loss

    exact = method == "exact"
    # a trainer keeps the RTN's gradient off outside the meta step
    with parameters_requiring_grad(phi, True), plain_kernels(model) if exact else contextlib.nullcontext():
        loss = source_loss()
        grads = torch.autograd.grad(loss, weights, create_graph=exact, allow_unused=True)
        grads = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads, strict=True)]
        virtual = {n: (w - learning_rate * g).detach().requires_grad_() for n, w, g in zip(names, weights, grads,
                                                                                            strict=True)}  # fmt: skip
        target_loss = functional_call(model, virtual, args=(), kwargs=target_inputs, strict=False).loss
        v = torch.autograd.grad(target_loss, list(virtual.values()), allow_unused=True)
        v = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, v, strict=True)]
        if exact:
            product = sum((g * u).sum() for g, u in zip(grads, v, strict=True))
            result = torch.autograd.grad(-learning_rate * product, phi, allow_unused=True)
        else:
            norm = torch.sqrt(sum((u * u).sum() for u in v))
            r = epsilon / norm.clamp(min=1e-12)
            sides = []
            for sign in (1.0, -1.0):
                moved = {n: (w + sign * r * u).detach() for n, w, u in zip(names, weights, v, strict=True)}
                sides.append(torch.autograd.grad(source_loss(moved), phi, allow_unused=True))
            result = [None if a is None else -learning_rate * (a - b) / (2 * r) for a, b in zip(*sides, strict=True)]
    return [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(phi, result, strict=True)]


# the keys of a step's batch whose second dimension is the words (read up to `attention_mask`'s longest row) and the
# encoder's subword tokens (up to `encoder_attention_mask`'s)
WORD_KEYS = ("input_ids", "char_ids", "attention_mask", "labels", "input_features", "teacher_logits")
SUBWORD_KEYS = ("encoder_input_ids", "encoder_attention_mask", "encoder_word_ids")


def rows_of(inputs: dict, rows: torch.Tensor) -> dict:
    """The batch `inputs` (tensors with the batch first) restricted to `rows` (batch,) bool, its word and subword
    columns cut to the longest of those rows (the batch is padded to its longest row of any language): the rows
    compute the same losses with less padding to run through."""
    picked = {key: value[rows] if isinstance(value, torch.Tensor) and value.dim() > 0 else value
              for key, value in inputs.items()}  # fmt: skip
    for keys, mask in ((WORD_KEYS, "attention_mask"), (SUBWORD_KEYS, "encoder_attention_mask")):
        if mask in picked and picked[mask].numel():
            longest = int(picked[mask].sum(-1).max())
            for key in keys:
                if key in picked and picked[key].dim() > 1:
                    picked[key] = picked[key][:, :longest]
    return picked
