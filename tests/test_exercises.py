"""The exercise checkers accept plain correct solutions, reject the common mistakes with the right hint,
and never raise on a broken student function."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import exercises as ex
from course_lib.detection import anchor_labels, box_iou, encode_boxes
from course_lib.exercises import detection as ex_detection
from course_lib.exercises import pose as ex_pose
from course_lib.exercises import similarity as ex_similarity
from course_lib.pose import pck, soft_argmax2d
from course_lib.similarity import (
    average_precision_at_r,
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    class_margin_triplet_loss,
    contrastive_loss,
    map_at_r,
    nearest_classes,
    paired_distances,
    pairwise_distances,
    precision_at_1,
    semi_hard_triplets,
    triplet_loss,
)
from course_lib.stn import affine_theta, bilinear_weights


def first(out):
    return out[0] if isinstance(out, tuple) else out


def cube_distances(x):
    """(B, D) -> (B, B) through the (B, B, D) differences, with a safe sqrt: a plain student solution."""
    sq = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)
    return sq.clamp_min(1e-12).sqrt()


# ---------------------------------------------------------------- pairwise distances
def pairwise_expansion(x):
    n = x.pow(2).sum(1)
    sq = (n[:, None] + n[None, :] - 2 * x @ x.T).clamp_min(0) * (1 - torch.eye(len(x), dtype=x.dtype))
    return torch.where(sq > 0, sq.clamp_min(1e-30).sqrt(), 0.0)


def pairwise_cdist(x):
    return torch.cdist(x, x)


def pairwise_squared(x):
    return (x[:, None] - x[None]).pow(2).sum(-1)


def pairwise_no_clamp(x):
    n = (x * x).sum(1)
    return (n[:, None] + n[None, :] - 2 * x @ x.T).sqrt()


def pairwise_diagonal_noise(x):
    n = (x * x).sum(1)
    return (n[:, None] + n[None, :] - 2 * x @ x.T).clamp_min(1e-12).sqrt()


def pairwise_plain_sqrt(x):
    return (x[:, None] - x[None]).pow(2).sum(-1).sqrt()


# ---------------------------------------------------------------- contrastive
def contrastive_ok(x1, x2, same, margin):
    d = (x1 - x2).pow(2).sum(1).clamp_min(1e-12).sqrt()
    return torch.where(same, 0.5 * d**2, 0.5 * (margin - d).clamp_min(0) ** 2).mean()


def contrastive_pairwise_distance(x1, x2, same, margin):
    d = F.pairwise_distance(x1, x2)
    return (0.5 * same * d**2 + 0.5 * ~same * F.relu(margin - d) ** 2).mean()


def _contrastive(x1, x2, same, margin, pos, neg, reduce=torch.mean):
    d = paired_distances(x1, x2)
    return reduce(torch.where(same, pos(d), neg(d, margin)))


def contrastive_sq_in_hinge(x1, x2, same, margin):
    return _contrastive(x1, x2, same, margin, lambda d: 0.5 * d**2, lambda d, m: 0.5 * (m - d**2).clamp_min(0) ** 2)


def contrastive_no_half(x1, x2, same, margin):
    return _contrastive(x1, x2, same, margin, lambda d: d**2, lambda d, m: (m - d).clamp_min(0) ** 2)


def contrastive_sum(x1, x2, same, margin):
    half_hinge = lambda d, m: 0.5 * (m - d).clamp_min(0) ** 2        # noqa: E731
    return _contrastive(x1, x2, same, margin, lambda d: 0.5 * d**2, half_hinge, torch.sum)


def contrastive_no_clamp(x1, x2, same, margin):
    return _contrastive(x1, x2, same, margin, lambda d: 0.5 * d**2, lambda d, m: 0.5 * (m - d) ** 2)


def contrastive_swapped(x1, x2, same, margin):
    return contrastive_ok(x1, x2, ~same, margin)


def contrastive_per_pair(x1, x2, same, margin):
    d = (x1 - x2).pow(2).sum(1).clamp_min(1e-12).sqrt()
    return torch.where(same, 0.5 * d**2, 0.5 * (margin - d).clamp_min(0) ** 2)      # no mean


def contrastive_fixed_margin(x1, x2, same, margin):
    return contrastive_ok(x1, x2, same, 1.0)


def contrastive_plain_sqrt(x1, x2, same, margin):
    d = (x1 - x2).pow(2).sum(1).sqrt()
    return torch.where(same, 0.5 * d**2, 0.5 * (margin - d).clamp_min(0) ** 2).mean()


# ---------------------------------------------------------------- precision@1
def p1_ok(queries, query_labels, gallery, gallery_labels):
    nearest = torch.cdist(queries, gallery).argmin(1)
    return (gallery_labels[nearest] == query_labels).float().mean().item()


def p1_farthest(queries, query_labels, gallery, gallery_labels):
    return (gallery_labels[torch.cdist(queries, gallery).argmax(1)] == query_labels).float().mean().item()


def p1_count(queries, query_labels, gallery, gallery_labels):
    return int((gallery_labels[torch.cdist(queries, gallery).argmin(1)] == query_labels).sum())


def p1_per_query(queries, query_labels, gallery, gallery_labels):
    return (gallery_labels[torch.cdist(queries, gallery).argmin(1)] == query_labels).float()


def p1_percent(queries, query_labels, gallery, gallery_labels):
    return 100 * p1_ok(queries, query_labels, gallery, gallery_labels)


# ---------------------------------------------------------------- triplet
def triplet_ok(anchor, positive, negative, margin):
    d_ap = (anchor - positive).pow(2).sum(1).clamp_min(1e-12).sqrt()
    d_an = (anchor - negative).pow(2).sum(1).clamp_min(1e-12).sqrt()
    return (d_ap - d_an + margin).clamp_min(0).mean()


def _triplet_raw(a, p, n, m):
    return paired_distances(a, p) - paired_distances(a, n) + m


def triplet_squared(a, p, n, m):
    return ((a - p).pow(2).sum(1) - (a - n).pow(2).sum(1) + m).clamp_min(0).mean()


def triplet_no_hinge(a, p, n, m):
    return _triplet_raw(a, p, n, m).mean()


def triplet_active_mean(a, p, n, m):
    loss = _triplet_raw(a, p, n, m).clamp_min(0)
    return loss.sum() / (loss > 0).sum().clamp_min(1)


def triplet_sum(a, p, n, m):
    return _triplet_raw(a, p, n, m).clamp_min(0).sum()


def triplet_margin_sign(a, p, n, m):
    return (_triplet_raw(a, p, n, m) - 2 * m).clamp_min(0).mean()


def triplet_swapped(a, p, n, m):
    return triplet_ok(a, n, p, m)


def triplet_plain_sqrt(a, p, n, m):
    return ((a - p).pow(2).sum(1).sqrt() - (a - n).pow(2).sum(1).sqrt() + m).clamp_min(0).mean()


# ---------------------------------------------------------------- AP@R
def ap_ok(hits):
    rel = hits.float()
    precision = rel.cumsum(1) / torch.arange(1, hits.shape[1] + 1)
    return (precision * rel).sum(1) / hits.shape[1]


def ap_loop(hits):
    out = []
    for row in hits.tolist():
        found, total = 0, 0.0
        for i, rel in enumerate(row, start=1):
            found += rel
            total += found / i if rel else 0.0
        out.append(total / len(row))
    return torch.tensor(out)


def ap_by_hits(hits):
    rel = hits.float()
    return (rel.cumsum(1) / torch.arange(1, hits.shape[1] + 1) * rel).sum(1) / rel.sum(1).clamp_min(1)


def ap_all_ranks(hits):
    return (hits.float().cumsum(1) / torch.arange(1, hits.shape[1] + 1)).mean(1)


def ap_precision_at_r(hits):
    return hits.float().mean(1)


def ap_mean(hits):
    return ap_ok(hits).mean()


def ap_from_zero(hits):
    rel = hits.float()
    return (rel.cumsum(1) / torch.arange(hits.shape[1]) * rel).sum(1) / hits.shape[1]


# ---------------------------------------------------------------- batch hard
def batch_hard_ok(embeddings, labels, margin):
    d = cube_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool)
    hardest_pos = (d * pos).amax(1)
    hardest_neg = d.masked_fill(same, float("inf")).amin(1)
    keep = pos.any(1) & (~same).any(1)
    loss = (hardest_pos - hardest_neg + margin).clamp_min(0)
    return (loss * keep).sum() / keep.sum().clamp_min(1)


def _batch_hard(embeddings, labels, margin, self_pos=False, over_all=False, hinge=True, squared=False, far_pos=True,
                easiest=False):
    d = pairwise_distances(embeddings, squared=squared)
    same = labels[:, None] == labels[None, :]
    pos = same if self_pos else same & ~torch.eye(len(labels), dtype=torch.bool)
    if easiest:
        hp, hn = d.masked_fill(~pos, float("inf")).amin(1), (d * ~same).amax(1)
    else:
        hp, hn = (d * pos).amax(1), d.masked_fill(same, float("inf")).amin(1)
    keep = pos.any(1) & (~same).any(1)
    loss = hp - hn + margin
    loss = loss.clamp_min(0) if hinge else loss
    return (loss * keep).mean() if over_all else (loss * keep).sum() / keep.sum().clamp_min(1)


def bh_easiest(e, y, m):
    return _batch_hard(e, y, m, easiest=True)


def bh_self_positive(e, y, m):
    return _batch_hard(e, y, m, self_pos=True)


def bh_mean_all(e, y, m):
    return _batch_hard(e, y, m, over_all=True)


def bh_no_hinge(e, y, m):
    return _batch_hard(e, y, m, hinge=False)


def bh_squared(e, y, m):
    return _batch_hard(e, y, m, squared=True)


def bh_nan_when_empty(e, y, m):
    d = pairwise_distances(e)
    same = y[:, None] == y[None, :]
    pos = same & ~torch.eye(len(y), dtype=torch.bool)
    keep = pos.any(1) & (~same).any(1)
    loss = ((d * pos).amax(1) - d.masked_fill(same, float("inf")).amin(1) + m).clamp_min(0)
    return loss[keep].mean()


# ---------------------------------------------------------------- semi-hard mask
def semi_hard_ok(d, labels, margin):
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool)
    d_ap, d_an = d[:, :, None], d[:, None, :]
    return pos[:, :, None] & ~same[:, None, :] & (d_ap < d_an) & (d_an < d_ap + margin)


def semi_hard_loop(d, labels, margin):
    b, y = len(labels), labels.tolist()
    mask = torch.zeros(b, b, b, dtype=torch.bool)
    for a, p, n in itertools.product(range(b), repeat=3):
        mask[a, p, n] = a != p and y[a] == y[p] and y[n] != y[a] and d[a, p] < d[a, n] < d[a, p] + margin
    return mask


def _semi_hard(d, labels, margin, le_low=False, le_up=False, distinct=True, upper=True, lower=True):
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool) if distinct else same
    d_ap, d_an = d[:, :, None], d[:, None, :]
    mask = pos[:, :, None] & ~same[:, None, :]
    if lower:
        mask &= (d_ap <= d_an) if le_low else (d_ap < d_an)
    if upper:
        mask &= (d_an <= d_ap + margin) if le_up else (d_an < d_ap + margin)
    return mask


def sh_le(d, y, m):
    return _semi_hard(d, y, m, le_low=True)


def sh_le_upper(d, y, m):
    return _semi_hard(d, y, m, le_up=True)


def sh_self(d, y, m):
    return _semi_hard(d, y, m, distinct=False)


def sh_no_upper(d, y, m):
    return _semi_hard(d, y, m, upper=False)


def sh_no_lower(d, y, m):
    return _semi_hard(d, y, m, lower=False)


def sh_float(d, y, m):
    return semi_hard_ok(d, y, m).float()


# ---------------------------------------------------------------- batch all
def batch_all_ok(embeddings, labels, margin):
    d = cube_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool)
    valid = pos[:, :, None] & ~same[:, None, :]                      # (B, B, B) [a, p, n]
    loss = (d[:, :, None] - d[:, None, :] + margin).clamp_min(0) * valid
    return loss.sum() / (loss > 0).sum().clamp_min(1)


def _batch_all(e, y, m, over="active", distinct=True, squared=False):
    d = pairwise_distances(e, squared=squared)
    same = y[:, None] == y[None, :]
    pos = same & ~torch.eye(len(y), dtype=torch.bool) if distinct else same
    valid = pos[:, :, None] & ~same[:, None, :]
    loss = (d[:, :, None] - d[:, None, :] + m).clamp_min(0) * valid
    count = valid.sum() if over == "valid" else (loss > 0).sum()
    return loss.sum() / count.clamp_min(1)


def ba_diluted(e, y, m):
    return _batch_all(e, y, m, over="valid")


def ba_self(e, y, m):
    return _batch_all(e, y, m, distinct=False)


def ba_squared(e, y, m):
    return _batch_all(e, y, m, squared=True)


def ba_nan(e, y, m):
    d = pairwise_distances(e)
    same = y[:, None] == y[None, :]
    valid = (same & ~torch.eye(len(y), dtype=torch.bool))[:, :, None] & ~same[:, None, :]
    loss = (d[:, :, None] - d[:, None, :] + m).clamp_min(0)
    return loss[valid & (loss > 0)].mean()


def ba_detached_zero(e, y, m):
    loss = batch_all_ok(e, y, m)
    return loss if loss.item() > 0 else torch.tensor(0.0)


def nearest_ok(d, anchors, m):
    rows = d[anchors].clone()
    rows[torch.arange(len(anchors)), anchors] = float("inf")
    return torch.cat([anchors[:, None], torch.sort(rows, dim=1, stable=True).indices[:, : m - 1]], 1)


def nearest_with_self(d, anchors, m):
    return torch.cat([anchors[:, None], d[anchors].topk(m - 1, dim=1, largest=False).indices], 1)


def nearest_farthest(d, anchors, m):
    rows = d[anchors].clone()
    rows[torch.arange(len(anchors)), anchors] = -float("inf")
    return torch.cat([anchors[:, None], rows.topk(m - 1, dim=1).indices], 1)


def nearest_no_anchor(d, anchors, m):
    return nearest_ok(d, anchors, m)[:, 1:]


def nearest_float(d, anchors, m):
    return nearest_ok(d, anchors, m).float()


# ---------------------------------------------------------------- affine theta and bilinear weights
def theta_ok(angle, scale, tx, ty):
    a = torch.deg2rad(angle)
    row0 = torch.stack([scale * torch.cos(a), scale * torch.sin(a), tx], 1)
    row1 = torch.stack([-scale * torch.sin(a), scale * torch.cos(a), ty], 1)
    return torch.stack([row0, row1], 1)


def theta_loop(angle, scale, tx, ty):
    out = []
    for a, s, x, y in zip(angle.tolist(), scale.tolist(), tx.tolist(), ty.tolist()):
        c, n = math.cos(math.radians(a)), math.sin(math.radians(a))
        out.append([[s * c, s * n, x], [-s * n, s * c, y]])
    return torch.tensor(out, dtype=angle.dtype)


def theta_radians(angle, scale, tx, ty):
    return theta_ok(torch.rad2deg(angle), scale, tx, ty)


def theta_clockwise(angle, scale, tx, ty):
    return theta_ok(-angle, scale, tx, ty)


def theta_scaled_shift(angle, scale, tx, ty):
    return theta_ok(angle, scale, scale * tx, scale * ty)


def theta_no_batch(angle, scale, tx, ty):
    return theta_ok(angle, scale, tx, ty)[0]


def bilinear_ok(x, y):
    dx, dy = x - x.floor(), y - y.floor()
    return torch.stack([(1 - dx) * (1 - dy), dx * (1 - dy), (1 - dx) * dy, dx * dy], 1)


def bilinear_kernel(x, y):
    """The lecture's kernel max(0, 1 - |x - m|) max(0, 1 - |y - n|), one corner at a time."""
    cols = [x.floor(), x.floor() + 1, x.floor(), x.floor() + 1]
    rows = [y.floor(), y.floor(), y.floor() + 1, y.floor() + 1]
    return torch.stack([(1 - (x - m).abs()).clamp_min(0) * (1 - (y - n).abs()).clamp_min(0)
                        for m, n in zip(cols, rows)], 1)


