"""Figures and widgets, one file per family of lessons (plotly and ipywidgets; matplotlib where a still figure
says it better). Nothing here changes a setting when imported: ``use_presentation_style()`` enlarges the type
for a projector."""
from .style import (PALETTE, MATPLOTLIB_PRESENTATION, font_size, use_presentation_style, color_of, plotly_layout,
                   to_numpy, image2d, image_png)
from .curves import smooth, plot_history, plot_roc, plot_metric_comparison, plot_step_comparison
from .compare import plot_comparison
from .images import show_images, show_pairs, show_retrieval
from .diagrams import siamese_diagram, triplet_diagram
from .embeddings import project_2d, embedding_explorer, plot_collapse
from .losses import contrastive_curves, contrastive_loss_explorer, loss_landscapes, triplet_margin_explorer
from .mining import (anchor_view, busiest_anchor, difficulty_explorer, picked_negative_distances,
                    sphere_distance_density, plot_negative_distances)
from .hierarchy import (dendrogram_segments, plot_class_tree, neighbour_table, plot_class_neighbours_static,
                       class_neighbours_explorer, plot_margin_matrix)
from .stn import grid_lines, sampling_grid_explorer, plot_sampling_grid_static, stn_browser, plot_stn_examples_static
from .detection import (anchor_explorer, anchor_summary, plot_anchors_static, detection_viewer,
                       plot_detections_static, plot_pr_curves, plot_shared_cells, plot_anchor_fit,
                       plot_detection_history)
from .pose import draw_pose, show_poses, heatmap_viewer, plot_heatmaps_static, plot_fields
from .source import source_of, show_source
from .proxies import plot_target_logits, plot_convergence, plot_identification, plot_dimension_sweep
from .stereo import (show_stereo_pairs, show_patch_triples, cost_explorer, cost_curves, plot_cost_curves_static,
                     plot_disparity_maps)

__all__ = [
    "show_stereo_pairs", "show_patch_triples", "cost_explorer", "cost_curves", "plot_cost_curves_static",
    "plot_disparity_maps",
    "PALETTE", "MATPLOTLIB_PRESENTATION", "font_size", "use_presentation_style", "color_of", "plotly_layout",
    "to_numpy", "image2d", "image_png", "smooth", "plot_history", "plot_roc", "plot_metric_comparison",
    "plot_step_comparison", "plot_comparison", "show_images", "show_pairs", "show_retrieval", "siamese_diagram",
    "triplet_diagram", "project_2d", "embedding_explorer", "plot_collapse", "contrastive_curves",
    "contrastive_loss_explorer", "loss_landscapes", "triplet_margin_explorer", "anchor_view", "busiest_anchor",
    "difficulty_explorer", "picked_negative_distances", "sphere_distance_density", "plot_negative_distances",
    "dendrogram_segments", "plot_class_tree", "neighbour_table", "plot_class_neighbours_static",
    "class_neighbours_explorer", "plot_margin_matrix", "grid_lines", "sampling_grid_explorer",
    "plot_sampling_grid_static", "stn_browser", "plot_stn_examples_static", "anchor_explorer", "anchor_summary",
    "plot_anchors_static", "detection_viewer", "plot_detections_static", "plot_pr_curves", "plot_shared_cells",
    "plot_anchor_fit", "plot_detection_history", "draw_pose",
    "show_poses", "heatmap_viewer", "plot_heatmaps_static", "plot_fields", "source_of", "show_source",
    "plot_target_logits", "plot_convergence", "plot_identification", "plot_dimension_sweep",
]
