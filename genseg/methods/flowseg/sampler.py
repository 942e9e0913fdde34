"""ODE samplers for dx/dt = v(x, t) from t = 0 to 1; each returns (x_1, NFE)."""

from __future__ import annotations

from typing import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SAMPLERS = ("euler", "heun")


def euler(velocity: Velocity, x: torch.Tensor, steps: int) -> tuple[torch.Tensor, int]:
    """x_{i+1} = x_i + dt v(x_i, t_i): ``steps`` evaluations."""
    dt = 1.0 / steps
    for i in range(steps):
        t = torch.full((x.shape[0],), i * dt, device=x.device)
        x = x + dt * velocity(x, t)
    return x, steps


def heun(velocity: Velocity, x: torch.Tensor, steps: int) -> tuple[torch.Tensor, int]:
    """Heun's second-order method (trapezoidal corrector): 2 evaluations per step."""
    dt = 1.0 / steps
    for i in range(steps):
        t0 = torch.full((x.shape[0],), i * dt, device=x.device)
        v0 = velocity(x, t0)
        guess = x + dt * v0
        v1 = velocity(guess, t0 + dt)
        x = x + 0.5 * dt * (v0 + v1)
    return x, 2 * steps


def nfe(sampler: str, steps: int) -> int:
    """Network evaluations a sampler spends for ``steps`` steps."""
    return steps if sampler == "euler" else 2 * steps


def sample(sampler: str, velocity: Velocity, x: torch.Tensor, steps: int) -> tuple[torch.Tensor, int]:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if sampler == "euler":
        return euler(velocity, x, steps)
    if sampler == "heun":
        return heun(velocity, x, steps)
    raise ValueError(f"unknown sampler {sampler!r}; known samplers: {', '.join(SAMPLERS)}")