def bilinear_flipped(x, y):
    return bilinear_ok(x, y).flip(1)


def bilinear_trunc(x, y):
    dx, dy = x - x.trunc(), y - y.trunc()
    return torch.stack([(1 - dx) * (1 - dy), dx * (1 - dy), (1 - dx) * dy, dx * dy], 1)


def bilinear_sum(x, y):
    dx, dy = x - x.floor(), y - y.floor()
    return torch.stack([(2 - dx - dy) / 2, (dx + 1 - dy) / 2, (1 - dx + dy) / 2, (dx + dy) / 2], 1)


# ---------------------------------------------------------------- the table of cases

# ---------------------------------------------------------------- box IoU, box deltas and the matching rule
def iou_ok(a, b):
    tl = torch.maximum(a[:, None, :2], b[None, :, :2])
    br = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (br - tl).clamp_min(0).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    union = area(a)[:, None] + area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(union))


def iou_pairs_loop(a, b):
    out = torch.zeros(len(a), len(b))
    for i in range(len(a)):
        for j in range(len(b)):
            w = max(0.0, float(min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0])))
            h = max(0.0, float(min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1])))
            union = float((a[i, 2] - a[i, 0]) * (a[i, 3] - a[i, 1]) + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1])) - w * h
            out[i, j] = w * h / union if union > 0 else 0.0
    return out


