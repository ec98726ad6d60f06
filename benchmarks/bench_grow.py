"""Click-to-grow measured: IoU on annotated targets and false adds on background clicks.

    python benchmarks/bench_grow.py ../shared/datasets/sirst --split idx_427/trainval.txt \
        [--sample] [--jitter 2] [--bg-clicks 20] [--json out.json] [--set k=5 --set frac=0.3]

For every annotated target (8-connected component of a mask) the script clicks at its centroid
(the target pixel nearest to it when the centroid falls outside) and, with ``--jitter J``, at
``--jittered`` further points offset by up to ±J px in each axis, calls
:func:`napari_irsam.grow.grow_target` with nothing labelled, and scores the grown region by its
IoU with that target (a refusal scores 0 in the "all" median). Background clicks are uniform
random pixels at least ``--min-dist`` px (Euclidean) from every target pixel; **any** region
returned there counts as a false add (also the few that grow into a nearby target, which are
counted separately). ``--sample`` also runs the plugin's synthetic sample stack (8 × 256² uint16,
3 targets per frame). Images are read as BT.601 luminance, as the review widget does. Tune on a
trainval split only; ``--set name=value`` passes keyword arguments to ``grow_target``. Times are
the CPU time of this process per ``grow_target`` call (wall time means little on a loaded
machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from napari_irsam.grow import NoTargetError, grow_target

_EIGHT = np.ones((3, 3), bool)


def sirst_frames(root: Path, split: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, (H, W) float32 luminance, (H, W) bool mask) for every name of a split file."""
    split_file = root / "splits" / split
    for name in split_file.read_text().splitlines():
        name = name.strip()
        if not name:
            continue
        name = Path(name).stem if name.endswith(".png") else name
        with Image.open(root / "images" / f"{name}.png") as im:
            image = np.asarray(im.convert("L"), np.float32)
        with Image.open(root / "masks" / f"{name}.png") as im:
            mask = np.asarray(im.convert("L")) > 127
        yield name, image, mask


def sample_frames() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """The plugin's sample stack (File → Open Sample → napari-irsam), frame by frame."""
    from napari_irsam._sample_data import make_sample_data

    layers = make_sample_data()
    frames, labels = layers[0][0], layers[1][0]
    for i, (img, lab) in enumerate(zip(frames, labels, strict=True)):
        yield f"sample_{i:02d}", img.astype(np.float32), lab > 0


def click_points(comp: np.ndarray, rng: np.random.Generator, jitter: int, n_jit: int) -> list:
    """Centroid click (snapped onto the component if outside) + ``n_jit`` jittered clicks."""
    rr, cc = np.nonzero(comp)
    cy, cx = float(rr.mean()), float(cc.mean())
    r, c = int(round(cy)), int(round(cx))
    if not comp[r, c]:
        i = int(np.argmin((rr - cy) ** 2 + (cc - cx) ** 2))
        r, c = int(rr[i]), int(cc[i])
    pts = [("centroid", r, c)]
    h, w = comp.shape
    for _ in range(n_jit if jitter > 0 else 0):
        while True:
            dr, dc = (int(v) for v in rng.integers(-jitter, jitter + 1, 2))
            if (dr, dc) != (0, 0):
                break
        pts.append(("jittered", int(np.clip(r + dr, 0, h - 1)), int(np.clip(c + dc, 0, w - 1))))
    return pts


