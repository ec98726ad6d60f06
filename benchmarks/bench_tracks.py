"""Tracks and temporal consistency measured on synthetic recordings with ground-truth tracks.

    python benchmarks/bench_tracks.py [--seeds 0 1 2] [--frames 100] [--targets 5]
        [--models classical:tophat classical:tophat:k=6 default] [--json out.json]

Each seed makes one recording (:func:`napari_irsam.data.synthetic_video.make_recording`:
256 × 256 uint16, ``--targets`` moving targets at SNR 2–6, cloud clutter, one flicker per frame
on average, camera jitter 0.7 px). Every model segments it once (``RunSpec``, CPU); the frames are
then replayed with and without temporal consistency
(:class:`napari_irsam.tracks_temporal.TemporalSegmenter`, default parameters), so both see the
same per-frame output. For each: Pd and Fa (``metrics``, corrected mode), annotation effort
(``effort``: actions per 100 ground-truth targets), and the tracks
(:func:`napari_irsam.tracks.link_targets`, default parameters) against the ground truth
(:func:`napari_irsam.tracks_eval.evaluate_tracks`: recovered whole ≥ 80 %, identity switches,
review actions frame by frame vs by track) plus ``motmetrics``' CLEAR-MOT identity switches,
MOTA and IDF1 when it is installed. ``classical:tophat:k=6`` is the top-hat with a lower
threshold factor (more sensitive, more flickers). ``oracle:0.8`` isolates the linker: each
ground-truth target is detected with probability 0.8 (its exact pixels, score 0.9) and every
flicker is detected too. Times are CPU seconds of this process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_irsam.data.synthetic_video import make_recording
from napari_irsam.effort import EffortAccumulator
from napari_irsam.metrics import MetricAccumulator
from napari_irsam.segment import FrameOutput, ModelCache, RunSpec, run_segmentation
from napari_irsam.targets import extract_targets
from napari_irsam.tracks import TrackPoint, link_targets
from napari_irsam.tracks_eval import evaluate_tracks
from napari_irsam.tracks_temporal import TemporalSegmenter


@dataclass
class _Replay:
    """A Segmenter replaying stored outputs (so temporal on/off see the same frames)."""

    outs: list[FrameOutput]
    metadata: dict[str, Any]
    outputs: tuple[str, ...] = ("prob", "mask")

    def iter_frames(self, frames, should_stop=None):
        yield from enumerate(self.outs)


def _spec(model: str) -> RunSpec:
    if model.startswith("classical:") and model.count(":") == 2:
        _, name, param = model.split(":")
        key, value = param.split("=")
        return RunSpec(f"classical:{name}", "cpu", params={key: float(value)}, maps=())
    return RunSpec(model, "cpu", maps=())


def _oracle(rec: Any, keep: float, seed: int) -> tuple[list[FrameOutput], dict[str, Any]]:
    """A stand-in detector that isolates the linker: each ground-truth target is found with
    probability ``keep`` (its exact pixels, score 0.9) and every flicker of the recording is
    detected (a 3 × 3 square, score 0.9)."""
    rng = np.random.default_rng(1000 + seed)
    outs = []
    for f, lab in enumerate(rec.labels):
        ids = [i for i in np.unique(lab) if i and rng.random() < keep]
        mask = np.isin(lab, ids)
        for t, r, c in rec.flickers:
            if t == f:
                r, c = int(r), int(c)
                mask[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] = True
        prob = np.where(mask, 0.9, 0.0).astype(np.float32)  # a confident detector
        outs.append(FrameOutput(prob=prob, mask=mask, seconds=0.0))
    return outs, {"threshold": 0.5, "model_id": f"oracle:{keep}"}


def _motmetrics(gt_rows: list[dict], pred: list[TrackPoint], n_frames: int) -> dict[str, Any]:
    try:
        import motmetrics as mm
    except ImportError:
        return {}
    acc = mm.MOTAccumulator(auto_id=True)
    for f in range(n_frames):
        g = [r for r in gt_rows if r["frame"] == f]
        h = [p for p in pred if p.frame == f]
        dist = mm.distances.norm2squared_matrix(
            np.array([(r["row"], r["col"]) for r in g]).reshape(-1, 2),
            np.array([(p.row, p.col) for p in h]).reshape(-1, 2),
            max_d2=9.0,  # 3 px, the Pd rule
        )
        acc.update([r["track_id"] for r in g], [p.track_id for p in h], dist)
    res = mm.metrics.create().compute(
        acc, metrics=["num_switches", "mota", "idf1", "mostly_tracked"], name="x"
    )
    return {k: float(res[k].iloc[0]) for k in res.columns}


def evaluate(outs: list[FrameOutput], rec: Any) -> dict[str, Any]:
    gt = rec.labels > 0
    metric, effort = MetricAccumulator("corrected"), EffortAccumulator()
    targets = []
    for i, (o, g) in enumerate(zip(outs, gt)):
        metric.update(o.mask, g)
        effort.update(o.mask, g, o.prob)
        targets += extract_targets(o.mask, o.prob, frame_offset=i)
    m, e = metric.compute(), effort.compute()
    t0 = time.process_time()
    pts = link_targets(targets, len(outs))
    link_s = time.process_time() - t0
    tr = evaluate_tracks(rec.tracks, pts)
    return {
        "pd": m["pd"],
        "fa": m["fa"],
        "actions_per_100": e["actions_per_100"],
        "misses": e["misses"],
        "false_alarms": e["false_alarms"],
        "link_cpu_s": link_s,
        **tr,
        "motmetrics": _motmetrics(rec.tracks, pts, len(outs)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--targets", type=int, default=5)
    ap.add_argument(
        "--models", nargs="+", default=["classical:tophat", "classical:tophat:k=6", "default"]
    )
    ap.add_argument("--json")
    args = ap.parse_args()
    cache = ModelCache()
    results: list[dict[str, Any]] = []
    for seed in args.seeds:
        rec = make_recording(args.frames, (256, 256), args.targets, seed=seed)
        for model in args.models:
            t0 = time.process_time()
            if model.startswith("oracle:"):
                outs, metadata = _oracle(rec, float(model.split(":")[1]), seed)
            else:
                events = run_segmentation(_spec(model), rec.frames, cache=cache)
                metadata = next(events).metadata
                outs = [ev.output for ev in events]
            seg_s = time.process_time() - t0
            for temporal in (False, True):
                run = outs
                if temporal:
                    replay = TemporalSegmenter(_Replay(outs, metadata))
                    run = [o for _, o in replay.iter_frames(rec.frames)]
                row = {"seed": seed, "model": model, "temporal": temporal, "segment_cpu_s": seg_s}
                row.update(evaluate(run, rec))
                results.append(row)
                mm_sw = row["motmetrics"].get("num_switches", float("nan"))
                print(
                    f"seed {seed} {model:<24} temporal={temporal!s:<5} Pd {100 * row['pd']:5.1f} "
                    f"Fa {1e6 * row['fa']:7.1f}e-6 actions/100 {row['actions_per_100']:6.1f} | "
                    f"tracks {row['predicted_tracks']:4d} whole {row['recovered_whole']}/"
                    f"{row['gt_tracks']} switches {row['id_switches']} (motmetrics {mm_sw:.0f}) "
                    f"| review frame-by-frame {row['actions_frame_by_frame']} "
                    f"by track {row['actions_by_track']} {row['by_track_parts']}",
                    flush=True,
                )
    if args.json:
        doc = {
            "machine": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1, default=str)


if __name__ == "__main__":
    main()