def iou_plus_one(a, b):
    return ex_detection._iou_variant(a, b, plus_one=1.0)


def iou_no_clamp(a, b):
    return ex_detection._iou_variant(a, b, clamp=False)


def iou_sum(a, b):
    return ex_detection._iou_variant(a, b, denominator="sum")


def iou_min(a, b):
    return ex_detection._iou_variant(a, b, denominator="min")


def iou_nan(a, b):
    tl = torch.maximum(a[:, None, :2], b[None, :, :2])
    br = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (br - tl).clamp_min(0).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def iou_diagonal(a, b):
    return iou_ok(a, b).diagonal() if len(a) == len(b) else iou_ok(a, b)[:, 0]


def encode_ok(gt, a):
    gw, gh, aw, ah = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1], a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    gx, gy, ax, ay = gt[:, 0] + gw / 2, gt[:, 1] + gh / 2, a[:, 0] + aw / 2, a[:, 1] + ah / 2
    return torch.stack([(gx - ax) / aw, (gy - ay) / ah, torch.log(gw / aw), torch.log(gh / ah)], dim=1)


def encode_loop(gt, a):
    rows = []
    for (g1, g2, g3, g4), (a1, a2, a3, a4) in zip(gt.tolist(), a.tolist()):
        aw, ah = a3 - a1, a4 - a2
        rows.append([((g1 + g3) - (a1 + a3)) / 2 / aw, ((g2 + g4) - (a2 + a4)) / 2 / ah,
                     math.log((g3 - g1) / aw), math.log((g4 - g2) / ah)])
    return torch.tensor(rows)


