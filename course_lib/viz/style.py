"""One look for every figure: large type and colour-blind-safe colours that read on a projector.

Presentation mode is an explicit call, ``use_presentation_style()``: every plotly font becomes 20 px
instead of 16, and matplotlib's type, lines and figures grow for the back of a lecture hall. Importing
this module changes nothing. Each notebook calls ``use_presentation_style(P.presentation)`` in its first
cell, and ``P.presentation`` is true when ``COURSE_PRESENTATION=1`` (set it before starting JupyterLab,
or pass ``--presentation`` to the rendered course).
"""
from __future__ import annotations

import io

import numpy as np
import torch

__all__ = ["PALETTE", "MATPLOTLIB_PRESENTATION", "font_size", "use_presentation_style", "color_of", "plotly_layout",
           "to_numpy", "image2d", "image_png"]

# Okabe & Ito (2008) colour-blind-safe colours (their yellow darkened to read on white),
# extended with brown and grey for 10 classes.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7",
           "#56B4E9", "#B8A200", "#000000", "#8C564B", "#7F7F7F"]
FONT_SIZES = {False: 16, True: 20}   # px, plotly and widget text: laptop, projector
# matplotlib's defaults are 10 pt type on 100-dpi figures: fine on a laptop, too small for a projector.
MATPLOTLIB_PRESENTATION = {"font.size": 15, "axes.titlesize": 17, "axes.labelsize": 16, "xtick.labelsize": 14,
                           "ytick.labelsize": 14, "legend.fontsize": 14, "figure.titlesize": 18,
                           "lines.linewidth": 2.5, "figure.dpi": 110}
_state = {"presentation": False, "saved": None}   # saved: matplotlib's settings before presentation mode


def use_presentation_style(on: bool = True) -> None:
    """Large type for a projector from now on (``on=False``: back to the laptop style and matplotlib's own settings).

    Plotly figures and widget captions made afterwards use 20 px type instead of 16; matplotlib's
    ``rcParams`` get :data:`MATPLOTLIB_PRESENTATION`. Only this call changes them, never an import.
    """
    if on and not _state["presentation"]:
        import matplotlib
        _state["saved"] = {k: matplotlib.rcParams[k] for k in MATPLOTLIB_PRESENTATION}
        matplotlib.rcParams.update(MATPLOTLIB_PRESENTATION)
    elif not on and _state["presentation"]:
        import matplotlib
        matplotlib.rcParams.update(_state["saved"])
        _state["saved"] = None
    _state["presentation"] = bool(on)


def font_size() -> int:
    """Plotly and widget type size in px: 16, or 20 in presentation mode."""
    return FONT_SIZES[_state["presentation"]]


def color_of(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def plotly_layout(**overrides) -> dict:
    """Shared plotly layout: white background, large fonts, legend that does not hide the data."""
    layout = dict(template="plotly_white", font=dict(size=font_size()), margin=dict(l=60, r=20, t=60, b=50),
                  legend=dict(font=dict(size=font_size())), hoverlabel=dict(font_size=font_size()))
    layout.update(overrides)
    return layout


def to_numpy(x, dtype=None) -> np.ndarray:
    """A tensor (any device; detached) or anything array-like as a numpy array, cast to ``dtype`` if given."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        a = (x.float() if dtype is not None or x.dtype == torch.bfloat16 else x).numpy()
    else:
        a = np.asarray(x)
    return a.astype(dtype, copy=False) if dtype is not None else a


def image2d(image) -> np.ndarray:
    """A gray image (H, W), or with extra size-1 dimensions (1, H, W), tensor or array, as an (H, W) float32
    array for drawing."""
    a = to_numpy(image, np.float32)
    if a.ndim > 2:
        a = np.squeeze(a)                        # (1, H, W), (H, W, 1), (1, 1, H, W), ...
    if a.ndim != 2:
        raise ValueError(f"image must be (H, W) or (1, H, W), got shape {a.shape}")
    return a


def image_png(image: torch.Tensor | np.ndarray, scale: int = 5) -> bytes:
    """A (1, H, W) or (H, W) image in [0, 1] as PNG bytes, enlarged ``scale`` times with square pixels."""
    from PIL import Image
    a = image2d(image)
    img = Image.fromarray((np.clip(a, 0, 1) * 255).astype(np.uint8), mode="L")
    img = img.resize((a.shape[1] * scale, a.shape[0] * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
