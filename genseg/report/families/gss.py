"""GSS family: the maskige reconstruction upper bound and the prior ablation, ours and reported."""

from __future__ import annotations

from . import Table, caption

RECONSTRUCTION = "Maskige reconstruction upper bound, {split} mIoU (%): labels -> maskige -> frozen posterior -> inverse."
PRIOR = "GSS prior ablation, in-domain {split} mIoU / mAcc (%): token grid d and the auxiliary head (FF inverse)."


def reconstruction(inputs):
    from .. import tables

    return [(tables.gss_reconstruction(inputs.frame, split=inputs.split, reported=inputs.reported),
             caption(RECONSTRUCTION, inputs.split)),
            (tables.reported_block(inputs.reported, "gss_posterior", "dataset"),
             "Reported: GSS Table 2, posterior upper bound mIoU (%).")]


def prior(inputs):
    from .. import tables

    return [(tables.gss_prior(inputs.frame, split=inputs.split), caption(PRIOR, inputs.split)),
            (tables.reported_block(inputs.reported, "gss_prior", "metric"),
             "Reported: GSS Table 3 (ADE20K), with MLA only in the last row.")]


DEFINITIONS = [Table("gss_reconstruction", reconstruction), Table("gss_prior", prior)]
