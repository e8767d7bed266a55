"""Accuracy charts: top-1 against MACs and params, ILSVRC winners."""
