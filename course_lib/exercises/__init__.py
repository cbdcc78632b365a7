"""The exercise checkers: ``check_<idea>(your_function)`` runs it on cases against the reference and says,
in words, what is wrong. One file per family of lessons; the machinery is in :mod:`.harness`.

    from course_lib.exercises import check_contrastive_loss, use_if_correct
"""
from .detection import check_box_iou, check_encode_boxes, check_anchor_labels
from .harness import use_if_correct, expect_at_least
from .pose import check_soft_argmax, check_pck
from .similarity import (check_pairwise_distances, check_contrastive_loss, check_precision_at_1, check_triplet_loss,
                        check_average_precision_at_r, check_batch_hard_loss, check_semi_hard_mask,
                        check_batch_all_loss, check_dynamic_margin, check_nearest_classes)
from .stn import check_affine_theta, check_bilinear_weights

__all__ = [
    "check_box_iou", "check_encode_boxes", "check_anchor_labels", "use_if_correct", "expect_at_least",
    "check_soft_argmax", "check_pck", "check_pairwise_distances", "check_contrastive_loss",
    "check_precision_at_1", "check_triplet_loss", "check_average_precision_at_r", "check_batch_hard_loss",
    "check_semi_hard_mask", "check_batch_all_loss", "check_dynamic_margin", "check_nearest_classes",
    "check_affine_theta", "check_bilinear_weights",
]
