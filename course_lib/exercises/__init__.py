"""The exercise checkers: ``check_<idea>(your_function)`` runs it on cases against the reference and says,
in words, what is wrong. One file per family of lessons; the machinery is in :mod:`.harness`.

    from course_lib.exercises import check_contrastive_loss, use_if_correct
"""
from .harness import expect_at_least, use_if_correct
from .similarity import (check_average_precision_at_r, check_batch_all_loss, check_batch_hard_loss,
                         check_contrastive_loss, check_pairwise_distances, check_precision_at_1, check_semi_hard_mask,
                         check_triplet_loss)
from .hierarchy import check_htl_loss, check_nearest_classes
from .stn import check_affine_theta, check_bilinear_weights, check_spatial_transformer
from .detection import check_anchor_labels, check_box_iou, check_decode_boxes, check_encode_boxes, check_nms
from .proxies import check_arcface_loss, check_normalized_softmax_loss, check_proxy_nca_loss
from .pose import check_pck, check_heatmap_target, check_soft_argmax
from .stereo import check_correlation_1d, check_ncc_cost

__all__ = [
    "check_correlation_1d", "check_ncc_cost",
    "use_if_correct", "expect_at_least",
    "check_pairwise_distances", "check_contrastive_loss", "check_precision_at_1", "check_triplet_loss",
    "check_average_precision_at_r", "check_batch_hard_loss", "check_semi_hard_mask", "check_batch_all_loss",
    "check_htl_loss", "check_nearest_classes",
    "check_affine_theta", "check_bilinear_weights", "check_spatial_transformer",
    "check_box_iou", "check_encode_boxes", "check_anchor_labels", "check_decode_boxes", "check_nms",
    "check_heatmap_target", "check_soft_argmax", "check_pck",
    "check_normalized_softmax_loss", "check_arcface_loss", "check_proxy_nca_loss",
]