def encode_by_gt(gt, a):
    d = encode_ok(gt, a)
    return torch.stack([d[:, 0] * (a[:, 2] - a[:, 0]) / (gt[:, 2] - gt[:, 0]),
                        d[:, 1] * (a[:, 3] - a[:, 1]) / (gt[:, 3] - gt[:, 1]), d[:, 2], d[:, 3]], 1)


def encode_no_log(gt, a):
    d = encode_ok(gt, a)
    return torch.cat([d[:, :2], d[:, 2:].exp()], 1)


def encode_corners(gt, a):
    d = encode_ok(gt, a)
    return torch.stack([(gt[:, 0] - a[:, 0]) / (a[:, 2] - a[:, 0]), (gt[:, 1] - a[:, 1]) / (a[:, 3] - a[:, 1]),
                        d[:, 2], d[:, 3]], 1)


def encode_reversed(gt, a):
    return -encode_ok(gt, a)


def labels_ok(iou, high, low):
    labels = torch.full((iou.shape[1],), -1, dtype=torch.long)
    if len(iou) == 0:
        return torch.zeros(iou.shape[1], dtype=torch.long)
    best = iou.max(dim=0).values
    labels[best < low] = 0
    labels[best >= high] = 1
    row_best = iou.max(dim=1, keepdim=True).values
    labels[((iou == row_best) & (row_best > 0)).any(dim=0)] = 1
    return labels


