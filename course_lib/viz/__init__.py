"""Figures and widgets. Each interactive view has a static matplotlib twin (``*_static``)."""
from .curves import (plot_history, plot_history_static, plot_metric_comparison, plot_metric_comparison_static,
                     plot_roc, plot_roc_static, plot_step_comparison, plot_step_comparison_static, smooth)
from .embeddings import embedding_explorer, plot_collapse, plot_embedding_static, plot_snapshots_static, project_2d
from .images import show_images, show_pairs, show_retrieval
from .losses import (contrastive_curves, contrastive_loss_explorer, loss_landscapes, plot_contrastive_loss_static,
                     plot_triplet_vs_contrastive_static, triplet_margin_explorer)
from .compare import plot_comparison, plot_comparison_static
from .diagrams import siamese_diagram, triplet_diagram
from .mining import (anchor_view, busiest_anchor, difficulty_explorer, picked_negative_distances, plot_difficulty_static,
                     plot_negative_distances, sphere_distance_density)
from .hierarchy import (class_neighbours_explorer, dendrogram_segments, neighbour_table, plot_class_neighbours_static,
                        plot_class_tree, plot_class_tree_static, plot_margin_matrix, plot_margin_matrix_static)
from .stn import (grid_lines, plot_sampling_grid_static, plot_stn_examples_static, sampling_grid_explorer,
                  stn_browser)
from .detection import (anchor_explorer, anchor_summary, detection_viewer, plot_anchors_static, plot_detections_static,
                        plot_pr_curves)
from .pose import draw_pose, heatmap_viewer, plot_heatmaps_static, show_poses
from .style import FONT_SIZE, PALETTE, image_png, plotly_layout

__all__ = [
    "plot_history", "plot_history_static", "plot_metric_comparison", "plot_metric_comparison_static",
    "plot_roc", "plot_roc_static", "plot_step_comparison", "plot_step_comparison_static", "smooth",
    "embedding_explorer", "plot_embedding_static", "plot_snapshots_static", "project_2d",
    "show_images", "show_pairs", "show_retrieval",
    "contrastive_curves", "contrastive_loss_explorer", "loss_landscapes", "plot_contrastive_loss_static",
    "plot_triplet_vs_contrastive_static", "triplet_margin_explorer",
    "anchor_view", "busiest_anchor", "difficulty_explorer", "plot_difficulty_static", "picked_negative_distances",
    "plot_negative_distances", "sphere_distance_density", "plot_comparison", "plot_comparison_static",
    "siamese_diagram", "triplet_diagram", "plot_collapse",
    "class_neighbours_explorer", "dendrogram_segments", "neighbour_table", "plot_class_neighbours_static",
    "plot_class_tree", "plot_class_tree_static", "plot_margin_matrix", "plot_margin_matrix_static",
    "grid_lines", "plot_sampling_grid_static", "plot_stn_examples_static", "sampling_grid_explorer", "stn_browser",
    "anchor_explorer", "anchor_summary", "detection_viewer", "plot_anchors_static", "plot_detections_static",
    "plot_pr_curves", "draw_pose", "heatmap_viewer", "plot_heatmaps_static", "show_poses", "FONT_SIZE", "PALETTE", "image_png", "plotly_layout",
]
