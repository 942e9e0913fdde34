"""What a method says about itself to the workflow and the report (:class:`MethodSpec`).

Each method module defines one spec beside its options and builder; ``genseg.methods.METHODS``
collects them. The layers above read the spec and never test a method's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

STAGES = ("train", "posterior_learning", "inverse_stage")  # the workflow rules that train a run


def plain_stage(options: dict) -> str:
    return "train"


UNCERTAINTY = ("softmax", "samples")  # how a method gives a per-pixel predictive distribution


def no_uncertainty(options: dict) -> str:
    return ""


def softmax_uncertainty(options: dict) -> str:
    """A discriminative model: its per-pixel class probabilities (``SegmentationMethod.probabilities``)."""
    return "softmax"


@dataclass(frozen=True)
class MethodSpec:
    """A method's options dataclass, builder and self-description.

    ``display_name``: the paper's name, or a function of the run's model options (GSS names
    itself by its inverse). ``stage``: model options -> the workflow rule that trains the run
    (one of :data:`STAGES`); runs it starts from are the files its options name under
    ``{runs}``. ``oracle``: an upper bound that reads the labels (left out of the main tables).
    ``sweeps``: sweepable predict options and their default values (``evaluate.sweeps``).
    ``tables``: the method-specific report tables and figures its runs feed. ``objective``: model
    options -> the name of the training objective a run uses, for methods with several (the report
    pairs runs of one model that differ in it); None: one objective.

    ``uncertainty``: model options -> how a run gives a predictive distribution per pixel
    (``genseg uncertainty``): ``softmax`` (its :meth:`probabilities`), ``samples`` (K label maps
    of ``predict(images, **sample_options, seed=s)``, s = seed .. seed + K - 1) or "" (none:
    oracles, deterministic generative runs)."""

    options: type
    build: Callable[..., Any]
    display_name: str | Callable[[dict], str]
    stage: Callable[[dict], str] = plain_stage
    oracle: bool = False
    sweeps: dict[str, tuple] = field(default_factory=dict)
    tables: tuple[str, ...] = ()
    objective: Callable[[dict], str] | None = None
    uncertainty: Callable[[dict], str] = no_uncertainty
    sample_options: dict = field(default_factory=dict)

    def display(self, options: dict) -> str:
        """The name tables show for a run with these model options."""
        return self.display_name(options) if callable(self.display_name) else self.display_name

    def objective_name(self, options: dict) -> str:
        """The run's training objective by name; "" for a method with one."""
        return self.objective(options) if self.objective else ""
