"""Uncertainty family: how well each method's per-pixel entropy ranks its errors, and its calibration
(``genseg uncertainty``; the runs of the workflow config's ``uncertainty`` block)."""

from __future__ import annotations

from . import Figure, Table, caption

UNCERTAINTY = ("Per-pixel uncertainty on the in-domain {split} images (the first Images of the split). The predictive "
               "distribution p of a pixel: the softmax (discriminative methods; Mask2Former: its semantic scores normalised "
               "over the classes) or the vote frequencies of K samples (FlowSeg from noise; GSS with tokens drawn from its "
               "prior at temperature 1), seeds s..s+K-1 (uncertainty.sample_seed s). mIoU (argmax): of argmax p, the majority vote; mIoU (1 sample): of one "
               "draw. Mean entropy: H(p) in nats. AUROC: of H(p) for the event \"argmax p is wrong\" (50: no ranking). ECE: of "
               "max p, 15 equal-width bins. Errors at H = 0: the share of wrong pixels with zero entropy (votes: unanimous), which no entropy threshold flags. Ignore pixels excluded. Images/s: of the K draws together; Wall: the step per run.")


def uncertainty_table(inputs):
    from .. import tables

    return [(tables.uncertainty(inputs.uncertainty), caption(UNCERTAINTY, inputs.split, ci=False))]


def uncertainty_figure(inputs, stem):
    from .. import figures

    frame = inputs.uncertainty
    order = list(dict.fromkeys(frame.sort_values(["kind", "experiment"]).experiment)) if not frame.empty else None
    return figures.uncertainty_maps(inputs.uncertainty_samples, stem, experiments=order)


DEFINITIONS = [Table("uncertainty", uncertainty_table), Figure("uncertainty", uncertainty_figure)]