def labels_loop(iou, high, low):
    g, a = iou.shape
    out = []
    for j in range(a):
        best = max((iou[i, j] for i in range(g)), default=torch.tensor(0.0))   # float32, like the thresholds' use
        label = 1 if g and best >= high else (0 if best < low or not g else -1)
        for i in range(g):
            row_best = float(iou[i].max())
            if row_best > 0 and float(iou[i, j]) == row_best:
                label = 1
        out.append(label)
    return torch.tensor(out, dtype=torch.long)


def labels_no_best_rule(iou, high, low):
    if len(iou) == 0:
        return torch.zeros(iou.shape[1], dtype=torch.long)
    best = iou.max(dim=0).values
    return torch.where(best >= high, 1, torch.where(best < low, 0, -1))


def labels_strict(iou, high, low):
    labels = labels_ok(iou, high, low)
    if len(iou):
        best = iou.max(dim=0).values
        labels[(best == high) & ~((iou == iou.max(dim=1, keepdim=True).values).any(0))] = -1
        labels[best == low] = 0
    return labels


def labels_wrong_dim(iou, high, low):                              # each anchor's best gt, not each gt's best anchor
    labels = labels_no_best_rule(iou, high, low)
    if len(iou):
        best = iou.max(dim=0, keepdim=True).values
        labels[((iou == best) & (best > 0)).any(dim=0)] = 1
    return labels


def labels_zero_best(iou, high, low):                              # a gt that overlaps nothing still gets anchors
    labels = labels_no_best_rule(iou, high, low)
    if len(iou):
        labels[(iou == iou.max(dim=1, keepdim=True).values).any(dim=0)] = 1
    return labels


def labels_float(iou, high, low):
    return labels_ok(iou, high, low).float()


# ---------------------------------------------------------------- soft-argmax and PCK
def soft_argmax_ok(h):
    b, k, rows, cols = h.shape
    p = torch.softmax(h.reshape(b, k, -1), dim=-1).reshape(b, k, rows, cols)
    x = (p * torch.arange(cols, dtype=h.dtype)).sum(dim=(2, 3))
    y = (p * torch.arange(rows, dtype=h.dtype)[:, None]).sum(dim=(2, 3))
    return torch.stack([x, y], dim=-1)


def soft_argmax_loop(h):
    b, k, rows, cols = h.shape
    out = torch.zeros(b, k, 2)
    for i in range(b):
        for j in range(k):
            w = torch.exp(h[i, j] - h[i, j].max())
            w = w / w.sum()
            out[i, j, 0] = sum(w[r, c] * c for r in range(rows) for c in range(cols))
            out[i, j, 1] = sum(w[r, c] * r for r in range(rows) for c in range(cols))
    return out


def soft_argmax_swapped(h):
    return soft_argmax_ok(h).flip(-1)


def soft_argmax_per_axis(h):
    return ex_pose._soft_argmax_variant(h, per_axis=True)


def soft_argmax_plain(h):
    return ex_pose._soft_argmax_variant(h, plain=True)


def soft_argmax_from_one(h):
    return soft_argmax_ok(h) + 1


def pck_ok(pred, gt, threshold):
    return ((pred - gt).norm(dim=-1) <= threshold).float().mean()


def pck_loop(pred, gt, threshold):
    hits = [math.dist(p, g) <= threshold for pb, gb in zip(pred.tolist(), gt.tolist()) for p, g in zip(pb, gb)]
    return sum(hits) / len(hits)


def pck_strict(pred, gt, threshold):
    return ((pred - gt).norm(dim=-1) < threshold).float().mean()


def pck_per_axis(pred, gt, threshold):
    return ((pred - gt).abs() <= threshold).all(-1).float().mean()


def pck_percent(pred, gt, threshold):
    return 100 * pck_ok(pred, gt, threshold)

