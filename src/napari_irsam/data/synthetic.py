"""Procedural infrared scenes with small targets and exact ground truth (numpy/scipy only).

Scene model (all seeded, vectorised):

* **Background** (values ≈ 0–1 before the sensor): ``sky`` (vertical gradient + faint 1/f
  texture), ``cloud`` (thresholded 1/f field with bright rims — the classic false alarms), ``sea``
  (horizon line, horizontally stretched 1/f waves, sparse elongated glints), ``ground``
  (horizon, 1/f terrain, warm rectangular buildings with bright edges and hot corners). 1/f
  texture is white noise shaped by 1/f^(β/2) in the Fourier domain.
* **Targets** (1–80 px): *point* targets are Gaussian PSFs (σ 0.5–1.6 px); *extended* targets are
  rotated ellipses with a soft edge and a noise-modulated outline. Amplitude is set from the
  requested **SNR = (peak − μ_bg) / σ_bg**, where μ_bg and σ_bg are the mean and standard deviation
  of the final image (noise included) in a 21×21 window around the target, target excluded.
* **Sensor**: optical blur (Gaussian, σ 0–1 px), vignetting, fixed-pattern column/row offsets,
  Gaussian read noise and signal-dependent shot noise.
* **Ground truth**: a pixel belongs to a target where the target's own (noise-free, blurred)
  contribution is ≥ 50 % of its peak, plus always its brightest pixel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

BACKGROUNDS = ("sky", "cloud", "sea", "ground")


@dataclass
class Scene:
    """One generated frame."""

    image: np.ndarray  #: (H, W) float32 in [0, 1], or uint8/uint16 as requested
    mask: np.ndarray  #: (H, W) uint8, 0/255
    labels: np.ndarray  #: (H, W) int32, one id per target (1..n)
    targets: list[dict] = field(default_factory=list)  #: centroid, area, snr, kind per target
    background: str = ""


def fractal_noise(
    shape: tuple[int, int],
    beta: float,
    rng: np.random.Generator,
    stretch: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Zero-mean, unit-std 1/f^(β/2)-shaped noise of ``shape``; ``stretch`` (y, x) > 1 makes it
    smoother along that axis."""
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None] * stretch[0]
    fx = np.fft.rfftfreq(w)[None, :] * stretch[1]
    f = np.sqrt(fy**2 + fx**2)
    f[0, 0] = 1.0
    spectrum = np.fft.rfft2(rng.standard_normal(shape)) / f ** (beta / 2)
    spectrum[0, 0] = 0
    out = np.fft.irfft2(spectrum, s=shape)
    return ((out - out.mean()) / (out.std() + 1e-12)).astype(np.float32)


def _sky(shape, rng):
    h, w = shape
    grad = np.linspace(rng.uniform(0.25, 0.45), rng.uniform(0.35, 0.6), h, dtype=np.float32)[
        :, None
    ]
    return grad + 0.02 * fractal_noise(shape, 3.0, rng)


def _cloud(shape, rng):
    base = _sky(shape, rng)
    field_ = fractal_noise(shape, rng.uniform(3.0, 4.0), rng)
    cover = 1 / (1 + np.exp(-(field_ - rng.uniform(-0.5, 0.8)) * rng.uniform(2, 6)))
    rim = ndimage.gaussian_gradient_magnitude(cover, 1.0)
    rim /= rim.max() + 1e-6
    return base + rng.uniform(0.1, 0.3) * cover + rng.uniform(0.05, 0.2) * rim


def _horizon(shape, rng, lo=0.3, hi=0.7):
    h, w = shape
    row = int(h * rng.uniform(lo, hi))
    wobble = (2 * fractal_noise((1, w), 2.0, rng)[0]).astype(int)
    rows = np.arange(h)[:, None]
    return rows >= (row + wobble)[None, :]


