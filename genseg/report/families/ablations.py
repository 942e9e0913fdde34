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


SPACING = (" Min distance: the smallest Euclidean distance between two class centroids, each axis in [-1, 1]"
           " (genseg.encodings.encoding_min_distance). Budget: {budget} (iterations x batch), one seed;"
           " in-domain mIoU: val from each run's last validation, test on the {split} split.")
CORRELATION = ("Correlation of min centroid distance with val and test mIoU: Spearman's rho and Pearson's r,"
               " 95% percentile-bootstrap CI over runs (2000 resamples; within N: values centred per N,"
               " resampled within N). A handful of points per N: read the CIs.")


def spacing_table(ablation: dict):
    """The spacing study: a row per run (encoding, N, min distance, val and test mIoU), then the
    correlations (:mod:`genseg.report.spacing`)."""
    def blocks(inputs):
        from .. import spacing
        from . import split_words

        data = spacing.points(inputs.frame, inputs.curves, rows_of(inputs, ablation), split=inputs.split)
        word, note = split_words(inputs.split)
        budget = " / ".join(sorted(set(data.budget))) or "–"
        head = (ablation["description"] or f"Ablation {ablation['name']}.") + SPACING.format(budget=budget, split=word) + note
        return [(spacing.table(data), head), (spacing.correlations(data), CORRELATION)]

    return blocks


def spacing_figure(ablation: dict):
    def draw(inputs, stem):
        from .. import figures, spacing

        data = spacing.points(inputs.frame, inputs.curves, rows_of(inputs, ablation), split=inputs.split)
        return figures.spacing_scatter(data, stem, ablation["description"])

    return draw


def definitions(ablations: list[dict]) -> list[Table | Figure]:
    """The outputs of each ablation file (dicts with ``name``, ``feeds``, ``figure``, ``description``):
    its table, and with ``figure: bar`` its bars; ``figure: spacing`` makes both the spacing study's."""
    out: list[Table | Figure] = []
    for ablation in ablations:
        if ablation["figure"] == "spacing":
            out += [Table(ablation["feeds"], spacing_table(ablation)), Figure(ablation["feeds"], spacing_figure(ablation))]
            continue
        out.append(Table(ablation["feeds"], table(ablation)))
        if ablation["figure"] != "none":
            out.append(Figure(ablation["feeds"], figure(ablation)))
    return out
