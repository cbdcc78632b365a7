"""Lessons 01-04 (the planned lesson 08 belongs here too): learning a distance. Distances, losses, miners, retrieval metrics, samplers,
the embedding network, training steps and the class tree of the Hierarchical Triplet Loss.

    from course_lib.similarity import contrastive_loss, PKSampler, map_at_r
"""
from .distances import pairwise_distances, paired_distances
from .evaluation import (retrieval_scores, chance_levels, effective_rank, relative_spread, collapse_report,
                        sample_pair_distances, registration_report, verification_accuracy,
                        genuine_impostor_distances, identification_accuracy, identification_from_pairs)
from .hierarchy import (within_class_distance, class_distances, tree_thresholds, tree_merges, build_tree,
                       dynamic_margin, nearest_classes, ClassTree, LiveTree, RebuildEachEpoch, AnchorNeighbourSampler)
from .labels import label_masks, positive_pairs
from .losses import (contrastive_loss, batch_contrastive_loss, triplet_loss, batch_all_triplet_loss, batch_hard_triplet_loss,
                    class_margin_triplet_loss, hierarchical_triplet_loss)
from .metrics import (nearest_neighbours, precision_at_1, recall_at_k, map_at_r, verification_roc, roc_auc,
                     best_threshold, average_precision_at_r)
from .mining import (count_triplets, DIFFICULTY, triplet_difficulty, all_triplets, batch_hard_triplets,
                    semi_hard_triplets, distance_weighted_triplets)
from .models import EmbeddingNet
from .proxies import (cosine_logits, normalized_softmax_loss, arcface_loss, proxy_nca_loss, ClassProxies,
                      EmbedderWithProxies, proxy_snapshot)
from .samplers import ClassIndex, PKSampler, PairSampler, TripletSampler
from .steps import pk_step, miner_loss, mask_miner

__all__ = [
    "pairwise_distances", "paired_distances", "retrieval_scores", "chance_levels", "effective_rank",
    "relative_spread", "collapse_report", "sample_pair_distances", "registration_report", "verification_accuracy",
    "genuine_impostor_distances", "identification_accuracy", "identification_from_pairs", "within_class_distance",
    "class_distances", "tree_thresholds", "tree_merges", "build_tree", "dynamic_margin", "nearest_classes",
    "ClassTree", "LiveTree", "RebuildEachEpoch", "AnchorNeighbourSampler", "label_masks", "positive_pairs",
    "contrastive_loss", "batch_contrastive_loss", "triplet_loss", "batch_all_triplet_loss", "batch_hard_triplet_loss",
    "class_margin_triplet_loss", "hierarchical_triplet_loss", "nearest_neighbours", "precision_at_1", "recall_at_k", "map_at_r",
    "verification_roc", "roc_auc", "best_threshold", "average_precision_at_r", "count_triplets", "DIFFICULTY",
    "triplet_difficulty", "all_triplets", "batch_hard_triplets", "semi_hard_triplets",
    "distance_weighted_triplets", "EmbeddingNet", "ClassIndex", "PKSampler", "PairSampler", "TripletSampler",
    "pk_step", "miner_loss", "mask_miner", "cosine_logits", "normalized_softmax_loss", "arcface_loss",
    "proxy_nca_loss", "ClassProxies", "EmbedderWithProxies", "proxy_snapshot",
]
