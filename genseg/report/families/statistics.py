"""Statistics family: paired bootstrap tests between configured experiment pairs."""

from __future__ import annotations

from . import Table, caption

PAIRED = ("Paired bootstrap over {split} images (2000 resamples): mIoU difference in points, its 95% CI and "
          "two-sided p-value. Seed all (n): the pair's n shared seeds, paired by seed as well as by image (seeds and "
          "images resampled; the mean difference over seeds).")


def paired_tests(inputs):
    from .. import tables

    paired = tables.select_split(inputs.paired, inputs.split) if "split" in inputs.paired else inputs.paired
    return [(tables.paired_tests(paired), caption(PAIRED, inputs.split, ci=False))]


DEFINITIONS = [Table("paired_tests", paired_tests)]
