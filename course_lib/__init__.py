"""Helpers for the similarity-learning course: runtime, data, losses, miners, metrics, training, viz.

Import what a notebook needs from its module, e.g. ``from course_lib.similarity.losses import contrastive_loss``.
"""
__version__ = "0.1.0"
