"""Datasets: the embedded synthetic scenes and the on-disk layouts the benchmark reads."""
