"""genseg: reference benchmark and ablation suite for generative semantic segmentation."""

__version__ = "0.1.0"
