"""Predictor: frames in (any bit depth, any size), per-frame IRSAM results out (torch/numpy only).

``Predictor.iter_predict`` is a generator that yields one :class:`FrameResult` per frame, so a
napari thread worker can show progress and cancel between frames; ``predict`` collects them.
Every map in a :class:`Prediction` is resampled to the input frame's (H, W) and aligned with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from . import flip_average, targets_large
from .model.calibration import UNCALIBRATED, probability
from .model.device import autocast_for, check_precision, select_device
from .model.irsam import IRSAM
from .preprocess import (
    TilePlan,
    as_frame_stack,
    blend_window,
    plan_native,
    plan_tiles,
    render_canvas,
    resize_hw,
    to_model_range,
)
from .refine import refine_targets


@dataclass
class Prediction:
    """IRSAM results for one frame of (H, W) pixels."""

    prob: np.ndarray  #: (H, W) float32, target probability σ(logit)
    mask: np.ndarray  #: (H, W) bool, prob > threshold
    #: (H, W) float32, GAD edge probability (None for frames segmented band by band)
    edges: np.ndarray | None
    #: (H, W, 3) float32 in [0, 1], PCA of stage-1 features (None unless "features" asked for)
    granularity_local: np.ndarray | None = None
    #: (H, W, 3) float32 in [0, 1], PCA of deep features (None unless "features" asked for)
    granularity_global: np.ndarray | None = None
    wpmd_edges: np.ndarray | None = None  #: (H, W) float32, WPMD edge strength (level 0)
    wpmd_diffused: np.ndarray | None = None  #: (H, W) float32, WPMD diffused features (level 0)
    seconds: float = 0.0  #: wall time spent on this frame
    logits: np.ndarray | None = None  #: (H, W) float32 raw logits (Predictor(keep_logits=True))

    # The two PCA maps are pictures of the encoder's features, not the GAD's granularity path
    # (the decoder's learned mix of the same features); these names say what they are.
    @property
    def features_early(self) -> np.ndarray | None:
        """Alias of ``granularity_local``: PCA colouring of the encoder's stage-1 features."""
        return self.granularity_local

    @property
    def features_deep(self) -> np.ndarray | None:
        """Alias of ``granularity_global``: PCA colouring of the final image embedding."""
        return self.granularity_global


@dataclass
class FrameResult:
    """One step of ``iter_predict``: frame ``index`` of ``total`` is done."""

    index: int
    total: int
    prediction: Prediction


