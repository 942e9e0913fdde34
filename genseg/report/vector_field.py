"""The FlowSeg target field in centroid space, vanilla against distance-aware reshaping.

Flow (methods.md, "Flow"): x_t = (1 - t) x_0 + t x_1, target v_t = x_1 - x_0, endpoint
estimate x1_hat = x_t + (1 - t) v_theta. Regressing v_theta onto a target v* moves the endpoint
estimate towards x_t + (1 - t) v*, so the pull on an estimate x = x1_hat of a pixel of class y
(x_1 = mu_y) is

- vanilla:   x_t + (1 - t) v_t - x = mu_y - x,
- reshaped:  x_t + (1 - t) v~_t - x = (mu_y - x) - (1 - t) lambda grad Phi(x),

with v~_t = v_t - lambda grad Phi(x1_hat) ("Vector-field reshaping"), d_k = ||x - mu_k||^2,
p_k = softmax_k(T(d_k) / tau), Phi = -log p_y and, for T = -log(d + eps),
grad Phi = (2 / tau) sum_k (y_k - p_k)(x - mu_k) / (d_k + eps). The vanilla pull does not depend
on x_0, t or any other centroid mu_k: no repulsion from wrong classes, and nothing that sharpens
near a decision boundary. The reshaped pull adds an attraction to mu_y and a repulsion from each
mu_k weighted by p_k / (d_k + eps), strongest right next to a wrong centroid.

``slice_plane`` picks the 2-D plane through three centroids, ``target_fields`` evaluates both
pulls at given points, ``vector_field_figure`` draws them side by side on that plane.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .. import encodings  # noqa: E402
from ..methods.flowseg.objective import TRANSFORMS, potential, potential_grad  # noqa: E402
from .figures import save  # noqa: E402

OUTLINE = [patheffects.withStroke(linewidth=2.0, foreground="black")]
TRANSFORM_LABELS = {"log": "-log(d+eps)", "inverse": "1/(d+eps)", "linear": "-d", "sqrt": "-sqrt(d+eps)"}


def _as_points(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float64)


@dataclass(frozen=True)
class SlicePlane:
    """The plane through centroids ``indices``: x = origin + u e_1 + v e_2.

    ``basis`` (2, D) holds the orthonormal e_1, e_2 (Gram-Schmidt on mu_b - mu_a, mu_c - mu_a),
    ``origin`` (D,) the mean of the three centroids, ``coords`` (N, 2) every centroid projected
    into the plane and ``offset`` (N,) each centroid's distance from the plane (0 for the three).
    """

    indices: tuple[int, int, int]
    origin: torch.Tensor
    basis: torch.Tensor
    coords: torch.Tensor
    offset: torch.Tensor

    def lift(self, u, v) -> torch.Tensor:
        """2-D plane coordinates u, v (any equal shape, e.g. (H, W) from meshgrid) -> (..., D) points."""
        u, v = _as_points(u), _as_points(v)
        return self.origin + u[..., None] * self.basis[0] + v[..., None] * self.basis[1]

    def project(self, x) -> torch.Tensor:
        """(..., D) points or vectors -> (..., 2) in-plane coordinates ((x - origin) . e_i)."""
        return (_as_points(x) - self.origin) @ self.basis.T

    def project_vectors(self, v) -> torch.Tensor:
        """(..., D) vectors -> (..., 2) in-plane components (v . e_i), no origin shift."""
        return _as_points(v) @ self.basis.T


def slice_plane(centroids, indices: Sequence[int] = (0, 1, 2)) -> SlicePlane:
    """Orthonormal 2-D basis of the plane through three centroids, origin at their mean."""
    mu = _as_points(centroids)
    a, b, c = (int(i) for i in indices)
    if len({a, b, c}) != 3:
        raise ValueError(f"need three distinct centroids, got indices {tuple(indices)}")
    e1 = mu[b] - mu[a]
    e1 = e1 / e1.norm()
    w = mu[c] - mu[a]
    w = w - (w @ e1) * e1
    if w.norm() < 1e-9:
        raise ValueError(f"centroids {a}, {b}, {c} are collinear: no plane through them")
    e2 = w / w.norm()
    basis = torch.stack([e1, e2])
    origin = mu[[a, b, c]].mean(0)
    rel = mu - origin
    coords = rel @ basis.T
    offset = (rel - coords @ basis).norm(dim=1)
    return SlicePlane((a, b, c), origin, basis, coords, offset)


@dataclass(frozen=True)
class TargetFields:
    """Both pulls at P points: ``vanilla``, ``reshaped`` (P, D); their in-plane components
    ``vanilla_2d``, ``reshaped_2d`` (P, 2) (None without a plane); ``phi`` (P,) the potential."""

    vanilla: torch.Tensor
    reshaped: torch.Tensor
    vanilla_2d: torch.Tensor | None
    reshaped_2d: torch.Tensor | None
    phi: torch.Tensor


def target_fields(
    centroids,
    label: int,
    points,
    t: float = 0.5,
    kind: str = "log",
    tau: float = 1.0,
    eps: float = 1e-3,
    lam: float = 1.0,
    plane: SlicePlane | None = None,
    schedule: str = "static",
) -> TargetFields:
    """Pull on endpoint estimates x1_hat = ``points`` (P, D) of pixels of class ``label``.

    vanilla = mu_y - x; reshaped = (mu_y - x) - (1 - t) * lambda(t) * grad Phi(x), i.e. the
    endpoint x_t + (1 - t) v~_t - x1_hat of the reshaped target (objective.reshaped_target),
    lambda(t) = lam, or lam * t with ``schedule="annealed"``. grad Phi is
    objective.potential_grad. ``plane`` (default: the plane through ``label`` and its two nearest
    centroids) gives the projected 2-D components.
    """
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown distance transform {kind!r}; known: {', '.join(TRANSFORMS)}")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t}")
    mu = _as_points(centroids)
    x = _as_points(points).reshape(-1, mu.shape[1])
    labels = torch.full((x.shape[0],), int(label), dtype=torch.long)
    vanilla = mu[label] - x
    if schedule not in ("static", "annealed"):
        raise ValueError(f"schedule must be 'static' or 'annealed', got {schedule!r}")
    lam_t = lam * (t if schedule == "annealed" else 1.0)
    grad = potential_grad(x, mu, labels, kind, tau, eps)
    reshaped = vanilla - (1.0 - t) * lam_t * grad
    phi = potential(x, mu, labels, kind, tau, eps)
    if plane is None and mu.shape[1] == 3 and mu.shape[0] >= 3:
        plane = slice_plane(mu, default_indices(mu, label))
    v2 = plane.project_vectors(vanilla) if plane is not None else None
    r2 = plane.project_vectors(reshaped) if plane is not None else None
    return TargetFields(vanilla, reshaped, v2, r2, phi)


def default_indices(centroids, label: int) -> tuple[int, int, int]:
    """The true centroid and its two nearest neighbours (where the class boundaries are)."""
    mu = _as_points(centroids)
    d = (mu - mu[label]).norm(dim=1)
    d[label] = float("inf")
    first, second = (int(i) for i in torch.argsort(d)[:2])
    return (int(label), first, second)


def vector_field_figure(
    out_stem: Path,
    encoding: str = "kronecker",
    num_classes: int = 6,
    label: int = 0,
    grid: int = 25,
    lam: float = 1.0,
    tau: float = 1.0,
    kind: str = "log",
    eps: float = 1e-3,
    t: float = 0.5,
    others: Sequence[int] | None = None,
    seed: int = 0,
) -> list[Path]:
    """Two panels on the plane through mu_y and two other centroids (default: the two nearest):
    left the vanilla pull mu_y - x, right the reshaped (mu_y - x) - (1 - t) lambda grad Phi.

    Arrows (``grid`` x ``grid``) show the in-plane direction at unit length; the background is
    log10 of the in-plane magnitude on a shared colour scale; the right panel adds contours of
    Phi. The dashed line bounds class y's nearest-centroid region (all N centroids, in 3-D).
    Written atomically as ``out_stem``.png (dpi 200) and .pdf; returns both paths.
    """
    out_stem = Path(out_stem)
    mu = encodings.centroids(encoding, num_classes, seed).double()
    if mu.shape[1] != 3:
        raise ValueError(f"encoding {encoding!r} has {mu.shape[1]} dimensions; the slice needs 3")
    indices = (label, *others) if others is not None else default_indices(mu, label)
    plane = slice_plane(mu, indices)
    in_plane = plane.coords[list(indices)].numpy()
    span = in_plane.max(0) - in_plane.min(0)
    half = 0.5 * max(span.max(), 0.5) * 1.35
    centre = 0.5 * (in_plane.max(0) + in_plane.min(0))
    lo, hi = centre - half, centre + half

    def fields_on(n: int):
        u, v = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
        pts = plane.lift(u, v).reshape(-1, 3)
        f = target_fields(mu, label, pts, t=t, kind=kind, tau=tau, eps=eps, lam=lam, plane=plane)
        d = torch.cdist(pts, mu)
        margin = (d[:, label] - torch.cat([d[:, :label], d[:, label + 1 :]], 1).min(1).values).reshape(n, n).numpy()
        return u, v, f, margin

    fine = max(4 * grid, 80)
    uf, vf, ff, margin = fields_on(fine)
    uq, vq, fq, _ = fields_on(grid)
    panels = [
        ("vanilla: $\\mu_y - x$", ff.vanilla_2d, fq.vanilla_2d),
        (f"reshaped ({TRANSFORM_LABELS[kind]}, $\\lambda$ = {lam:g})", ff.reshaped_2d, fq.reshaped_2d),
    ]
    mags = [np.linalg.norm(p[1].numpy(), axis=1).reshape(fine, fine) for p in panels]
    vmin = max(min(m[m > 0].min() for m in mags), 1e-3)
    vmax = max(m.max() for m in mags)
    norm = LogNorm(vmin=vmin, vmax=vmax)
    rc = {"font.size": 8, "axes.titlesize": 8.5, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7}
    with sns.axes_style("white"), plt.rc_context(rc):
        fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.2), sharex=True, sharey=True, constrained_layout=True)
        try:
            for ax, (title, _, coarse), mag in zip(axes, panels, mags):
                mesh = ax.pcolormesh(uf, vf, np.clip(mag, vmin, None), norm=norm, cmap="mako", shading="gouraud", rasterized=True)
                arrows = coarse.numpy()
                length = np.linalg.norm(arrows, axis=1, keepdims=True)
                unit = np.divide(arrows, length, out=np.zeros_like(arrows), where=length > 1e-12)
                ax.quiver(uq, vq, unit[:, 0].reshape(grid, grid), unit[:, 1].reshape(grid, grid), color="white", alpha=0.85, angles="xy", scale=1.1 * grid, width=0.004, headwidth=3.5)
                ax.contour(uf, vf, margin, levels=[0.0], colors="#f5c242", linestyles="--", linewidths=1.0)
                off_plane = _mark_centroids(ax, plane, label, indices, lo, hi)
                ax.set_title(title)
                ax.set_xlabel("$u$ (in-plane)")
                ax.set_xlim(lo[0], hi[0])
                ax.set_ylim(lo[1], hi[1])
                ax.set_aspect("equal")
            phi = ff.phi.numpy().reshape(fine, fine)
            levels = np.unique(np.round(np.quantile(phi, [0.2, 0.5, 0.8]), 2))
            cs = axes[1].contour(uf, vf, phi, levels=levels, colors="#ff9f9f", linewidths=0.7)
            for text in axes[1].clabel(cs, fontsize=6, fmt="%.2g"):
                text.set_path_effects(OUTLINE)
                text.set_color("#ffd0d0")
            axes[0].set_ylabel("$v$ (in-plane)")
            fig.colorbar(mesh, ax=axes, shrink=0.85, pad=0.01, label="in-plane |pull| (log scale)")
            handles = [
                Line2D([], [], marker="*", color="none", markerfacecolor="#f5c242", markeredgecolor="k", markersize=10, label=f"true class {label}"),
                Line2D([], [], marker="o", color="none", markerfacecolor="#e8e8e8", markeredgecolor="k", markersize=6, label="other class (in plane)"),
                Line2D([], [], color="#f5c242", linestyle="--", label=f"boundary of class {label} (nearest centroid)"),
                Line2D([], [], color="#ff9f9f", linewidth=0.7, label="contours of $\\Phi = -\\log p_y$"),
            ]
            if off_plane:
                handles.insert(2, Line2D([], [], marker="o", color="none", markerfacecolor="none", markeredgecolor="#bbbbbb", markersize=5, label="off-plane centroid (projected)"))
            fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=7, handletextpad=0.3, columnspacing=1.0)
            fig.suptitle(
                f"2-D slice through centroids {', '.join(map(str, indices))} ({encoding}, N = {num_classes}); "
                f"arrows: direction of the pull on $\\hat x_1$ (t = {t:g}, $\\tau$ = {tau:g}, eps = {eps:g})",
                fontsize=7.5,
            )
            paths = save(fig, out_stem)
        finally:
            plt.close(fig)
    return paths


def _mark_centroids(ax, plane: SlicePlane, label: int, indices, lo, hi) -> bool:
    """Mark the centroids; True when an off-plane centroid's projection was drawn."""
    coords = plane.coords.numpy()
    drawn = False
    pad = 0.02 * (hi - lo)
    for k, (cu, cv) in enumerate(coords):
        inside = lo[0] <= cu <= hi[0] and lo[1] <= cv <= hi[1]
        if k == label:
            ax.plot(cu, cv, marker="*", markersize=13, markerfacecolor="#f5c242", markeredgecolor="k", zorder=5)
            ax.annotate(f"$\\mu_{{{k}}}$ (y)", (cu, cv), xytext=(6, 6), textcoords="offset points", color="#f5c242", fontsize=8, fontweight="bold", zorder=6, path_effects=OUTLINE)
        elif k in indices:
            ax.plot(cu, cv, marker="o", markersize=7, markerfacecolor="#e8e8e8", markeredgecolor="k", zorder=5)
            ax.annotate(f"$\\mu_{{{k}}}$", (cu, cv), xytext=(6, 6), textcoords="offset points", color="white", fontsize=8, zorder=6, path_effects=OUTLINE)
        elif inside:
            ax.plot(cu, cv, marker="o", markersize=5, markerfacecolor="none", markeredgecolor="#bbbbbb", zorder=4)
            ax.annotate(f"{k}", (min(cu + pad[0], hi[0]), cv), color="#dddddd", fontsize=6, zorder=4, path_effects=OUTLINE)
            drawn = True
    return drawn
