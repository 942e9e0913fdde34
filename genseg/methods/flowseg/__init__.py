"""FlowSeg: flow matching in a centroid space with a reshaped velocity target (arXiv 2603.19218)."""