class _PCA3:
    """A 3-component PCA basis fitted once per ``predict`` call, so colours mean the same thing
    in every tile and frame of a stack. Maps (B, C, h, w) features to (B, 3, h, w) in [0, 1]."""

    def __init__(self) -> None:
        self.mean: torch.Tensor | None = None
        self.basis: torch.Tensor | None = None
        self.lo: torch.Tensor | None = None
        self.hi: torch.Tensor | None = None

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        b, c, h, w = feats.shape
        x = feats.float().permute(0, 2, 3, 1).reshape(-1, c)
        if self.basis is None:
            self.mean = x.mean(0)
            _, _, v = torch.linalg.svd(x - self.mean, full_matrices=False)
            basis = v[:3].T  # (C, 3)
            signs = torch.sign(basis[basis.abs().argmax(0), torch.arange(basis.shape[1])])
            self.basis = basis * torch.where(signs == 0, 1.0, signs)
            proj = (x - self.mean) @ self.basis
            self.lo = torch.quantile(proj[:: max(1, proj.shape[0] // 50_000)], 0.01, dim=0)
            self.hi = torch.quantile(proj[:: max(1, proj.shape[0] // 50_000)], 0.99, dim=0)
        proj = (x - self.mean) @ self.basis
        proj = ((proj - self.lo) / (self.hi - self.lo).clamp_min(1e-6)).clamp(0, 1)
        k = proj.shape[1]
        out = proj.reshape(b, h, w, k).permute(0, 3, 1, 2)
        if k < 3:  # fewer than 3 channels (tiny test inputs): pad with zeros
            out = torch.cat([out, out.new_zeros(b, 3 - k, h, w)], 1)
        return out


@dataclass
class _FrameAcc:
    """Blended accumulation of tile outputs for one frame on its padded canvas."""

    index: int
    plan: TilePlan
    pending: int
    started: float
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    weight: np.ndarray | None = None
    frame: np.ndarray | None = None  #: the source frame, kept when outlines are refined


#: a tile waiting for the model: its frame's accumulator, its origin, its (th, tw, 3) pixels
_Tile = tuple[_FrameAcc, tuple[int, int], np.ndarray]

#: optional display maps: "features" = the two PCA colourings of the encoder features,
#: "wpmd" = WPMD edge strength and diffused map (level 0). Mask, probability and GAD edges are
#: always computed.
DISPLAY_MAPS = ("features", "wpmd")

#: per-tile output name → channels
_CHANNELS = {
    "logits": 1,
    "edges": 1,
    "wpmd_edges": 1,
    "wpmd_diffused": 1,
    "g_local": 3,
    "g_global": 3,
}


class Predictor:
    """Run an IRSAM model on frames.

    Args:
        model: an :class:`IRSAM` model (moved to ``device`` and put in eval mode).
        device: ``"auto"`` (CUDA > MPS > CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
        threshold: probability threshold of the binary mask; None = the checkpoint's calibrated
            one (:mod:`~napari_irsam.model.calibration`), 0.5 (logit > 0, the release's) without.
        min_peak: a target (8-connected) is kept only when its peak probability reaches this;
            None = the checkpoint's calibrated value, 0 (keep all) without one.
        geometry: ``"auto"``, ``"squash"`` (release parity) or ``"tile"``; see ``preprocess``.
        intensity: ``"auto"`` (uint8 as is, others percentile-stretched), ``"percentile"``,
            ``"none"``.
        percentiles: low/high percentiles of the stretch.
        batch_size: tiles per forward pass (default 1 on CPU, 4 on GPU).
        overlap: tile overlap in pixels; ``max_upscale``: largest upscaling of small frames.
        precision: ``"fp32"``, or ``"fp16"``/``"bf16"`` autocast on CUDA.
        maps: optional display maps to compute (subset of ``DISPLAY_MAPS``; default all). The CLI
            asks for none: the PCA and the WPMD maps cost time and memory nobody looks at.
        max_side: models that take frames of any size (``pe_mode="tile"``) run
            ``geometry="auto"`` frames whole at native resolution up to this side (px), tiled
            beyond it.
        band_pixels: frames of more pixels (H × W) are segmented band by band without a
            full-frame float copy (:mod:`napari_irsam.banded`; probability and mask only);
            default :data:`~napari_irsam.targets_large.LARGE_PIXELS` = 4096² (a 640 × 512 frame
            is 0.33 M).
        tta: flip test-time augmentation (:mod:`napari_irsam.flip_average`): each tile is also
            run mirrored and the two views' logits are averaged, for twice the compute.
        keep_logits: also return the raw (H, W) logits (``Prediction.logits``), for calibration.
        refine: redraw each target's outline at this fraction of its peak contrast over the local
            background (:mod:`napari_irsam.refine`); None = the checkpoint's calibrated value,
            0 (the model's outlines) without one.

    Probabilities are σ(logit / T) with the checkpoint's calibrated temperature T (1 without).
    """

    def __init__(
        self,
        model: IRSAM,
        device: str | torch.device | None = "auto",
        threshold: float | None = None,
        geometry: str = "auto",
        intensity: str = "auto",
        percentiles: tuple[float, float] = (0.5, 99.99),
        batch_size: int | None = None,
        overlap: int = 64,
        max_upscale: float = 2.0,
        precision: str = "fp32",
        maps: tuple[str, ...] | list[str] = DISPLAY_MAPS,
        max_side: int = 1024,
        band_pixels: int | None = None,
        tta: bool = False,
        min_peak: float | None = None,
        keep_logits: bool = False,
        refine: float | None = None,
    ) -> None:
        bad = set(maps) - set(DISPLAY_MAPS)
        if bad:
            raise ValueError(f"Unknown display maps {sorted(bad)}; choose from {DISPLAY_MAPS}.")
        check_precision(precision)
        self.maps = tuple(maps)
        self.max_side = max_side
        self.band_pixels = targets_large.LARGE_PIXELS if band_pixels is None else int(band_pixels)
        self.device = select_device(device)
        self.model = model.to(self.device).eval()
        cal = getattr(model, "calibration", None) or UNCALIBRATED
        self.temperature = cal.temperature
        self.threshold = cal.threshold if threshold is None else float(threshold)
        self.min_peak = cal.min_peak if min_peak is None else float(min_peak)
        for name, v in (("threshold", self.threshold), ("min_peak", self.min_peak)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {v}.")
        self.refine = cal.refine if refine is None else float(refine)
        if not 0.0 <= self.refine < 1.0:
            raise ValueError(f"refine must be a contrast fraction in [0, 1), got {self.refine}.")
        self.keep_logits = bool(keep_logits)
        self.geometry = geometry
        self.intensity = intensity
        self.percentiles = percentiles
        self.batch_size = batch_size or (4 if self.device.type == "cuda" else 1)
        self.overlap = overlap
        self.max_upscale = max_upscale
        self.precision = precision
        self.tta = bool(tta)
        plan_tiles((8, 8), self.size, geometry)  # validates geometry early
        self._weight_cache: dict[tuple[tuple[int, int], bool], np.ndarray] = {}

    @property
    def any_size(self) -> bool:
        """The model takes frames of any size in one pass (its positional encoding tiles)."""
        cfg = getattr(self.model, "config", None)  # stand-in models in tests have none
        return cfg is not None and cfg.pe_mode == "tile"

    @property
    def size(self) -> int:
        """Side S of the square model input in pixels."""
        return self.model.image_size

    def predict_frame(self, frame: np.ndarray) -> Prediction:
        """One 2-D (or RGB) frame → its :class:`Prediction`."""
        stack, single = as_frame_stack(frame)
        if not single:
            raise ValueError(f"predict_frame takes one frame, got a stack of {stack.shape[0]}.")
        return self.predict(stack)[0]

    def predict(self, frames: np.ndarray) -> list[Prediction]:
        """A frame (H, W[, C]) or a stack (N, H, W[, C]) → one Prediction per frame."""
        return [r.prediction for r in self.iter_predict(frames)]

    def iter_predict(
        self, frames: np.ndarray, should_stop: Callable[[], bool] | None = None
    ) -> Iterator[FrameResult]:
        """Yield a :class:`FrameResult` as each frame completes; stops early when
        ``should_stop()`` returns True (checked between batches) or the generator is closed."""
        stack, _ = as_frame_stack(frames)  # a lazy stack stays lazy: frames are read one by one
        total = stack.shape[0]
        pca_local, pca_global = _PCA3(), _PCA3()
        queue: list[_Tile] = []
        for i in range(total):
            frame = stack[i]
            banded = self._banded(frame.shape[:2])
            if not banded:
                acc, tiles = self._start_frame(i, np.asarray(frame))
                queue.extend((acc, origin, tile) for origin, tile in tiles)
            # flush: full batches, or everything before a banded frame or at the end
            while len(queue) >= self.batch_size or ((banded or i == total - 1) and queue):
                if should_stop is not None and should_stop():
                    return
                # a batch holds tiles of one size (whole frames of any size differ)
                n = 1
                while n < min(self.batch_size, len(queue)) and (
                    queue[n][2].shape == queue[0][2].shape
                ):
                    n += 1
                batch, queue = queue[:n], queue[n:]
                yield from self._run_batch(batch, total, pca_local, pca_global)
            if banded:
                from .banded import predict_banded

                pred = predict_banded(self, frame, should_stop)
                if pred is None:
                    return
                yield FrameResult(i, total, pred)

    def _banded(self, hw: tuple[int, ...]) -> bool:
        """A frame this large goes band by band (native resolution only: not ``squash``)."""
        h, w = int(hw[0]), int(hw[1])
        return self.geometry != "squash" and h * w > self.band_pixels and max(h, w) > self.size

    def _start_frame(
        self, index: int, frame: np.ndarray
    ) -> tuple[_FrameAcc, list[tuple[tuple[int, int], np.ndarray]]]:
        """Map one frame to 0–255, plan its geometry and cut its (S, S, 3) uint8 tiles."""
        started = time.perf_counter()
        image = to_model_range(frame, self.intensity, self.percentiles)
        if self.geometry == "auto" and self.any_size:
            plan = plan_native(image.shape[:2], self.max_side, self.overlap)
        else:
            plan = plan_tiles(
                image.shape[:2], self.size, self.geometry, self.max_upscale, self.overlap
            )
        canvas = render_canvas(image, plan)
        th, tw = plan.tile_size(self.size)
        tiles = [((y, x), canvas[y : y + th, x : x + tw]) for y, x in plan.origins]
        acc = _FrameAcc(index, plan, len(tiles), started, frame=frame if self.refine else None)
        return acc, tiles

    @torch.inference_mode()
    def _run_batch(
        self, batch: list[_Tile], total: int, pca_local: _PCA3, pca_global: _PCA3
    ) -> Iterator[FrameResult]:
        """Forward a batch of tiles, blend them into their frames, yield completed frames."""
        x = torch.from_numpy(np.stack([t for _, _, t in batch])).permute(0, 3, 1, 2)
        x = x.to(self.device, torch.float32)
        with autocast_for(self.device, self.precision):
            out = flip_average.forward(self.model, x, self.tta)
        th, tw = x.shape[-2:]
        level0 = out.wpmd.get("0")
        maps = {"logits": out.mask_logits.float(), "edges": out.edges.float()}
        if "features" in self.maps:
            maps["g_local"] = resize_hw(pca_local(out.interm), (th, tw))
            maps["g_global"] = resize_hw(pca_global(out.embedding), (th, tw))
        if level0 is not None and "wpmd" in self.maps:
            maps["wpmd_edges"] = resize_hw(level0["edge"].float(), (th, tw))
            maps["wpmd_diffused"] = resize_hw(level0["diffused"].float(), (th, tw))
        host = {k: v.float().cpu().numpy() for k, v in maps.items()}
        for j, (acc, (y, x0), _) in enumerate(batch):
            if acc.weight is None:
                acc.weight = np.zeros(acc.plan.canvas_hw, np.float32)
                acc.maps = {
                    k: np.zeros((_CHANNELS[k], *acc.plan.canvas_hw), np.float32) for k in host
                }
            w = self._weights((th, tw), len(acc.plan.origins) > 1)
            acc.weight[y : y + th, x0 : x0 + tw] += w
            for k, v in host.items():
                acc.maps[k][:, y : y + th, x0 : x0 + tw] += v[j] * w
            acc.pending -= 1
            if acc.pending == 0:
                yield FrameResult(acc.index, total, self._finish(acc))

    def _weights(self, hw: tuple[int, int], blended: bool) -> np.ndarray:
        """Blend weights of one tile: a ramp when the frame has several tiles, else flat."""
        key = (hw, blended)
        if key not in self._weight_cache:
            self._weight_cache[key] = (
                blend_window(hw, self.overlap) if blended else np.ones(hw, np.float32)
            )
        return self._weight_cache[key]

    def _finish(self, acc: _FrameAcc) -> Prediction:
        plan = acc.plan
        sh, sw = plan.scaled_hw
        out: dict[str, np.ndarray] = {}
        for k, v in acc.maps.items():
            t = torch.from_numpy(v[:, :sh, :sw] / acc.weight[:sh, :sw])
            out[k] = resize_hw(t[None], plan.frame_hw)[0].numpy()
        logits = out["logits"][0]
        prob = self.probability(logits)
        return Prediction(
            prob=prob,
            mask=self.targets(prob, acc.frame),
            edges=out["edges"][0],
            granularity_local=_rgb(out.get("g_local")),
            granularity_global=_rgb(out.get("g_global")),
            wpmd_edges=out["wpmd_edges"][0] if "wpmd_edges" in out else None,
            wpmd_diffused=out["wpmd_diffused"][0] if "wpmd_diffused" in out else None,
            seconds=time.perf_counter() - acc.started,
            logits=logits if self.keep_logits else None,
        )

    def probability(self, logits: np.ndarray) -> np.ndarray:
        """(H, W) logits → (H, W) float32 probabilities σ(logit / T)."""
        return probability(logits, self.temperature)

    def targets(self, prob: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
        """(H, W) probabilities → (H, W) bool mask: ``prob > threshold``, then the targets whose
        peak is below ``min_peak`` removed (banded frames do the same band by band), then, given
        the (H, W[, C]) ``frame`` and a ``refine`` fraction, each outline redrawn on it."""
        mask = targets_large.threshold_targets(prob, self.threshold, self.min_peak)
        if frame is not None and self.refine:
            mask = refine_targets(frame, mask, self.refine)
        return mask


def _rgb(chw: np.ndarray | None) -> np.ndarray | None:
    """(3, H, W) → contiguous (H, W, 3), or None."""
    return None if chw is None else np.ascontiguousarray(chw.transpose(1, 2, 0))
