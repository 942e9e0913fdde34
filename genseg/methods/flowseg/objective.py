"""FlowSeg objectives: vanilla flow matching and the distance-aware reshaped target.

Path (methods.md, "Flow"): x_t = (1 - t) x_0 + t x_1, target v_t = x_1 - x_0, endpoint
estimate x1_hat = x_t + (1 - t) v_theta.

Reshaping ("Vector-field reshaping"): for each labelled pixel,
d_k = ||x1_hat - mu_k||^2, p_k = softmax_k(T(d_k) / tau), Phi = -log p_y, and the target
becomes v~_t = v_t - lambda * grad Phi(x1_hat), detached. With T'(d) = dT/dd,

    grad Phi = -(2 / tau) * sum_k (y_k - p_k) T'(d_k) (x1_hat - mu_k),

which for T = -log(d + eps) is (2 / tau) sum_k (y_k - p_k)(x1_hat - mu_k) / (d_k + eps).

Our choices where the paper is silent (each a config option):
- every transform T is decreasing in d, so p_k is a soft nearest-centroid assignment:
  ``log`` -log(d + eps), ``inverse`` 1/(d + eps), ``linear`` -d, ``sqrt`` -sqrt(d + eps)
  (the paper's "d" and "sqrt(d)" read with the sign that makes p sensible);
- ``annealed`` scales lambda by t (no correction at the noise end, full at the data end);
- with ``ignore_masking`` off, ignore pixels are trained towards the origin of the centroid
  space and get no reshaping (they have no class);
- x-prediction: the network outputs x1_hat; the loss is ||x1_hat - sg[x_t + (1 - t) v~_t]||^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TRANSFORMS = ("log", "inverse", "linear", "sqrt")


def transform(d: torch.Tensor, kind: str, eps: float) -> torch.Tensor:
    """T(d), decreasing in d."""
    if kind == "log":
        return -torch.log(d + eps)
    if kind == "inverse":
        return 1.0 / (d + eps)
    if kind == "linear":
        return -d
    if kind == "sqrt":
        return -torch.sqrt(d + eps)
    raise ValueError(f"unknown distance transform {kind!r}; known: {', '.join(TRANSFORMS)}")


def transform_derivative(d: torch.Tensor, kind: str, eps: float) -> torch.Tensor:
    """T'(d) in closed form."""
    if kind == "log":
        return -1.0 / (d + eps)
    if kind == "inverse":
        return -1.0 / (d + eps) ** 2
    if kind == "linear":
        return -torch.ones_like(d)
    if kind == "sqrt":
        return -0.5 / torch.sqrt(d + eps)
    raise ValueError(f"unknown distance transform {kind!r}; known: {', '.join(TRANSFORMS)}")


def potential(x: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor, kind: str, tau: float, eps: float) -> torch.Tensor:
    """Phi(x) = -log softmax_k(T(||x - mu_k||^2) / tau)[y] for points x (P, D), labels (P,)."""
    d = ((x[:, None] - centroids[None]) ** 2).sum(-1)
    logits = transform(d, kind, eps) / tau
    return -torch.log_softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)


def potential_grad(x: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor, kind: str, tau: float, eps: float) -> torch.Tensor:
    """grad_x Phi in closed form, (P, D)."""
    diff = x[:, None, :] - centroids[None, :, :]  # (P, N, D)
    d = (diff * diff).sum(-1)  # (P, N)
    p = torch.softmax(transform(d, kind, eps) / tau, dim=1)
    y = torch.nn.functional.one_hot(labels, centroids.shape[0]).to(x.dtype)
    weight = (y - p) * transform_derivative(d, kind, eps)  # (P, N)
    return -(2.0 / tau) * (weight[..., None] * diff).sum(1)


@dataclass(frozen=True)
class ObjectiveOptions:
    """Flow-matching objective (v- or x-prediction), with optional target reshaping."""

    source: str = "noise"  # x_0: "noise" (Gaussian) or "image" (the image in centroid space)
    time_sampling: str = "uniform"  # "uniform" or "logit_normal"
    logit_normal_mean: float = 0.0
    logit_normal_std: float = 1.0
    prediction: str = "v"  # "v" or "x"
    ignore_masking: bool = True
    reshape: bool = True
    distance_transform: str = "log"
    tau: float = 1.0
    eps: float = 1e-3
    lam: float = 1.0
    schedule: str = "static"  # "static" or "annealed" (lambda * t)

    def check(self) -> None:
        choices = {
            "source": ("noise", "image"),
            "time_sampling": ("uniform", "logit_normal"),
            "prediction": ("v", "x"),
            "distance_transform": TRANSFORMS,
            "schedule": ("static", "annealed"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"model.{key} = {getattr(self, key)!r}; allowed: {', '.join(allowed)}")
        if self.tau <= 0:
            raise ValueError(f"model.tau must be > 0, got {self.tau}")
        if self.eps <= 0 or self.lam < 0:
            raise ValueError(f"model.eps must be > 0 and model.lam >= 0, got eps={self.eps}, lam={self.lam}")


def sample_time(batch: int, options: ObjectiveOptions, generator: torch.Generator | None, device) -> torch.Tensor:
    if options.time_sampling == "uniform":
        return torch.rand(batch, generator=generator, device=device)
    z = torch.randn(batch, generator=generator, device=device)
    return torch.sigmoid(options.logit_normal_mean + options.logit_normal_std * z)


def reshaped_target(
    v_target: torch.Tensor,
    x1_hat: torch.Tensor,
    centroids: torch.Tensor,
    labels: torch.Tensor,
    t: torch.Tensor,
    options: ObjectiveOptions,
    ignore_index: int = 255,
) -> torch.Tensor:
    """v~_t = v_t - lambda(t) * grad Phi(x1_hat) on labelled pixels; all tensors (B, D, H, W) / (B, H, W)."""
    if not options.reshape or options.lam == 0:
        return v_target
    b, d, h, w = x1_hat.shape
    flat = x1_hat.detach().permute(0, 2, 3, 1).reshape(-1, d)
    lab = labels.reshape(-1)
    valid = lab != ignore_index
    grad = torch.zeros_like(flat)
    grad[valid] = potential_grad(flat[valid], centroids.to(flat), lab[valid], options.distance_transform, options.tau, options.eps)
    grad = grad.view(b, h, w, d).permute(0, 3, 1, 2)
    lam = options.lam * (t.view(-1, 1, 1, 1) if options.schedule == "annealed" else 1.0)
    return v_target - lam * grad