CHECKERS = {
    "pairwise": (ex.check_pairwise_distances, [cube_distances, pairwise_expansion, pairwise_cdist],
                 [(pairwise_squared, "squared distances"), (pairwise_no_clamp, "clamp_min(0)"),
                  (pairwise_diagonal_noise, "diagonal"), (pairwise_plain_sqrt, "infinite slope")]),
    "contrastive": (ex.check_contrastive_loss, [contrastive_ok, contrastive_pairwise_distance],
                    [(contrastive_sq_in_hinge, "not max(0, m − d²)²"), (contrastive_no_half, "factor ½"),
                     (contrastive_sum, "instead of summing"), (contrastive_no_clamp, "Clamp the negative term"),
                     (contrastive_swapped, "swapped"), (contrastive_per_pair, "not one value per item"),
                     (contrastive_fixed_margin, "margin argument"), (contrastive_plain_sqrt, "infinite slope")]),
    "precision@1": (ex.check_precision_at_1, [p1_ok],
                    [(p1_farthest, "farthest"), (p1_count, "divide the number of hits by Q"),
                     (p1_per_query, "not one value per item"), (p1_percent, "percentage")]),
    "triplet": (ex.check_triplet_loss, [triplet_ok],
                [(triplet_squared, "not squared"), (triplet_no_hinge, "Clamp each triplet at 0"),
                 (triplet_active_mean, "active ones only"), (triplet_sum, "instead of summing"),
                 (triplet_margin_sign, "margin is added"), (triplet_swapped, "swapped"),
                 (triplet_plain_sqrt, "infinite slope")]),
    "AP@R": (ex.check_average_precision_at_r, [ap_ok, ap_loop],
             [(ap_by_hits, "Divide by R"), (ap_all_ranks, "only at the ranks where"),
              (ap_precision_at_r, "precision@R"), (ap_mean, "one AP per query"), (ap_from_zero, "Ranks start at 1")]),
    "batch hard": (ex.check_batch_hard_loss, [batch_hard_ok],
                   [(bh_easiest, "easiest"), (bh_self_positive, "not its own positive"),
                    (bh_mean_all, "Average only over the anchors"), (bh_no_hinge, "hinge"), (bh_squared, "not squared"),
                    (bh_nan_when_empty, "not the mean of an empty tensor")]),
    "semi-hard": (ex.check_semi_hard_mask, [semi_hard_ok, semi_hard_loop],
                  [(sh_le, "strict: d(a,p) < d(a,n)"), (sh_le_upper, "upper bound is strict"),
                   (sh_self, "not its own positive"), (sh_no_upper, "easy negatives"), (sh_no_lower, "hard negatives"),
                   (sh_float, "bool")]),
    "batch all": (ex.check_batch_all_loss, [batch_all_ok],
                  [(ba_diluted, "ACTIVE"), (ba_self, "not its own positive"), (ba_squared, "not squared"),
                   (ba_nan, "0 / 0"), (ba_detached_zero, "embeddings.sum() * 0")]),
    "nearest classes": (ex.check_nearest_classes, [nearest_ok],
                        [(nearest_with_self, "not its own neighbour"), (nearest_farthest, "SMALLEST"),
                         (nearest_no_anchor, "first column"), (nearest_float, "long")]),
    "affine theta": (ex.check_affine_theta, [theta_ok, theta_loop],
                     [(theta_radians, "degrees"), (theta_clockwise, "other way"), (theta_scaled_shift, "not scaled"),
                      (theta_no_batch, "shape")]),
    "bilinear weights": (ex.check_bilinear_weights, [bilinear_ok, bilinear_kernel],
                         [(bilinear_flipped, "NEAR"), (bilinear_trunc, "torch.floor"), (bilinear_sum, "Multiply")]),
    "box IoU": (ex.check_box_iou, [iou_ok, iou_pairs_loop],
                [(iou_plus_one, "no + 1"), (iou_no_clamp, "clamp each at 0"), (iou_sum, "counts the overlap once"),
                 (iou_min, "not by the smaller"), (iou_nan, "0 / 0"), (iou_diagonal, "every box of a")]),
    "encode boxes": (ex.check_encode_boxes, [encode_ok, encode_loop],
                     [(encode_by_gt, "ANCHOR widths"), (encode_no_log, "log-ratios"), (encode_corners, "CENTRES"),
                      (encode_reversed, "gt minus anchor")]),
    "anchor labels": (ex.check_anchor_labels, [labels_ok, labels_loop],
                      [(labels_no_best_rule, "best anchor"), (labels_strict, "(>= high)"),
                       (labels_wrong_dim, "ROW (dim=1"), (labels_zero_best, "require best > 0"),
                       (labels_float, "torch.long")]),
    "soft-argmax": (ex.check_soft_argmax, [soft_argmax_ok, soft_argmax_loop],
                    [(soft_argmax_swapped, "not (y, x)"), (soft_argmax_per_axis, "ONE softmax"),
                     (soft_argmax_plain, "Apply a softmax"), (soft_argmax_from_one, "start at 0")]),
    "PCK": (ex.check_pck, [pck_ok, pck_loop],
            [(pck_strict, "<= threshold"), (pck_per_axis, "Euclidean"), (pck_percent, "fraction")]),
}
CORRECT = [(name, fn) for name, (_, fns, _) in CHECKERS.items() for fn in fns]
WRONG = [(name, fn, hint) for name, (_, _, wrongs) in CHECKERS.items() for fn, hint in wrongs]


