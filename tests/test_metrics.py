import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from genseg.metrics import ConfusionMatrix, GridArtifacts, per_image_areas, scores_from_areas


def test_hand_computed_case():
    # labels / predictions for K = 3; class 2 absent from both -> skipped; 255 ignored.
    label = torch.tensor([[0, 0, 1, 1], [0, 1, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 0, 2, 0]])
    cm = ConfusionMatrix(3)
    cm.update(pred, label)
    s = cm.compute()
    # class 0: I=2, label=3, pred=3 -> U=4; class 1: I=2, label=3, pred=3 -> U=4; class 2: none.
    assert s["iou"][0] == pytest.approx(0.5)
    assert s["iou"][1] == pytest.approx(0.5)
    assert math.isnan(s["iou"][2])
    assert s["miou"] == pytest.approx(0.5)
    assert s["macc"] == pytest.approx(2 / 3)
    assert s["aacc"] == pytest.approx(4 / 6)


def test_class_only_predicted_counts_as_zero():
    label = torch.tensor([0, 0, 0, 0])
    pred = torch.tensor([0, 0, 1, 1])
    cm = ConfusionMatrix(3)
    cm.update(pred, label)
    s = cm.compute()
    assert s["iou"][1] == 0.0  # predicted but absent from labels: in the mean
    assert s["miou"] == pytest.approx((0.5 + 0.0) / 2)
    assert math.isnan(s["acc"][1])  # no label pixels: accuracy undefined


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_torchmetrics_with_ignore_and_absent_classes(seed):
    g = torch.Generator().manual_seed(seed)
    k = 7
    label = torch.randint(0, k - 2, (4, 16, 16), generator=g)  # classes 5, 6 never labelled
    pred = torch.randint(0, k - 1, (4, 16, 16), generator=g)  # class 6 never predicted
    label[torch.rand(label.shape, generator=g) < 0.2] = 255
    cm = ConfusionMatrix(k)
    for b in range(4):  # accumulated over batches
        cm.update(pred[b : b + 1], label[b : b + 1])
    ours = cm.compute()
    ref = MulticlassJaccardIndex(num_classes=k, ignore_index=255, average="none")(pred, label)
    # torchmetrics gives 0 where union is 0; we give NaN and skip it.
    ours_iou = torch.tensor(ours["iou"])
    present = ~torch.isnan(ours_iou)
    assert torch.allclose(ours_iou[present].float(), ref[present].float(), atol=1e-6)
    assert not present[6]
    assert ours["miou"] == pytest.approx(ref[present].mean().item(), abs=1e-6)


def test_per_image_areas_sum_to_dataset_areas():
    g = torch.Generator().manual_seed(3)
    label = torch.randint(0, 5, (6, 8, 8), generator=g)
    label[:, 0] = 255
    pred = torch.randint(0, 5, (6, 8, 8), generator=g)
    cm = ConfusionMatrix(5)
    cm.update(pred, label)
    per_image = per_image_areas(pred, label, 5)
    totals = {k: v.sum(0).numpy() for k, v in per_image.items()}
    for key, value in cm.areas().items():
        np.testing.assert_array_equal(totals[key], value)
    assert scores_from_areas(**totals)["miou"] == pytest.approx(cm.compute()["miou"])


def test_out_of_range_label_is_named():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"label values \[7\]"):
        cm.update(torch.tensor([0, 1]), torch.tensor([0, 7]))


def test_unmapped_predictions_count_as_wrong():
    """A prediction outside 0..K-1 (a class the test taxonomy lacks) is wrong, never clamped."""
    label = torch.tensor([[0, 0, 1, 1]])
    pred = torch.tensor([[0, 2, 1, 2]])  # 2: unmapped for K = 2
    matrix = ConfusionMatrix(2)
    matrix.update(pred, label)
    areas = matrix.areas()
    assert areas["intersect"].tolist() == [1, 1] and areas["pred_area"].tolist() == [1, 1]
    assert areas["union"].tolist() == [2, 2]
    assert matrix.compute()["miou"] == pytest.approx(0.5)
    per_image = per_image_areas(pred, label, 2)
    assert per_image["union"].tolist() == [[2, 2]] and per_image["pred_area"].tolist() == [[1, 1]]


def test_grid_artifacts_hand_computed_counts():
    pred = torch.tensor([[[0, 1, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]]])
    grid = GridArtifacts(periods=(2, 3))
    grid.update(pred)
    # column pairs j = 0, 1, 2 (3 rows each): 1, 1, 0 changes; row pairs i = 0, 1 (4 columns each): 1, 4.
    # period 2, family (j + 1) % 2: o = 0 holds columns 1|2 and rows 1|2 (7 pairs, 5 changes)
    # period 3: o = 0 columns 2|3 (3, 0); o = 1 columns 0|1, rows 0|1 (7, 2); o = 2 columns 1|2, rows 1|2 (7, 5)
    assert grid.counts() == {2: [(7, 5), (10, 2)], 3: [(3, 0), (7, 2), (7, 5)]}
    ratios = grid.ratios()
    assert ratios[2] == pytest.approx((5 / 7) / (2 / 10)) and ratios[3] == pytest.approx((5 / 7) / (2 / 10))


def block_predictions(size=128, batch=4, classes=5, block=8, noise=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    cells = torch.randint(0, classes, (batch, size // block, size // block), generator=g)
    pred = cells.repeat_interleave(block, 1).repeat_interleave(block, 2)
    flip = torch.rand(pred.shape, generator=g) < noise
    return torch.where(flip, torch.randint(0, classes, pred.shape, generator=g), pred)


def test_grid_artifacts_find_blocks_and_not_noise():
    grid = GridArtifacts()
    grid.update(block_predictions(noise=0.02))
    ratios = grid.ratios()
    assert ratios[8] > 5 and ratios[16] > 1
    noise = GridArtifacts()
    noise.update(torch.randint(0, 5, (4, 128, 128), generator=torch.Generator().manual_seed(0)))
    assert noise.ratios()[8] == pytest.approx(1.0, abs=0.1) and noise.ratios()[16] == pytest.approx(1.0, abs=0.1)


def test_a_grid_at_any_offset_counts():
    """Blocks whose grid starts 4 px in (as FlowSeg's shifted patch grid draws them) score as high as
    blocks on the corner's grid; noise stays near 1."""
    pred = block_predictions(size=136, noise=0.02)
    shifted, corner = GridArtifacts(), GridArtifacts()
    shifted.update(pred[:, 4:132, 4:132])
    corner.update(pred[:, 8:136, 8:136])
    assert shifted.ratios()[8] > 5 and shifted.ratios()[8] == pytest.approx(corner.ratios()[8], rel=0.2)


def test_grid_artifacts_edge_cases():
    stripe = torch.zeros(2, 32, 32, dtype=torch.long)
    stripe[..., 5:] = 1  # one boundary: a single line holds every change, nothing to compare it with
    grid = GridArtifacts()
    grid.update(stripe)
    assert grid.ratios() == {8: None, 16: None}
    blocks = GridArtifacts()
    blocks.update(block_predictions(block=16))  # changes only on the grid lines: nothing to divide by
    assert blocks.ratios() == {8: None, 16: None}
    small = GridArtifacts()
    small.update(torch.randint(0, 3, (1, 5, 5)))  # narrower than a period
    assert small.ratios() == {8: None, 16: None}
    assert GridArtifacts().ratios() == {8: None, 16: None}
