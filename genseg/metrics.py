"""Segmentation metrics with mmsegmentation's conventions.

Areas (intersection, union, prediction, label) are summed per class over the whole
split; IoU_k = I_k / U_k, mIoU = nanmean_k IoU_k (a class absent from both prediction
and labels has U_k = 0 and is skipped), Acc_k = I_k / label_k, mAcc = nanmean_k Acc_k,
aAcc = sum_k I_k / sum_k label_k. Pixels whose label is ``ignore_index`` are dropped.
A prediction outside 0..K-1 (a class the test taxonomy does not have, see
:mod:`genseg.data.taxonomy`) is wrong wherever the label is valid: it adds to the label's
union but to no class's prediction area.

:class:`GridArtifacts` needs no labels: it measures how much a prediction's label changes
line up with a patch grid (at any offset).
"""

from __future__ import annotations

import numpy as np
import torch


def _column(pred: torch.Tensor, k: int) -> torch.Tensor:
    """Prediction as a confusion-matrix column: 0..K-1, or K for anything outside."""
    return torch.where((pred >= 0) & (pred < k), pred, torch.full_like(pred, k))


def _valid_pairs(pred: torch.Tensor, label: torch.Tensor, num_classes: int, ignore_index: int):
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != label shape {tuple(label.shape)}")
    valid = label != ignore_index
    bad = valid & ((label < 0) | (label >= num_classes))
    if bad.any():
        values = torch.unique(label[bad]).tolist()
        raise ValueError(f"label values {values} outside 0..{num_classes - 1} (ignore {ignore_index})")
    return pred, label, valid


class ConfusionMatrix:
    """Dataset-level confusion matrix (rows: label, columns: prediction), on any device.

    Column K collects predictions outside 0..K-1 (unmapped classes)."""

    def __init__(self, num_classes: int, ignore_index: int = 255, device: torch.device | str | None = None):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes + 1, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, label: torch.Tensor) -> None:
        """Add a batch of integer predictions and labels of the same shape."""
        pred, label, valid = _valid_pairs(pred, label, self.num_classes, self.ignore_index)
        k = self.num_classes
        column = _column(pred[valid].long(), k)
        index = label[valid].long() * (k + 1) + column
        self.matrix += torch.bincount(index, minlength=k * (k + 1)).reshape(k, k + 1).to(self.matrix.device)

    def areas(self) -> dict[str, np.ndarray]:
        m = self.matrix.double().cpu().numpy()
        intersect = np.diag(m[:, :-1])
        label_area = m.sum(1)
        pred_area = m[:, :-1].sum(0)
        return {
            "intersect": intersect,
            "union": label_area + pred_area - intersect,
            "pred_area": pred_area,
            "label_area": label_area,
        }

    def compute(self) -> dict:
        return scores_from_areas(**self.areas())


