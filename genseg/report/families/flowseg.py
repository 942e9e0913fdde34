"""FlowSeg family: the sampling-steps sweep, REPA (reported only), convergence and the vector field."""

from __future__ import annotations

from . import Figure, Table, caption

STEPS = "FlowSeg in-domain {split} mIoU (%) against Euler sampling steps; last row: reported by the paper."
REPA = "FlowSeg REPA ablation (reported only)."
REPA_NOTE = ("Not reproduced: REPA aligns a block with a frozen self-supervised encoder, whose weights "
             "are not available offline here.")


def steps(inputs):
    from .. import tables

    table = tables.flowseg_steps(inputs.frame, split=inputs.split)
    return [(tables.steps_with_reported(table, inputs.reported), caption(STEPS, inputs.split))]


def repa(inputs):
    from .. import tables

    return [(tables.reported_block(inputs.reported, "flowseg_repa", "setting"), f"{REPA} {REPA_NOTE}")]


def steps_figure(inputs, stem):
    from .. import figures

    return figures.flowseg_steps(inputs.frame, stem, split=inputs.split, reported=inputs.reported)


def convergence_figure(inputs, stem):
    """Validation curves of the methods feeding ``flowseg_convergence`` (no ablation variants)."""
    from ...methods import methods_feeding
    from .. import figures, tables

    curves = tables.curve_runs(inputs.curves, inputs.frame)
    return figures.convergence(tables.methods_only(curves[curves.method.isin(methods_feeding("flowseg_convergence"))]), stem)


def vector_field(inputs, stem):
    from ..vector_field import vector_field_figure

    return vector_field_figure(stem)


DEFINITIONS = [
    Table("flowseg_steps", steps),
    Figure("flowseg_steps", steps_figure),
    Table("flowseg_repa", repa),
    Figure("flowseg_convergence", convergence_figure),
    Figure("vector_field", vector_field),
]
