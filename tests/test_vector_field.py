"""The vanilla / reshaped FlowSeg target field and its figure (genseg.report.vector_field)."""

import torch

from genseg import encodings
from genseg.report.vector_field import (
    default_indices,
    slice_plane,
    target_fields,
    vector_field_figure,
)

MU = encodings.centroids("kronecker", 6).double()
LABEL = 0


def test_slice_plane_is_orthonormal_and_holds_its_centroids():
    for indices in [(0, 1, 2), default_indices(MU, LABEL), (3, 5, 1)]:
        plane = slice_plane(MU, indices)
        assert torch.allclose(plane.basis @ plane.basis.T, torch.eye(2, dtype=plane.basis.dtype), atol=1e-10)
        assert torch.allclose(plane.origin, MU[list(indices)].mean(0))
        assert plane.offset[list(indices)].abs().max() < 1e-10
        # lifting the projected coordinates recovers the chosen centroids
        uv = plane.coords[list(indices)]
        assert torch.allclose(plane.lift(uv[:, 0], uv[:, 1]), MU[list(indices)], atol=1e-10)
        # a (H, W) grid lifts to (H, W, 3) points of the plane
        u, v = torch.meshgrid(torch.linspace(-1, 1, 4), torch.linspace(-1, 1, 5), indexing="xy")
        pts = plane.lift(u, v)
        assert pts.shape == (5, 4, 3)
        normal = torch.linalg.cross(plane.basis[0], plane.basis[1])
        assert ((pts - plane.origin) @ normal).abs().max() < 1e-10


def test_wrong_centroid_repels_in_reshaped_field_only():
    k = default_indices(MU, LABEL)[1]  # the nearest wrong centroid
    direction = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
    direction = direction / direction.norm()
    x = MU[k] + 0.05 * direction  # right next to mu_k
    f = target_fields(MU, LABEL, x[None], kind="log")
    away = x - MU[k]
    assert (f.reshaped[0] @ away) > 0  # reshaped points away from mu_k
    assert (f.reshaped[0] @ away) > (f.vanilla[0] @ away) + 0.1
    # the vanilla pull only sees the offset from mu_y: move mu_k far away, or shift everything
    far = MU.clone()
    far[k] = far[k] + 10.0
    g = target_fields(far, LABEL, x[None], kind="log")
    assert torch.allclose(g.vanilla, f.vanilla)
    assert torch.allclose(f.vanilla[0], MU[LABEL] - x)
    shuffled = MU[torch.tensor([0, 3, 5, 1, 2, 4])] * torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    shuffled[LABEL] = MU[LABEL]  # same mu_y, other centroids anywhere
    assert torch.allclose(target_fields(shuffled, LABEL, x[None]).vanilla, f.vanilla)
    assert not torch.allclose(g.reshaped, f.reshaped)  # the reshaped pull does see mu_k


def test_reshaped_attraction_is_stronger_near_true_centroid():
    offsets = 0.05 * torch.tensor([[1.0, 0, 0], [0, -1.0, 0], [0.3, 0.4, -0.5]], dtype=torch.float64)
    x = MU[LABEL] + offsets
    f = target_fields(MU, LABEL, x, kind="log", lam=1.0)
    ratio = f.reshaped.norm(dim=1) / f.vanilla.norm(dim=1)
    assert (ratio > 1).all()
    # and it still points towards mu_y
    assert ((f.reshaped * (MU[LABEL] - x)).sum(1) > 0).all()
    assert (f.phi >= 0).all() and f.phi.shape == (3,)


def test_lam_zero_gives_vanilla_field():
    x = torch.rand(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    for kind in ("log", "inverse", "linear", "sqrt"):
        f = target_fields(MU, LABEL, x, kind=kind, lam=0.0)
        assert torch.equal(f.vanilla, f.reshaped)
        assert torch.equal(f.vanilla_2d, f.reshaped_2d)
        assert f.vanilla_2d.shape == (50, 2)


def test_figure_writes_png_and_pdf_atomically(tmp_path):
    paths = vector_field_figure(tmp_path / "field", grid=9)
    assert [p.name for p in paths] == ["field.png", "field.pdf"]
    assert paths[0].stat().st_size > 10_000
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["field.pdf", "field.png"]
