"""Ablations family: a table (and, with ``figure: bar``, a figure) per ablation file, named by its ``feeds``."""

from __future__ import annotations

from . import Figure, Table, caption

VAL_NOTE = (" Val mIoU (selection): the last validation of each run (the validation split, never test),"
            " the number a design is chosen by.")


def rows_of(inputs, ablation: dict) -> list[dict]:
    """``{label, experiment}`` rows of one ablation (ablations.json)."""
    return [r for r in inputs.ablations["rows"] if r["ablation"] == ablation["name"]]


def table(ablation: dict):
    def blocks(inputs):
        from .. import tables
        from . import split_words

        word, _ = split_words(inputs.split)
        text = (ablation["description"] or f"Ablation {ablation['name']}: in-domain {word} mIoU (%).") + VAL_NOTE
        made = tables.ablation_table(inputs.frame, ablation, rows_of(inputs, ablation), inputs.reported,
                                     split=inputs.split, curves=inputs.curves)
        return [(made, caption(text.replace("{", "{{").replace("}", "}}"), inputs.split))]

    return blocks


def figure(ablation: dict):
    def draw(inputs, stem):
        from .. import figures

        return figures.ablation_bars(inputs.frame, rows_of(inputs, ablation), stem, ablation["description"], split=inputs.split)

    return draw


def definitions(ablations: list[dict]) -> list[Table | Figure]:
    """The outputs of each ablation file (dicts with ``name``, ``feeds``, ``figure``, ``description``)."""
    out: list[Table | Figure] = []
    for ablation in ablations:
        out.append(Table(ablation["feeds"], table(ablation)))
        if ablation["figure"] != "none":
            out.append(Figure(ablation["feeds"], figure(ablation)))
    return out
