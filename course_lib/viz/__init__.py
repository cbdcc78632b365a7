"""Figures and widgets. Each interactive view has a static matplotlib twin (``*_static``)."""
from .curves import plot_history, plot_history_static, plot_roc, plot_roc_static, smooth
from .embeddings import embedding_explorer, plot_embedding_static, plot_snapshots_static, project_2d
from .images import show_images, show_pairs
from .losses import contrastive_curves, contrastive_loss_explorer, plot_contrastive_loss_static
from .style import FONT_SIZE, PALETTE, image_png, plotly_layout

__all__ = [
    "plot_history", "plot_history_static", "plot_roc", "plot_roc_static", "smooth",
    "embedding_explorer", "plot_embedding_static", "plot_snapshots_static", "project_2d",
    "contrastive_curves", "contrastive_loss_explorer", "plot_contrastive_loss_static",
    "show_images", "show_pairs",
    "FONT_SIZE", "PALETTE", "image_png", "plotly_layout",
]
