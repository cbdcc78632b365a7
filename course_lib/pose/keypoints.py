"""Keypoints for pose regression (lesson 07): Gaussian heatmaps, argmax and soft-argmax decoding, PCK, and the
part affinity fields that group joints into people (OpenPose).

Coordinates are (x, y) in pixels of the map they refer to, x to the right and y down, with pixel
(row i, column j) centred on the integer point (x, y) = (j, i): a map of width W spans x = 0 ... W - 1 at its
pixel centres (the convention of most pose code; the boxes of lesson 06 use pixel edges instead).
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["render_heatmaps", "image_to_heatmap", "heatmap_target", "heatmap_argmax", "soft_argmax2d", "rescale", "mean_error", "pck", "render_paf",
           "paf_score", "limb_fields", "limb_scores", "pair_two"]


def _check_keypoints(keypoints: Tensor, name: str = "keypoints") -> None:
    if not isinstance(keypoints, Tensor) or keypoints.dim() != 3 or keypoints.shape[-1] != 2:
        shape = tuple(keypoints.shape) if isinstance(keypoints, Tensor) else type(keypoints).__name__
        raise ValueError(f"{name} must be a (B, K, 2) tensor of (x, y) pixel coordinates, got {shape}")


def _check_heatmaps(heatmaps: Tensor) -> None:
    if not isinstance(heatmaps, Tensor) or heatmaps.dim() != 4:
        shape = tuple(heatmaps.shape) if isinstance(heatmaps, Tensor) else type(heatmaps).__name__
        raise ValueError(f"heatmaps must be a (B, K, H, W) tensor: one map per joint, got {shape}")


def render_heatmaps(keypoints: Tensor, size: tuple[int, int], sigma: float) -> Tensor:
    """Gaussian target maps: keypoints (B, K, 2) in pixels of the map -> (B, K, H, W), peak 1 at each keypoint:

        H[b, k, i, j] = exp(-((j - x)² + (i - y)²) / (2 sigma²)).

    A keypoint between pixel centres gives a peak between them (no rounding), so the map carries its
    sub-pixel position.
    """
    _check_keypoints(keypoints)
    if sigma <= 0:
        raise ValueError(f"sigma must be positive (the Gaussian's width in pixels), got {sigma}")
    h, w = size
    xs = torch.arange(w, device=keypoints.device, dtype=keypoints.dtype)
    ys = torch.arange(h, device=keypoints.device, dtype=keypoints.dtype)
    dx = (xs[None, None, None, :] - keypoints[..., 0, None, None]) ** 2               # (B, K, 1, W)
    dy = (ys[None, None, :, None] - keypoints[..., 1, None, None]) ** 2               # (B, K, H, 1)
    return torch.exp(-(dx + dy) / (2 * sigma ** 2))


def image_to_heatmap(keypoints: Tensor, stride: float) -> Tensor:
    """Image pixels -> pixels of a map with ``stride`` image pixels per map pixel, pixel centres kept (the inverse
    of :func:`rescale`): map pixel j covers image pixels j * stride ... (j + 1) * stride - 1 and is centred on
    image pixel j * stride + (stride - 1) / 2, so x_map = (x_image - (stride - 1) / 2) / stride.

    >>> image_to_heatmap(torch.tensor([[[1.5, 5.5]]]), 4)          # the centres of map pixels 0 and 1
    tensor([[[0., 1.]]])"""
    return (keypoints - (stride - 1) / 2) / stride


def heatmap_target(keypoints: Tensor, stride: float, size: tuple[int, int], sigma: float) -> Tensor:
    """The targets of a heatmap head: keypoints (B, K, 2) in IMAGE pixels, a map of ``stride`` image pixels per map
    pixel and ``size`` (H, W) -> (B, K, H, W), a Gaussian of peak 1 and width ``sigma`` map pixels at each
    keypoint's position on the map (:func:`image_to_heatmap`, then :func:`render_heatmaps`)."""
    return render_heatmaps(image_to_heatmap(keypoints, stride), size, sigma)


