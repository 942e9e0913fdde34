import numpy as np
import pytest
import torch

from genseg.encodings import (
    ENCODINGS,
    centroids,
    encoding_min_distance,
    even_grid_counts,
    maskige_palette,
    min_pairwise_distance,
    nearest_centroid,
)


@pytest.mark.parametrize("name", ENCODINGS)
@pytest.mark.parametrize("n", [2, 10, 150])
def test_encodings_are_deterministic_distinct_and_bounded(name, n):
    a, b = centroids(name, n, seed=1), centroids(name, n, seed=1)
    assert torch.equal(a, b) and a.shape[0] == n
    assert a.min() >= -1 and a.max() <= 1
    assert min_pairwise_distance(a) > 0


def test_dimensions_and_known_values():
    assert centroids("kronecker", 10).shape == (10, 3)
    assert centroids("bits", 10).shape == (10, 4)
    assert centroids("onehot", 5).shape == (5, 5)
    assert torch.equal(centroids("bits", 4), torch.tensor([[-1.0, -1], [-1, 1], [1, -1], [1, 1]]))
    k = centroids("kronecker", 10)
    assert torch.allclose(k.min(0).values, -torch.ones(3)) and torch.allclose(k.max(0).values, torch.ones(3))
    assert not torch.equal(centroids("random", 10, seed=0), centroids("random", 10, seed=1))


def test_maskige_recipes_count_and_range():
    ade = maskige_palette(150)
    assert ade.shape == (150, 3) and len({tuple(c) for c in ade.tolist()}) == 150
    mseg = maskige_palette(194)
    assert mseg.shape == (194, 3) and mseg.max() <= 255
    with pytest.raises(ValueError, match="has 194 colours, 200 classes"):
        maskige_palette(200, recipe="mseg")
    assert maskige_palette(100, recipe="ade20k").shape == (100, 3)  # the first 100 of the 150


@pytest.mark.parametrize("n", [2, 11, 12, 19, 21, 171])
def test_even_maskige_palette_spreads_colours_for_any_class_count(n):
    colours = maskige_palette(n).astype(float)
    assert colours.shape == (n, 3) and colours.min() >= 0 and colours.max() <= 255
    d = np.sqrt(((colours[:, None] - colours[None]) ** 2).sum(-1)) + np.eye(n) * 999
    counts = sorted(even_grid_counts(n))
    assert d.min() >= 225 / (counts[-1] - 1) - 2 * 15 * np.sqrt(3)  # a grid step less the worst jitter
    assert np.prod(counts) >= n > np.prod(counts) - min(counts[0] * counts[1], np.prod(counts))


def test_unknown_encoding_is_named():
    with pytest.raises(ValueError, match="unknown encoding 'hilbert'; known encodings: kronecker"):
        centroids("hilbert", 10)


@pytest.mark.parametrize("budget", [64 * 2**20, 4096])
def test_nearest_centroid_matches_brute_force_in_chunks(budget):
    g = torch.Generator().manual_seed(0)
    points = centroids("kronecker", 17)
    x = torch.rand(2, 3, 9, 11, generator=g) * 2 - 1
    brute = torch.cdist(x.permute(0, 2, 3, 1).reshape(-1, 3), points).argmin(1).view(2, 9, 11)
    assert torch.equal(nearest_centroid(x, points, max_bytes=budget), brute)
    exact = points[torch.tensor([3, 5, 16])].T.reshape(1, 3, 1, 3)
    assert nearest_centroid(exact, points).flatten().tolist() == [3, 5, 16]


# Issue 18's spacing numbers: minimum pairwise distance in the centroids' own space [-1, 1]^3
# (random: seed 0); in [0, 1]^3 each is half of these.
SPACING = {150: {"kronecker": 0.154, "r3": 0.276, "random": 0.055, "grid": 0.400},
           19: {"kronecker": 0.590, "r3": 0.660, "random": 0.288, "grid": 1.000}}


@pytest.mark.parametrize("n", sorted(SPACING))
def test_encoding_min_distance_matches_the_issue_numbers(n):
    for name, expected in SPACING[n].items():
        assert encoding_min_distance(name, n) == pytest.approx(expected, abs=5e-4), name
        points = centroids(name, n).double().numpy()  # brute force, in [0, 1]^3: half the distance
        unit = (points + 1) / 2
        brute = min(np.linalg.norm(unit[i] - unit[j]) for i in range(n) for j in range(i + 1, n))
        assert brute == pytest.approx(expected / 2, abs=5e-4), name


def test_encoding_min_distance_orders_the_encodings_at_150():
    d = {name: encoding_min_distance(name, 150) for name in ("kronecker", "r3", "random", "grid", "bits")}
    assert d["random"] < d["kronecker"] < d["r3"] < d["grid"] < d["bits"] == 2.0