def run(
    frames: Iterator[tuple[str, np.ndarray, np.ndarray]],
    params: dict[str, Any],
    *,
    seed: int,
    jitter: int,
    n_jit: int,
    bg_clicks: int,
    min_dist: float,
) -> dict[str, Any]:
    """Score one set of frames; returns the summary and per-click lists."""
    rng = np.random.default_rng(seed)
    ious: dict[str, list[float]] = {"centroid": [], "jittered": []}
    refusals: dict[str, list[str]] = {"centroid": [], "jittered": []}
    adds: list[dict[str, Any]] = []
    n_bg, times, n_frames, n_targets = 0, [], 0, 0
    for name, image, mask in frames:
        n_frames += 1
        lab, n = ndimage.label(mask, structure=_EIGHT)
        for t in range(1, n + 1):
            comp = lab == t
            n_targets += 1
            for kind, r, c in click_points(comp, rng, jitter, n_jit):
                t0 = time.process_time()
                try:
                    grown = grow_target(image, (r, c), **params).mask
                except NoTargetError as exc:
                    ious[kind].append(0.0)
                    refusals[kind].append(f"{name} ({r}, {c}): {exc}")
                    continue
                finally:
                    times.append(time.process_time() - t0)
                ious[kind].append(float((grown & comp).sum() / (grown | comp).sum()))
        dist = ndimage.distance_transform_edt(~mask)
        cand = np.flatnonzero(dist.ravel() >= min_dist)
        for idx in rng.choice(cand, size=min(bg_clicks, cand.size), replace=False):
            r, c = divmod(int(idx), mask.shape[1])
            n_bg += 1
            t0 = time.process_time()
            try:
                res = grow_target(image, (r, c), **params)
            except NoTargetError:
                continue
            finally:
                times.append(time.process_time() - t0)
            grown = res.mask
            adds.append(
                {
                    "snr": round(res.snr, 1),
                    "frame": name,
                    "click": [r, c],
                    "area": int(grown.sum()),
                    "touches_target": bool((grown & mask).any()),
                }
            )
    out: dict[str, Any] = {"frames": n_frames, "targets": n_targets}
    for kind in ("centroid", "jittered"):
        v = np.asarray(ious[kind])
        if v.size == 0:
            continue
        grown_only = v[v > 0] if (v > 0).any() else np.zeros(1)
        out[kind] = {
            "clicks": int(v.size),
            "median_iou": round(float(np.median(v)), 3),
            "mean_iou": round(float(np.mean(v)), 3),
            "median_iou_grown": round(float(np.median(grown_only)), 3),
            "iou_ge_0.5": round(float(np.mean(v >= 0.5)), 3),
            "refusal_rate": round(len(refusals[kind]) / v.size, 4),
            "refused": refusals[kind][:50],
        }
    out["background"] = {
        "clicks": n_bg,
        "false_adds": len(adds),
        "false_add_rate": round(len(adds) / max(n_bg, 1), 4),
        "into_a_target": sum(a["touches_target"] for a in adds),
        "max_area": max((a["area"] for a in adds), default=0),
        "adds": adds[:50],
    }
    t = np.asarray(times) * 1000
    out["cpu_ms_per_click"] = {
        "median": round(float(np.median(t)), 2),
        "max": round(float(t.max()), 1),
    }
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown table of the summaries."""
    head = (
        "| set | targets | clicks | median IoU (all) | median IoU (grown) | IoU ≥ 0.5 | refused "
        "| bg clicks | false adds | CPU ms/click |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for name, res in results.items():
        bg = res["background"]
        first = True
        for kind in ("centroid", "jittered"):
            if kind not in res:
                continue
            k = res[kind]
            extra = ["", "", ""]
            if first:
                extra = [
                    str(bg["clicks"]),
                    f"{bg['false_adds']} ({bg['false_add_rate']:.2%})",
                    f"{res['cpu_ms_per_click']['median']:.1f}",
                ]
            first = False
            rows.append(
                f"| {name} {kind} | {res['targets']} | {k['clicks']} | {k['median_iou']:.3f} "
                f"| {k['median_iou_grown']:.3f} | {k['iou_ge_0.5']:.1%} | {k['refusal_rate']:.1%} "
                f"| {' | '.join(extra)} |"
            )
    return "\n".join(rows)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", nargs="?", help="IRSTD-layout folder (images/, masks/, splits/)")
    ap.add_argument("--split", default="idx_427/trainval.txt", help="file under splits/")
    ap.add_argument("--sample", action="store_true", help="also the plugin's sample frames")
    ap.add_argument("--jitter", type=int, default=2, help="max click offset, px per axis")
    ap.add_argument("--jittered", type=int, default=2, help="jittered clicks per target")
    ap.add_argument("--bg-clicks", type=int, default=20, help="background clicks per frame")
    ap.add_argument("--sample-bg-clicks", type=int, default=100, help="… per sample frame")
    ap.add_argument("--min-dist", type=float, default=3.0, help="px from any target")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], help="grow_target kwarg name=value")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    params = {k: _value(v) for k, v in (s.split("=", 1) for s in args.set)}
    common = dict(seed=args.seed, jitter=args.jitter, n_jit=args.jittered, min_dist=args.min_dist)
    results: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    if args.dataset:
        root = Path(args.dataset)
        label = f"{root.name} {Path(args.split).stem}"
        results[label] = run(
            sirst_frames(root, args.split), params, bg_clicks=args.bg_clicks, **common
        )
    if args.sample:
        results["sample"] = run(sample_frames(), params, bg_clicks=args.sample_bg_clicks, **common)
    print(table(results))
    print(f"params {params or 'defaults'}; {time.perf_counter() - t0:.0f} s")
    if args.json:
        meta = {
            "params": params,
            "args": vars(args),
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
            "wall_s": round(time.perf_counter() - t0, 1),
        }
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))


if __name__ == "__main__":
    main()
