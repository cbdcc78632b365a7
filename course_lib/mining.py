"""Which pairs and triplets to train on. Miners look at a (B, B) distance matrix and return indices."""
from __future__ import annotations

from .distances import pairwise_distances

__all__ = ["pairwise_distances"]
