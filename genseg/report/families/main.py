"""Main family: the main results, mIoU by domain, latency, convergence (figure and table) and qualitative samples."""

from __future__ import annotations

from . import Figure, Table, caption

MAIN_RESULTS = ("Main results (FlowSeg Table 1 layout): in-domain {split} mIoU (%) reproduced on this config's data, "
                "and the papers' numbers for the same method (reported; their backbone, pretraining and dataset in brackets). "
                "Budget: training iterations x batch of the run, and of the runs it starts from (+ ...); train wall: the run's own "
                "training, seconds.")
MIOU_BY_DOMAIN = ("{Split} mIoU (%) on each domain; models trained on the in-domain one. Grid ratio (in-domain): "
                  "rate of label changes between neighbouring pixels across the 8 / 16 px patch-grid lines over the rate elsewhere "
                  "(1.0: no grid; mean over seeds).")

CONVERGENCE = ("Convergence: training iterations and wall seconds until a run first reaches 90% of its final validation mIoU "
               "(the first validation point with val mIoU >= 0.9 x the last one's; resolution: the validation interval), "
               "and that final val mIoU (%); one row per experiment, its method as its spec names it; Variant: the training "
               "objective of a method with several, the ablation value of an ablation variant. Seeds: the n runs; several: "
               "mean [95% bootstrap CI over seeds], one: its value.")


def main_results(inputs):
    from .. import tables

    return [(tables.main_results(inputs.frame, inputs.reported, split=inputs.split), caption(MAIN_RESULTS, inputs.split))]


def miou_by_domain(inputs):
    from .. import tables

    return [(tables.miou_by_domain(inputs.frame, split=inputs.split), caption(MIOU_BY_DOMAIN, inputs.split))]


def miou_by_domain_figure(inputs, stem):
    from .. import figures

    return figures.miou_by_domain(inputs.frame, stem, split=inputs.split)


def latency_figure(inputs, stem):
    from .. import figures

    return figures.latency(inputs.frame, stem, split=inputs.split)


def convergence_figure(inputs, stem):
    from .. import figures, tables

    return figures.convergence(tables.curve_runs(inputs.curves, inputs.frame), stem)


def convergence_table(inputs):
    """Iterations (and wall seconds) to 90% of the final val mIoU, beside the convergence figure."""
    from .. import tables

    return [(tables.convergence(tables.curve_runs(inputs.curves, inputs.frame)), CONVERGENCE)]


def qualitative_figure(inputs, stem):
    """Methods proper (no upper bounds, no ablation variants) on the first in-domain test domain."""
    from .. import figures, tables

    if not inputs.samples:
        return []
    methods = tables.methods_only(inputs.frame)
    in_domain = sorted(methods[methods.in_domain.astype(bool)].domain.unique())
    return figures.qualitative(inputs.samples, stem, domain=in_domain[0] if in_domain else None,
                               experiments=sorted(methods.experiment.unique()))


DEFINITIONS = [
    Table("main_results", main_results),
    Table("miou_by_domain", miou_by_domain),
    Figure("miou_by_domain", miou_by_domain_figure),
    Figure("latency", latency_figure),
    Figure("convergence", convergence_figure),
    Table("convergence", convergence_table),
    Figure("qualitative", qualitative_figure),
]
