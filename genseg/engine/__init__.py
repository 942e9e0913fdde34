"""Training and evaluation loops, checkpoints, provenance."""
