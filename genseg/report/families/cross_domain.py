"""Cross-domain family: GSS Table 6's protocol, ours and reported."""

from __future__ import annotations

from . import Table, caption

CROSS_DOMAIN = ("Cross-domain protocol (GSS Table 6 layout): {split} mIoU (%) on each unseen domain, their harmonic mean, "
                "and in-domain; budget: training iterations x batch (+ the runs it starts from).")


def cross_domain(inputs):
    from .. import tables

    frame, split = inputs.frame, inputs.split
    return [(tables.cross_domain(frame, split=split), caption(CROSS_DOMAIN, split) + tables.unreachable_note(frame, split)),
            (tables.reported_block(inputs.reported, "gss_cross_domain", "metric_h"),
             "Reported: GSS Table 6 (MSeg cross-domain), mIoU (%).")]


DEFINITIONS = [Table("cross_domain", cross_domain)]