@pytest.mark.parametrize("name, solution", CORRECT, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CORRECT)])
def test_correct_solutions_pass(name, solution, capsys):
    assert CHECKERS[name][0](solution) is True
    out = capsys.readouterr().out
    assert out.startswith("✓") and "checks passed" in out


@pytest.mark.parametrize("name, wrong, hint", WRONG, ids=[f"{n}-{f.__name__}" for n, f, _ in WRONG])
def test_wrong_solutions_fail_with_their_hint(name, wrong, hint, capsys):
    assert CHECKERS[name][0](wrong) is False
    out = capsys.readouterr().out
    assert out.startswith("✗") and hint in out, out


@pytest.mark.parametrize("name", CHECKERS)
def test_stub_is_not_done_yet(name, capsys):
    def stub(*args):
        raise NotImplementedError("write this function")
    assert CHECKERS[name][0](stub) is False
    out = capsys.readouterr().out
    assert "not done yet" in out and "Traceback" not in out


@pytest.mark.parametrize("name", CHECKERS)
def test_crashing_function_is_reported_not_raised(name, capsys):
    def crash(*args):
        raise IndexError("index 7 is out of bounds")
    assert CHECKERS[name][0](crash) is False
    assert "raised IndexError: index 7 is out of bounds" in capsys.readouterr().out


def test_wrong_type_and_dtype_are_reported(capsys):
    assert ex.check_contrastive_loss(lambda *a: [0.3]) is False
    assert "expected a tensor" in capsys.readouterr().out
    assert ex.check_pairwise_distances(lambda x: cube_distances(x.double())) is False
    out = capsys.readouterr().out
    assert "expected dtype torch.float32" in out and "Keep the dtype" in out


def test_gradient_that_differs_is_reported(capsys):
    def detached_hinge(x1, x2, same, margin):             # right values, but negative pairs are never pushed
        d = paired_distances(x1, x2)
        return torch.where(same, 0.5 * d**2, 0.5 * (margin - d.detach()).clamp_min(0) ** 2).mean()
    assert ex.check_contrastive_loss(detached_hinge) is False
    out = capsys.readouterr().out
    assert "(gradient): the gradient differs" in out and ".detach()" in out


def test_checkers_leave_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex.check_batch_hard_loss(batch_hard_ok)
    assert torch.equal(torch.rand(3), expected)


def test_ap_reference_matches_map_at_r():
    """A query at 0 on a line, gallery items at 1, 2, ...: the ranking is the hits row, then the missed relevant
    items."""
    g = torch.Generator().manual_seed(0)
    for hits in (torch.rand(5, 6, generator=g) < 0.5).tolist() + [[True, False, True]]:
        r = len(hits)
        labels = [0 if h else 1 for h in hits] + [0] * (r - sum(hits))     # the relevant items ranked after R
        gallery = torch.arange(1.0, len(labels) + 1)[:, None]
        expected = map_at_r(torch.zeros(1, 1), torch.tensor([0]), gallery, torch.tensor(labels))
        assert ex_similarity._ap_at_r(torch.tensor([hits])).item() == pytest.approx(expected, abs=1e-6)
        assert ap_loop(torch.tensor([hits])).item() == pytest.approx(expected, abs=1e-6)


def test_semi_hard_fixture_agrees_with_the_miner():
    """The hand fixture of check_semi_hard_mask: only (a, p, n) = (0, 1, 4) is semi-hard, ties excluded."""
    from course_lib.similarity import semi_hard_triplets
    e = torch.tensor([0, 1, -1, 1.5, -1.25, 0.25])[:, None]
    a, p, n = semi_hard_triplets(e, torch.tensor([0, 0, 1, 2, 3, 4]), 0.5)
    assert list(zip(a.tolist(), p.tolist(), n.tolist())) == [(0, 1, 4)]


