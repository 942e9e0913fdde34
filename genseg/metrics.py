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


# --- Predictive uncertainty: a per-pixel distribution p (softmax, or the vote frequencies of K samples) ---

ECE_BINS = 15  # equal-width confidence bins of the expected calibration error (Guo et al., 2017)
AUROC_BINS = 4096  # equal-width entropy bins over [0, log C] of the streamed AUROC


def vote_frequencies(samples: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, B, H, W) label maps -> (B, C, H, W) empirical distribution p_c = #{k: y_k = c} / K
    (labels outside 0..C-1 count for no class)."""
    valid = (samples >= 0) & (samples < num_classes)
    onehot = torch.nn.functional.one_hot(samples.clamp(0, num_classes - 1).long(), num_classes) * valid[..., None]
    return onehot.sum(0).permute(0, 3, 1, 2).float() / samples.shape[0]


def entropy(p: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """H(p) = -sum_c p_c log p_c in nats (0 log 0 = 0) along ``dim``: 0 for a unanimous vote, log K
    for K votes on K different classes, log C for a uniform distribution over C classes."""
    p = p.float()
    return -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(dim)


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """AUROC = P(s+ > s-) + P(s+ = s-) / 2 over all (positive, negative) pairs (Mann-Whitney U / n+ n-,
    ties counted half); NaN without positives or negatives. Exact, by average ranks."""
    scores, positives = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(positives, dtype=bool).ravel()
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(average, counts)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auroc_from_histograms(positive: np.ndarray, negative: np.ndarray) -> float:
    """AUROC from the score histograms of positives and negatives over the same increasing bins:
    sum_b pos_b (neg below b + neg_b / 2) / (n+ n-), a tie being a shared bin. Equals :func:`auroc`
    when distinct scores never share a bin; NaN without positives or negatives."""
    positive, negative = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    n_pos, n_neg = positive.sum(), negative.sum()
    if not n_pos or not n_neg:
        return float("nan")
    below = np.cumsum(negative) - negative
    return float((positive * (below + negative / 2)).sum() / (n_pos * n_neg))


def expected_calibration_error(count: np.ndarray, confidence_sum: np.ndarray, correct_sum: np.ndarray) -> float:
    """ECE = sum_b (n_b / N) |acc_b - conf_b| over confidence bins b (n_b pixels, acc_b their accuracy,
    conf_b their mean confidence); NaN for no pixels."""
    count = np.asarray(count, dtype=np.float64)
    total = count.sum()
    if not total:
        return float("nan")
    gap = np.abs(np.asarray(correct_sum, dtype=np.float64) - np.asarray(confidence_sum, dtype=np.float64))  # n_b |acc_b - conf_b|
    return float(gap.sum() / total)


class UncertaintyMeter:
    """Streams a split's predictive distributions p (B, C, H, W) against labels (B, H, W); ignore pixels dropped.

    The prediction is argmax_c p_c (the majority vote; ties: the lowest class id), its confidence
    max_c p_c, its uncertainty H(p) (:func:`entropy`). Kept: the confusion matrices of the
    prediction and of an optional single prediction (one sample), entropy histograms of wrong and
    right pixels (:data:`AUROC_BINS` bins over [0, log C]: AUROC of entropy for "wrong"), and
    per-confidence-bin counts, confidence and accuracy sums (:data:`ECE_BINS` equal-width bins)."""

    def __init__(self, num_classes: int, ignore_index: int = 255, device=None):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.majority = ConfusionMatrix(num_classes, ignore_index, device)
        self.single = ConfusionMatrix(num_classes, ignore_index, device)
        self.top = float(np.log(num_classes)) if num_classes > 1 else 1.0
        self.wrong_hist = torch.zeros(AUROC_BINS, dtype=torch.float64, device=device)
        self.right_hist = torch.zeros(AUROC_BINS, dtype=torch.float64, device=device)
        self.bins = {k: torch.zeros(ECE_BINS, dtype=torch.float64, device=device) for k in ("count", "confidence", "correct")}
        self.entropy_sum, self.pixels = 0.0, 0

    def update(self, p: torch.Tensor, labels: torch.Tensor, single: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Add a batch; returns (prediction, entropy map), each (B, H, W)."""
        confidence, pred = p.max(1)
        ent = entropy(p)
        self.majority.update(pred, labels)
        self.single.update(pred if single is None else single, labels)
        valid = labels != self.ignore_index
        h, conf, wrong = ent[valid].double(), confidence[valid].double(), (pred[valid] != labels[valid])
        index = (h / self.top * AUROC_BINS).long().clamp(0, AUROC_BINS - 1)
        self.wrong_hist += torch.bincount(index[wrong], minlength=AUROC_BINS).to(self.wrong_hist)
        self.right_hist += torch.bincount(index[~wrong], minlength=AUROC_BINS).to(self.right_hist)
        b = (conf * ECE_BINS).long().clamp(0, ECE_BINS - 1)
        self.bins["count"] += torch.bincount(b, minlength=ECE_BINS).to(self.bins["count"])
        self.bins["confidence"] += torch.bincount(b, weights=conf, minlength=ECE_BINS)
        self.bins["correct"] += torch.bincount(b, weights=(~wrong).double(), minlength=ECE_BINS)
        self.entropy_sum += float(h.sum())
        self.pixels += int(valid.sum())
        return pred, ent

    def compute(self) -> dict:
        """miou / aacc of the prediction, miou_single, auroc, ece, mean_entropy (nats), error_rate, pixels, and
        zero_entropy_errors: the share of wrong pixels in the lowest entropy bin (H < log C / :data:`AUROC_BINS`;
        for votes: unanimous), errors no entropy threshold can flag."""
        scores, single = self.majority.compute(), self.single.compute()
        wrong, right = self.wrong_hist.cpu().numpy(), self.right_hist.cpu().numpy()
        bins = {k: v.cpu().numpy() for k, v in self.bins.items()}
        return {
            "miou": scores["miou"], "aacc": scores["aacc"], "miou_single": single["miou"],
            "auroc": auroc_from_histograms(wrong, right),
            "ece": expected_calibration_error(bins["count"], bins["confidence"], bins["correct"]),
            "mean_entropy": self.entropy_sum / self.pixels if self.pixels else float("nan"),
            "error_rate": float(wrong.sum() / self.pixels) if self.pixels else float("nan"),
            "zero_entropy_errors": float(wrong[0] / wrong.sum()) if wrong.sum() else float("nan"),
            "pixels": self.pixels,
        }