def heatmap_argmax(heatmaps: Tensor) -> Tensor:
    """(B, K, H, W) -> (B, K, 2): (x, y) of each map's largest value, on the pixel grid (whole pixels).

    >>> maps = torch.zeros(1, 1, 3, 4)
    >>> maps[0, 0, 2, 1] = 1.0                      # row 2, column 1
    >>> heatmap_argmax(maps)
    tensor([[[1., 2.]]])"""
    _check_heatmaps(heatmaps)
    b, k, h, w = heatmaps.shape
    idx = heatmaps.reshape(b, k, h * w).argmax(-1)                                     # (B, K)
    return torch.stack([idx % w, idx // w], dim=-1).to(heatmaps.dtype)


def soft_argmax2d(heatmaps: Tensor, beta: float = 1.0) -> Tensor:
    """The expected position under a softmax over each whole map: (B, K, H, W) -> (B, K, 2) (x, y), with

        x = sum_ij softmax(beta * H)[i, j] * j,     y = sum_ij softmax(beta * H)[i, j] * i,

    in pixel coordinates 0 ... W - 1 and 0 ... H - 1. Unlike argmax it is differentiable and not tied to the
    pixel grid (LIFT; integral regression, Sun et al. 2018). beta sharpens (large) or flattens (small) the
    distribution; a map that is constant gives the centre of the map.

    A 3 x 3 map with two equal peaks on the middle row: the expected position lies between them, and a
    flat map gives the centre; argmax would pick one peak:

    >>> maps = torch.full((1, 2, 3, 3), -30.0)
    >>> maps[0, 0, 1, 0] = maps[0, 0, 1, 2] = 0.0
    >>> maps[0, 1] = 0.0
    >>> soft_argmax2d(maps)
    tensor([[[1., 1.],
             [1., 1.]]])
    """
    _check_heatmaps(heatmaps)
    b, k, h, w = heatmaps.shape
    p = torch.softmax(beta * heatmaps.reshape(b, k, h * w), dim=-1).reshape(b, k, h, w)
    xs = torch.arange(w, device=heatmaps.device, dtype=heatmaps.dtype)
    ys = torch.arange(h, device=heatmaps.device, dtype=heatmaps.dtype)
    x = (p.sum(dim=2) * xs).sum(-1)                                                    # marginal over rows
    y = (p.sum(dim=3) * ys).sum(-1)                                                    # marginal over columns
    return torch.stack([x, y], dim=-1)


def rescale(keypoints: Tensor, stride: float) -> Tensor:
    """Coordinates on a map with ``stride`` image pixels per map pixel -> image pixels, pixel centres kept:
    map pixel j covers image pixels j * stride ... (j + 1) * stride - 1, centred on j * stride + (stride - 1) / 2."""
    return keypoints * stride + (stride - 1) / 2


def mean_error(pred: Tensor, gt: Tensor) -> Tensor:
    """Mean Euclidean distance in pixels between pred and gt (B, K, 2)."""
    _check_keypoints(pred, "pred")
    _check_keypoints(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got {tuple(pred.shape)} and {tuple(gt.shape)}")
    return (pred - gt).norm(dim=-1).mean()


def pck(pred: Tensor, gt: Tensor, threshold: float) -> Tensor:
    """Percentage of Correct Keypoints, as a fraction: the share of keypoints (B, K, 2) whose prediction lies
    within ``threshold`` pixels of the ground truth (distance <= threshold).

    >>> gt = torch.zeros(1, 4, 2)
    >>> pred = torch.tensor([[[0.0, 1.0], [2.0, 0.0], [3.0, 4.0], [0.5, 0.5]]])    # 1, 2, 5 and 0.71 px away
    >>> pck(pred, gt, threshold=2.0)
    tensor(0.7500)"""
    _check_keypoints(pred, "pred")
    _check_keypoints(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got {tuple(pred.shape)} and {tuple(gt.shape)}")
    if threshold < 0:
        raise ValueError(f"threshold is a distance in pixels and must be >= 0, got {threshold}")
    return ((pred - gt).norm(dim=-1) <= threshold).float().mean()


def render_paf(start: Tensor, end: Tensor, size: tuple[int, int], width: float = 1.5) -> Tensor:
    """Part affinity field of one limb type (OpenPose): start, end (B, P, 2) joints of P people -> (B, 2, H, W):
    at every pixel within ``width`` pixels of a limb the unit vector from its start to its end joint (the mean
    where limbs overlap), 0 elsewhere."""
    _check_keypoints(start, "start")
    _check_keypoints(end, "end")
    h, w = size
    xs = torch.arange(w, device=start.device, dtype=start.dtype)
    ys = torch.arange(h, device=start.device, dtype=start.dtype)
    p = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)                    # (H, W, 2)
    v = end - start
    length = v.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    u = v / length                                                                     # (B, P, 2)
    rel = p[None, None] - start[:, :, None, None, :]                                   # (B, P, H, W, 2)
    along = (rel * u[:, :, None, None, :]).sum(-1)
    across = (rel[..., 0] * u[:, :, None, None, 1] - rel[..., 1] * u[:, :, None, None, 0]).abs()
    on = ((along >= 0) & (along <= length[..., None]) & (across <= width)).to(start.dtype)  # (B, P, H, W)
    field = (on[..., None] * u[:, :, None, None, :]).sum(1) / on.sum(1).clamp_min(1)[..., None]
    return field.permute(0, 3, 1, 2)


def paf_score(paf: Tensor, a: Tensor, b: Tensor, samples: int = 10) -> Tensor:
    """How well candidate joints a (N, 2) and b (M, 2) of one image fit a limb, given its field paf (2, H, W):
    the mean over ``samples`` points of the segment a -> b of (field . unit direction) -> (N, M). About 1 for a
    real limb, about 0 for a pair that belongs to two different people (OpenPose's line integral)."""
    h, w = paf.shape[-2:]
    t = torch.linspace(0, 1, samples, device=paf.device, dtype=paf.dtype)
    d = b[None, :, :] - a[:, None, :]                                                  # (N, M, 2)
    u = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    pts = a[:, None, None, :] + t[None, None, :, None] * d[:, :, None, :]             # (N, M, T, 2)
    col = pts[..., 0].round().long().clamp(0, w - 1)
    row = pts[..., 1].round().long().clamp(0, h - 1)
    field = paf[:, row, col]                                                            # (2, N, M, T)
    return (field.permute(1, 2, 3, 0) * u[:, :, None, :]).sum(-1).mean(-1)


# ------------------------------------------------------------------------------------------ grouping people
def limb_fields(people: Tensor, bones: list[tuple[int, int]], size: tuple[int, int], width: float = 1.5) -> Tensor:
    """The part affinity fields of every limb type: people (B, P, K, 2), the K joints of P people per image ->
    (B, 2L, H, W) for L = len(bones): channels 2l and 2l + 1 are the x and y of bone l's field
    (:func:`render_paf` from joint bones[l][0] to joint bones[l][1])."""
    if not isinstance(people, Tensor) or people.dim() != 4 or people.shape[-1] != 2:
        shape = tuple(people.shape) if isinstance(people, Tensor) else type(people).__name__
        raise ValueError(f"people must be a (B, P, K, 2) tensor: P people of K joints per image, got {shape}")
    return torch.cat([render_paf(people[:, :, a], people[:, :, b], size, width) for a, b in bones], dim=1)


def limb_scores(fields: Tensor, people: Tensor, bones: list[tuple[int, int]], samples: int = 10) -> Tensor:
    """The line-integral score (:func:`paf_score`) of every candidate limb: fields (B, 2L, H, W) in the layout of
    :func:`limb_fields`, people (B, P, K, 2) -> (B, L, P, P), entry [b, l, i, j] scoring bone l from person i's
    start joint to person j's end joint. The candidates are the true joints: this measures the grouping alone."""
    if fields.dim() != 4 or fields.shape[1] != 2 * len(bones):
        raise ValueError(f"fields must be (B, 2L, H, W) with 2L = {2 * len(bones)} for {len(bones)} bones, "
                         f"got {tuple(fields.shape)}")
    return torch.stack([torch.stack([paf_score(f[2 * l:2 * l + 2], kp[:, a], kp[:, b], samples)
                                     for l, (a, b) in enumerate(bones)]) for f, kp in zip(fields, people)])


def pair_two(scores: Tensor) -> Tensor:
    """The better one-to-one grouping of two candidates a_0, a_1 with two candidates b_0, b_1:
    scores (..., 2, 2) [i, j] for a_i with b_j -> (..., 2) the partner of a_0 and of a_1: (0, 1) when the
    straight grouping scores at least as much as the crossed one, else (1, 0) (OpenPose's bipartite matching,
    for two people).

    >>> pair_two(torch.tensor([[0.9, 0.2], [0.1, 0.8]]))
    tensor([0, 1])"""
    if scores.dim() < 2 or scores.shape[-2:] != (2, 2):
        raise ValueError(f"scores must be (..., 2, 2): two candidates of each joint, got {tuple(scores.shape)}")
    straight = scores[..., 0, 0] + scores[..., 1, 1]
    crossed = scores[..., 0, 1] + scores[..., 1, 0]
    first = (crossed > straight).long()                                                 # a_0's partner
    return torch.stack([first, 1 - first], dim=-1)