def scores_from_areas(intersect, union, pred_area, label_area) -> dict:
    """IoU per class, mIoU, Acc per class, mAcc, aAcc from per-class area sums."""
    intersect = np.asarray(intersect, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    label_area = np.asarray(label_area, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, intersect / union, np.nan)
        acc = np.where(label_area > 0, intersect / label_area, np.nan)
        total = label_area.sum()
        aacc = float(intersect.sum() / total) if total > 0 else float("nan")
    return {
        "miou": _nanmean(iou),
        "macc": _nanmean(acc),
        "aacc": aacc,
        "iou": iou.tolist(),
        "acc": acc.tolist(),
    }


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def per_image_areas(pred: torch.Tensor, label: torch.Tensor, num_classes: int, ignore_index: int = 255) -> dict[str, torch.Tensor]:
    """Per-image, per-class areas for a batch (B, H, W): each (B, K) int64.

    Stored beside each evaluation so paired bootstraps over images need no re-inference.
    """
    pred, label, valid = _valid_pairs(pred, label, num_classes, ignore_index)
    batch = label.shape[0]
    k = num_classes
    offset = torch.arange(batch, device=label.device).view(-1, *[1] * (label.dim() - 1)) * k
    lab = (label.long() + offset)[valid]
    in_range = valid & (pred >= 0) & (pred < k)
    prd = (pred.long() + offset)[in_range]
    hit = label[valid] == pred[valid]
    n = batch * k
    label_area = torch.bincount(lab, minlength=n).view(batch, k)
    pred_area = torch.bincount(prd, minlength=n).view(batch, k)
    intersect = torch.bincount(lab[hit], minlength=n).view(batch, k)
    return {
        "intersect": intersect,
        "union": label_area + pred_area - intersect,
        "pred_area": pred_area,
        "label_area": label_area,
    }


class GridArtifacts:
    """Patch-grid artifacts of integer predictions (B, H, W), summed over a split, on any device.

    A horizontal pair is columns (j, j+1), j = 0..W-2, on line family o of period P when
    (j + 1) % P == o (o = 0: the grid laid from the image corner); vertical pairs likewise over
    rows. For each o, over both directions and all images, r_P(o) = (changes / pairs on family o)
    / (changes / pairs elsewhere), a change being a pair whose two labels differ; ratio_P is the
    largest r_P(o): a grid at any offset counts (a model that shifts its patch grid, e.g.
    FlowSeg's ``grid_shift``, draws its seams off the corner's lines). 1.0 means no grid (noise
    gives slightly above 1, the maximum of P estimates), > 1 boundaries that prefer one family of
    lines. None when the images span no full period, no pair changes, or one family holds every
    change (nothing to divide by)."""

    def __init__(self, periods=(8, 16)):
        self.periods = tuple(periods)
        self.pairs: dict[int, list[int]] | None = None  # per period: pairs on each family o (from the shapes)
        self.changes = None  # per period: int64 (P,) changes on each family o, on the predictions' device

    def update(self, pred: torch.Tensor) -> None:
        b, h, w = pred.shape
        cols = (pred[..., :, 1:] != pred[..., :, :-1]).sum((0, 1))  # changes between columns j and j+1
        rows = (pred[..., 1:, :] != pred[..., :-1, :]).sum((0, 2))  # between rows i and i+1
        pairs, changes = {}, {}
        for p in self.periods:
            fam_c, fam_r = (torch.arange(1, w) % p, torch.arange(1, h) % p)  # family of pair j: (j + 1) % P
            changes[p] = (torch.zeros(p, dtype=torch.long, device=pred.device).index_add_(0, fam_c.to(pred.device), cols)
                          .index_add_(0, fam_r.to(pred.device), rows))
            pairs[p] = (torch.bincount(fam_c, minlength=p) * b * h + torch.bincount(fam_r, minlength=p) * b * w).tolist()
        if self.pairs is None:
            self.pairs, self.changes = pairs, changes
        else:
            self.pairs = {p: [a + c for a, c in zip(self.pairs[p], pairs[p])] for p in self.periods}
            self.changes = {p: self.changes[p] + changes[p].to(self.changes[p].device) for p in self.periods}

    def counts(self) -> dict[int, list[tuple[int, int]]]:
        """{period: [(pairs, changes) on family o for o = 0..P-1]}."""
        if self.pairs is None:
            return {p: [(0, 0)] * p for p in self.periods}
        return {p: list(zip(self.pairs[p], self.changes[p].tolist())) for p in self.periods}

    def ratios(self) -> dict[int, float | None]:
        out = {}
        for p, families in self.counts().items():
            all_pairs, all_changes = sum(n for n, _ in families), sum(c for _, c in families)
            ratios = [] if all(n for n, _ in families) else None  # images narrower than a period: no ratio
            for pairs, changes in families if ratios is not None else ():
                off_pairs, off_changes = all_pairs - pairs, all_changes - changes
                if not off_changes:  # every change on this family (or none at all): undefined
                    ratios = None
                    break
                ratios.append((changes / pairs) / (off_changes / off_pairs))
            out[p] = max(ratios) if ratios else None
        return out
