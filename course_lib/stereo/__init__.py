"""Lesson 09: learning to compare patches. Synthetic rectified stereo pairs with a known disparity, hand-crafted
matching costs (SAD, NCC, census) as cost volumes, winner-takes-all and the error rate, the correlation layer,
and the patch networks that learn a cost (MC-CNN-fast, 2-channel, Siamese + decision, pseudo-Siamese) with MC-CNN's
training pairs.

Convention: the left view is the reference; its pixel (y, x) at disparity d >= 0 matches the right view's pixel
(y, x - d). Cost volumes are (B, D, H, W) for d = 0 ... D - 1, lower is better, +inf where x - d < 0.
"""
from .data import StereoPairs, make_stereo_pairs, warp_right
from .costs import (shifted_right, sad_cost_volume, ncc_cost, ncc_cost_volume, census_transform, census_cost_volume,
                    winner_takes_all, error_rate, chance_error, disparity_errors, disparity_errors_per_pair)
from .correlation import correlation_1d, correlation_2d
from .models import (FastTower, fast_cost_volume, TwoChannelNet, SiameseDecisionNet, PseudoSiameseNet,
                     sample_patch_pairs)
from .training import (PatchTriples, patch_scores, patch_step, learned_cost_volume, PairBatches,
                       correspondence_contrastive_step)

__all__ = [
    "StereoPairs", "make_stereo_pairs", "warp_right",
    "shifted_right", "sad_cost_volume", "ncc_cost", "ncc_cost_volume", "census_transform", "census_cost_volume",
    "winner_takes_all", "error_rate", "chance_error", "disparity_errors", "disparity_errors_per_pair",
    "correlation_1d", "correlation_2d",
    "FastTower", "fast_cost_volume", "TwoChannelNet", "SiameseDecisionNet", "PseudoSiameseNet", "sample_patch_pairs",
    "PatchTriples", "patch_scores", "patch_step", "learned_cost_volume", "PairBatches",
    "correspondence_contrastive_step",
]