def test_expect_at_least(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_STRICT", raising=False)
    assert ex.expect_at_least(0.93, 0.75, "precision@1") is True
    assert capsys.readouterr().out.strip() == "✓ precision@1 = 0.93 (expected ≥ 0.75)"
    assert ex.expect_at_least(0.61, 0.75, "precision@1") is False
    assert "⚠ precision@1 = 0.61 is below the expected 0.75" in capsys.readouterr().out
    assert ex.expect_at_least(0.5, 0.75, "score", fix="Use more classes.") is False
    out = capsys.readouterr().out
    assert out.strip().endswith("Use more classes.") and "run the notebook again" not in out
    assert ex.expect_at_least(float("nan"), 0.75, "loss") is False
    monkeypatch.setenv("COURSE_STRICT", "1")
    assert ex.expect_at_least(0.8, 0.75, "precision@1") is True
    with pytest.raises(AssertionError, match="below the expected 0.75"):
        ex.expect_at_least(0.61, 0.75, "precision@1")


# ----------------------------------------------------------------------------- calling the library is not solving
LIBRARY_WRAPPERS = {     # a "solution" that hands each checker's inputs to course_lib's own version
    "check_normalized_softmax_loss": lambda e, y, w, s: ex.check_normalized_softmax_loss.fallback(e, y, w, s),
    "check_arcface_loss": lambda e, y, w, m, s: ex.check_arcface_loss.fallback(e, y, w, m, s),
    "check_proxy_nca_loss": lambda e, y, p, s: ex.check_proxy_nca_loss.fallback(e, y, p, s),
    "check_pairwise_distances": lambda x: pairwise_distances(x),
    "check_contrastive_loss": lambda x1, x2, same, m: contrastive_loss(x1, x2, same, m),
    "check_precision_at_1": lambda q, ql, g, gl: precision_at_1(q, ql, g, gl),
    "check_triplet_loss": lambda a, p, n, m: triplet_loss(a, p, n, m),
    "check_average_precision_at_r": lambda hits: average_precision_at_r(hits),
    "check_batch_hard_loss": lambda e, y, m: batch_hard_triplet_loss(e, y, m),
    "check_semi_hard_mask": lambda d, y, m: semi_hard_triplets(d, y, m),
    "check_batch_all_loss": lambda e, y, m: batch_all_triplet_loss(e, y, m),
    "check_htl_loss": lambda e, y, class_margins: class_margin_triplet_loss(e, y, class_margins),
    "check_nearest_classes": lambda d, anchors, m: nearest_classes(d, anchors, m),
    "check_affine_theta": lambda *args: affine_theta(*args),
    "check_bilinear_weights": lambda x, y: torch.stack(bilinear_weights(x, y)[2].unbind(-1), -1),
    "check_spatial_transformer": lambda loc, features, size: ex.check_spatial_transformer.fallback(loc, features, size),
    "check_box_iou": lambda a, b: box_iou(a, b),
    "check_encode_boxes": lambda gt, anchors: encode_boxes(gt, anchors),
    "check_anchor_labels": lambda iou, high, low: anchor_labels(iou, high, low),
    "check_decode_boxes": lambda deltas, anchors: ex_detection.decode_boxes(deltas, anchors),
    "check_nms": lambda boxes, scores, threshold: ex_detection.nms(boxes, scores, threshold),
    "check_soft_argmax": lambda h: soft_argmax2d(h),
    "check_heatmap_target": lambda k, stride, size, sigma: ex.check_heatmap_target.fallback(k, stride, size, sigma),
    "check_pck": lambda pred, gt, t: float(pck(pred, gt, t)),
    "check_correlation_1d": lambda f1, f2, d: ex.check_correlation_1d.fallback(f1, f2, d),
    "check_ncc_cost": lambda a, b, eps: ex.check_ncc_cost.fallback(a, b, eps),
}


def test_every_checker_has_a_library_wrapper_here():
    assert sorted(LIBRARY_WRAPPERS) == sorted(n for n in ex.__all__ if n.startswith("check_"))


@pytest.mark.parametrize("checker", sorted(LIBRARY_WRAPPERS))
def test_a_function_that_calls_the_library_fails(checker, capsys):
    assert getattr(ex, checker)(LIBRARY_WRAPPERS[checker]) is False
    out = capsys.readouterr().out
    assert "calls course_lib's own" in out and "write it yourself" in out


def test_other_library_building_blocks_are_allowed_and_nothing_is_left_watching(capsys):
    import sys

    def with_paired_distances(a, p, n, margin):                      # course_lib's distances, not its loss
        return (paired_distances(a, p) - paired_distances(a, n) + margin).clamp_min(0).mean()

    assert ex.check_triplet_loss(with_paired_distances)
    assert sys.getprofile() is None


def test_use_if_correct_runs_the_checker_and_falls_back_to_course_lib(capsys):
    assert ex.use_if_correct(triplet_ok, ex.check_triplet_loss) is triplet_ok
    assert capsys.readouterr().out.endswith("Using your function.\n")
    assert ex.use_if_correct(triplet_no_hinge, ex.check_triplet_loss) is triplet_loss
    assert "Using course_lib.similarity.losses.triplet_loss instead" in capsys.readouterr().out


@pytest.mark.parametrize("checker", sorted(LIBRARY_WRAPPERS))
def test_every_checker_has_a_fallback_for_an_unsolved_exercise(checker, capsys):
    def stub(*args):                                                  # what the student edition holds
        raise NotImplementedError

    check = getattr(ex, checker)
    assert ex.use_if_correct(stub, check) is check.fallback and callable(check.fallback)
    out = capsys.readouterr().out
    assert "not done yet" in out and f"Using {check.fallback_name} instead" in out
