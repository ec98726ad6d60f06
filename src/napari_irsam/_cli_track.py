"""``napari-irsam track``: segment a recording, link its targets into tracks, write tracks.csv
(no napari, no Qt)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np


def add_track_parser(sub: Any) -> None:
    """Register the ``track`` sub-command on the CLI's sub-parsers."""
    tr = sub.add_parser(
        "track", help="segment a recording and link its targets into tracks (tracks.csv)"
    )
    tr.add_argument("input", nargs="+", help="the frames, in time order: TIFF stack, folder, files")
    tr.add_argument("--out", required=True, help="folder for tracks.csv")
    tr.add_argument(
        "--model",
        default="default",
        help="default | mobile_sam | tophat | maxmedian | mpcm | CHECKPOINT",
    )
    tr.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    tr.add_argument(
        "--threshold",
        type=float,
        help="IRSAM probability threshold (default: the checkpoint's calibrated one, else 0.5)",
    )
    tr.add_argument(
        "--temporal",
        action="store_true",
        help="temporal consistency: drop isolated one-frame detections below the threshold",
    )
    tr.add_argument(
        "--search-range", type=float, default=8.0, help="px between predicted and found position"
    )
    tr.add_argument("--max-gap", type=int, default=3, help="frames a track may go undetected")
    tr.set_defaults(func=cmd_track)


def cmd_track(args: argparse.Namespace) -> int:
    from ._cli_run import UsageError, _iter_inputs, _progress
    from .classical import CLASSICAL_DETECTORS
    from .model import CheckpointError
    from .segment import CLASSICAL_PREFIX, RunSpec, run_segmentation
    from .targets import extract_targets
    from .tracks import INSTALL_HINT, TrackParams, link_targets, write_tracks_csv

    try:
        import trackpy  # noqa: F401  (fail before the model runs, not after)
    except ImportError as exc:
        raise UsageError(INSTALL_HINT) from exc
    if args.search_range <= 0 or args.max_gap < 0:
        raise UsageError("--search-range must be > 0 and --max-gap ≥ 0.")
    frames = list(_iter_inputs(args.input))
    if not frames:
        raise UsageError("The input holds no frames.")
    shapes = {f.shape for _, f in frames}
    if len(shapes) > 1:
        a, b = sorted(shapes)[:2]
        raise UsageError(f"Frames differ in size ({a} and {b}); track one recording at a time.")
    stack = np.stack([f for _, f in frames])
    model = CLASSICAL_PREFIX + args.model if args.model in CLASSICAL_DETECTORS else args.model
    spec = RunSpec(model, args.device, args.threshold, maps=(), temporal=args.temporal)
    try:
        events = run_segmentation(spec, stack)
        next(events)  # RunStarted: the model is loaded
    except CheckpointError as exc:
        raise UsageError(str(exc)) from exc
    targets = []
    progress = _progress(len(stack), "track")
    for ev in events:
        targets += extract_targets(ev.output.mask, ev.output.prob, frame_offset=ev.index)
        progress.update(1)
    progress.close()
    params = TrackParams(search_range=args.search_range, max_gap=args.max_gap)
    points = link_targets(targets, len(stack), params)
    out = Path(args.out)
    write_tracks_csv(out / "tracks.csv", points)
    n_tracks = len({p.track_id for p in points})
    print(
        f"{len(stack)} frame(s), {len(points)} detection(s) in {n_tracks} track(s) "
        f"→ {out / 'tracks.csv'}"
    )
    return 0


def tracks_csv_points(
    path: str | None, sources: list[str]
) -> dict[tuple[str, int], list[tuple[float, float, int]]] | None:
    """``export --tracks``: the (row, col, track_id) points of a tracks.csv, keyed by
    (source, frame index) of the exported frames (``sources[i]`` is frame i's source)."""
    if not path:
        return None
    from ._cli_run import UsageError
    from .tracks import read_tracks_csv

    if not Path(path).is_file():
        raise UsageError(f"Tracks file {path} does not exist.")
    out: dict[tuple[str, int], list[tuple[float, float, int]]] = {}
    for p in read_tracks_csv(path):
        if not 0 <= p.frame < len(sources):
            raise UsageError(
                f"{path} has frame {p.frame}, but the images have {len(sources)} frame(s)."
            )
        out.setdefault((str(sources[p.frame]), p.frame), []).append((p.row, p.col, p.track_id))
    return out