def _sea(shape, rng):
    below = _horizon(shape, rng)
    sea = rng.uniform(0.2, 0.4) + 0.05 * fractal_noise(shape, 2.5, rng, stretch=(1.0, 6.0))
    glint = (rng.random(shape) > 0.998).astype(np.float32)
    glint = ndimage.gaussian_filter(glint, (0.6, 2.0)) * rng.uniform(2, 6)
    out = np.where(below, sea + glint, _sky(shape, rng))
    return out.astype(np.float32)


def _ground(shape, rng):
    h, w = shape
    below = _horizon(shape, rng, 0.2, 0.6)
    terrain = rng.uniform(0.35, 0.55) + 0.06 * fractal_noise(shape, 2.8, rng)
    buildings = np.zeros(shape, np.float32)
    for _ in range(rng.integers(2, 9)):  # a handful of rectangles: a Python loop over objects
        bh = int(rng.integers(max(2, h // 32), max(3, h // 3)))
        bw = int(rng.integers(max(2, w // 32), max(3, w // 4)))
        y, x = rng.integers(0, h - bh), rng.integers(0, w - bw)
        buildings[y : y + bh, x : x + bw] = rng.uniform(0.05, 0.25)
    edges = ndimage.morphological_gradient(buildings, size=2)
    corners = ndimage.maximum_filter(np.abs(ndimage.sobel(ndimage.sobel(buildings, 0), 1)), 2)
    terrain = terrain + buildings + 0.6 * edges + 0.15 * corners
    return np.where(below, terrain, _sky(shape, rng)).astype(np.float32)


_MAKERS = {"sky": _sky, "cloud": _cloud, "sea": _sea, "ground": _ground}


def make_background(shape: tuple[int, int], kind: str, rng: np.random.Generator) -> np.ndarray:
    """Noise-free background (H, W) float32, values roughly in [0, 1]."""
    if kind == "random":
        kind = str(rng.choice(BACKGROUNDS))
    if kind not in _MAKERS:
        raise ValueError(f"Unknown background {kind!r}; choose one of {BACKGROUNDS + ('random',)}.")
    return _MAKERS[kind](shape, rng).astype(np.float32)


def target_profile(
    shape: tuple[int, int],
    center: tuple[float, float],
    kind: str,
    size: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Unit-peak (H, W) target profile; ``size`` is σ (point) or the semi-major axis (extended)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    dy, dx = yy - center[0], xx - center[1]
    if kind == "point":
        prof = np.exp(-(dy**2 + dx**2) / (2 * size**2))
    else:
        theta = rng.uniform(0, np.pi)
        ratio = rng.uniform(0.4, 1.0)
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        r = np.sqrt((u / size) ** 2 + (v / (size * ratio)) ** 2)
        angle = np.arctan2(v, u)
        wobble = 1 + 0.15 * np.sin(rng.integers(2, 5) * angle + rng.uniform(0, 6.28))
        prof = 1 / (1 + np.exp(np.clip((r - wobble) * 6.0, -50, 50)))
    return (prof / prof.max()).astype(np.float32)


def _local_stats(img: np.ndarray, cy: int, cx: int, exclude: np.ndarray, half: int = 10):
    y0, y1 = max(0, cy - half), min(img.shape[0], cy + half + 1)
    x0, x1 = max(0, cx - half), min(img.shape[1], cx + half + 1)
    win = img[y0:y1, x0:x1]
    keep = ~exclude[y0:y1, x0:x1]
    vals = win[keep] if keep.sum() > 10 else win.ravel()
    return float(vals.mean()), float(vals.std() + 1e-6)


def _sensor(scene: np.ndarray, rng: np.random.Generator, blur: float, noise: float) -> np.ndarray:
    h, w = scene.shape
    out = ndimage.gaussian_filter(scene, blur) if blur > 0 else scene.copy()
    yy, xx = np.mgrid[:h, :w]
    r2 = ((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2
    out = out * (1 - rng.uniform(0, 0.5) * r2)  # vignetting
    out = out + rng.normal(0, noise * 0.3, (1, w)) + rng.normal(0, noise * 0.2, (h, 1))  # FPN
    shot = np.sqrt(np.clip(out, 0, None)) * rng.normal(0, noise * 0.5, (h, w))
    return (out + shot + rng.normal(0, noise, (h, w))).astype(np.float32)


def make_scene(
    shape: tuple[int, int] = (256, 256),
    n_targets: int | None = None,
    seed: int | np.random.Generator = 0,
    background: str = "random",
    snr_range: tuple[float, float] = (1.5, 12.0),
    size_range: tuple[int, int] = (1, 80),
    point_fraction: float = 0.5,
    dtype: str = "float32",
    gamma_range: tuple[float, float] = (1.0, 1.0),
) -> Scene:
    """Generate one scene; see the module docstring for the model.

    Args:
        shape: (H, W) in pixels. n_targets: None draws 1–4. seed: int or Generator.
        snr_range: SNR drawn log-uniformly per target (dim targets are as common as bright ones
            per octave). size_range: allowed GT areas in pixels.
        point_fraction: share of Gaussian point targets (the rest are extended).
        dtype: ``"float32"`` ([0, 1]), ``"uint8"`` or ``"uint16"``.
        gamma_range: camera/display response: the normalised frame is raised to a power drawn
            from this range (monotonic, so targets stay where they are; their contrast changes).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    h, w = shape
    kind = str(rng.choice(BACKGROUNDS)) if background == "random" else background
    clean = make_background(shape, kind, rng)
    blur, noise = rng.uniform(0.0, 1.0), rng.uniform(0.004, 0.02)
    img = _sensor(clean, rng, blur, noise)
    n = int(rng.integers(1, 5)) if n_targets is None else n_targets
    labels = np.zeros(shape, np.int32)
    targets = []
    for _ in range(n * 4):  # retries when a draw falls outside the size range or overlaps
        if len(targets) == n:
            break
        point = rng.random() < point_fraction
        size = rng.uniform(0.5, 1.6) if point else rng.uniform(1.5, 6.0)
        cy, cx = rng.uniform(8, h - 8), rng.uniform(8, w - 8)
        prof = target_profile(shape, (cy, cx), "point" if point else "extended", size, rng)
        if blur > 0:
            prof = ndimage.gaussian_filter(prof, blur)
            prof /= prof.max()
        gt = prof >= 0.5
        gt[np.unravel_index(np.argmax(prof), shape)] = True
        area = int(gt.sum())
        grown = ndimage.binary_dilation(labels > 0, iterations=3)
        if not size_range[0] <= area <= size_range[1] or (gt & grown).any():
            continue
        iy, ix = (int(v) for v in np.unravel_index(np.argmax(prof), shape))
        mu, sd = _local_stats(img, iy, ix, ndimage.binary_dilation(gt, iterations=2))
        snr = float(np.exp(rng.uniform(*np.log(snr_range))))
        peak_bg = img[iy, ix]
        amp = max(mu + snr * sd - peak_bg, 0.0) + 0.0  # makes the peak hit μ + SNR·σ
        img = img + amp * prof
        labels[gt] = len(targets) + 1
        targets.append(
            {
                "centroid": (float(cy), float(cx)),
                "area": area,
                "snr": snr,
                "kind": "point" if point else "extended",
            }
        )
    if gamma_range != (1.0, 1.0):
        unit = _to_dtype(img, "float32")
        img = unit ** float(rng.uniform(*gamma_range))
    image = _to_dtype(img, dtype)
    mask = np.where(labels > 0, 255, 0).astype(np.uint8)
    return Scene(image, mask, labels, targets, kind)


def _to_dtype(img: np.ndarray, dtype: str) -> np.ndarray:
    lo, hi = np.percentile(img, [0.1, 99.99])
    span = max(hi - lo, 1e-6)
    unit = np.clip((img - lo) / (span * 1.05), 0, 1).astype(np.float32)
    if dtype == "float32":
        return unit
    if dtype == "uint8":
        return np.round(unit * 255).astype(np.uint8)
    if dtype == "uint16":  # a 14-bit-like thermal camera range with an offset
        return np.round(2000 + unit * 12000).astype(np.uint16)
    raise ValueError(f"dtype must be 'float32', 'uint8' or 'uint16', got {dtype!r}.")


def make_sequence(
    n_frames: int = 8,
    shape: tuple[int, int] = (256, 256),
    seed: int = 0,
    n_targets: int = 3,
    background: str = "random",
    dtype: str = "uint16",
) -> tuple[np.ndarray, np.ndarray]:
    """Moving targets over a slowly drifting background.

    Returns ``(frames (N, H, W), labels (N, H, W) int32)``; a target keeps its id in every frame.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    pad = 2 * n_frames + 8
    big = make_background((h + pad, w + pad), background, rng)
    drift = rng.uniform(-1.5, 1.5, 2)
    starts = [(rng.uniform(20, h - 20), rng.uniform(20, w - 20)) for _ in range(n_targets)]
    vel = [rng.uniform(-3, 3, 2) for _ in range(n_targets)]
    kinds = ["point" if i % 2 == 0 else "extended" for i in range(n_targets)]
    sizes = [rng.uniform(0.7, 1.4) if k == "point" else rng.uniform(2.0, 4.0) for k in kinds]
    snrs = rng.uniform(3.0, 10.0, n_targets)
    frames, labels = [], []
    for t in range(n_frames):
        oy, ox = (np.clip(pad / 2 + drift * t, 0, pad)).astype(int)
        img = _sensor(big[oy : oy + h, ox : ox + w], rng, 0.5, 0.01)
        lab = np.zeros(shape, np.int32)
        for i in range(n_targets):
            cy = float(np.clip(starts[i][0] + vel[i][0] * t, 8, h - 8))
            cx = float(np.clip(starts[i][1] + vel[i][1] * t, 8, w - 8))
            prof = target_profile(
                shape, (cy, cx), kinds[i], sizes[i], np.random.default_rng(seed + i)
            )
            gt = prof >= 0.5
            iy, ix = (int(v) for v in np.unravel_index(np.argmax(prof), shape))
            mu, sd = _local_stats(img, iy, ix, ndimage.binary_dilation(gt, iterations=2))
            img = img + max(mu + snrs[i] * sd - img[iy, ix], 0.0) * prof
            lab[gt & (lab == 0)] = i + 1
        frames.append(img)
        labels.append(lab)
    stack = np.stack(frames)
    return _to_dtype(stack, dtype), np.stack(labels)


def make_dataset(
    folder: str | os.PathLike[str],
    n_images: int,
    seed: int = 0,
    size: tuple[int, int] = (256, 256),
    test_fraction: float = 0.25,
    **scene_kwargs,
) -> Path:
    """Write an IRSTD-layout dataset: images/, masks/ (0/255 PNG), splits/train.txt, test.txt.

    ``scene_kwargs`` go to :func:`make_scene` (e.g. ``snr_range``, ``gamma_range``)."""
    from .io import atomic_write_bytes, write_png

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n_images):
        scene = make_scene(size, seed=rng, dtype="uint8", **scene_kwargs)
        name = f"syn_{i:05d}"
        write_png(folder / "images" / f"{name}.png", scene.image)
        write_png(folder / "masks" / f"{name}.png", scene.mask)
        names.append(name)
    n_test = max(1, int(round(n_images * test_fraction))) if n_images > 1 else 0
    order = rng.permutation(n_images)
    test = sorted(names[i] for i in order[:n_test])
    train = sorted(names[i] for i in order[n_test:])
    atomic_write_bytes(folder / "splits" / "train.txt", ("\n".join(train) + "\n").encode())
    atomic_write_bytes(folder / "splits" / "test.txt", ("\n".join(test) + "\n").encode())
    return folder
