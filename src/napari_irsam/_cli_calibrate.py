"""``napari-irsam calibrate``: fit a checkpoint's temperature and thresholds on held-out frames
and write a calibrated copy (no napari, no Qt)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_calibrate_parser(sub: Any) -> None:
    """Register the ``calibrate`` sub-command on the CLI's sub-parsers."""
    ca = sub.add_parser(
        "calibrate",
        help="fit a checkpoint's probability temperature, threshold and least target peak on "
        "the held-out part of its training data (docs/model.md)",
    )
    ca.add_argument("checkpoint", help="default | CHECKPOINT")
    ca.add_argument("dataset", nargs="+", help="the IRSTD folders it was trained on")
    ca.add_argument("--split", nargs="+", default=None, help="the training split(s), as in train")
    ca.add_argument("--val-fraction", type=float, default=0.1, help="as in train")
    ca.add_argument("--seed", type=int, default=0, help="as in train (fixes the held-out names)")
    ca.add_argument(
        "--all",
        action="store_true",
        help="fit on every frame of the split(s): a calibration set the model never trained on",
    )
    ca.add_argument("--out", required=True, help="the calibrated checkpoint (.pt)")
    ca.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    ca.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    ca.add_argument("--json", help="write the calibration and the corrections grid here")
    ca.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ._cli_run import UsageError
    from .calibrate import calibrate_checkpoint
    from .data.io import atomic_write_bytes
    from .model import CheckpointError
    from .training.train import TrainConfig, split_datasets

    if not args.all and not 0.0 < args.val_fraction < 1.0:
        raise UsageError(f"--val-fraction must be between 0 and 1, got {args.val_fraction}.")
    cfg = TrainConfig(
        dataset=args.dataset,
        split=args.split,
        out=args.out,
        val_fraction=0.0 if args.all else args.val_fraction,
        seed=args.seed,
    )
    try:
        full, _, held_out, names = split_datasets(cfg)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    data = full if args.all else held_out
    if data is None or len(data) == 0:
        raise UsageError("No held-out frames to calibrate on; raise --val-fraction or use --all.")
    what = "all" if args.all else f"held-out {args.val_fraction:g} (seed {args.seed})"
    fitted_on = f"{', '.join(args.dataset)} split {args.split or 'all'}: {what}, {len(data)} frames"
    print(f"calibrating {args.checkpoint} on {len(data)} frames ({what}) …", flush=True)
    try:
        cal, rows, sha = calibrate_checkpoint(
            args.checkpoint, data, args.out, fitted_on, args.device, args.precision
        )
    except CheckpointError as exc:
        raise UsageError(str(exc)) from exc
    base = next(r for r in rows if (r.threshold, r.min_peak, r.refine) == (0.5, 0.0, 0.0))
    best = next(
        r
        for r in rows
        if (r.threshold, r.min_peak, r.refine) == (cal.threshold, cal.min_peak, cal.refine)
    )
    print(
        f"temperature {cal.temperature:.3f}, threshold {cal.threshold}, min peak {cal.min_peak}, "
        f"refine {cal.refine}"
    )
    for label, r in (
        ("uncalibrated (0.5, no peak filter, no refinement)", base),
        ("calibrated", best),
    ):
        print(
            f"  {label}: {r.actions_per_100:.1f} corrections/100 targets "
            f"(misses {r.misses}, false alarms {r.false_alarms}, reshapes {r.reshapes})"
        )
    print(f"wrote {args.out} (sha256 {sha})")
    if args.json:
        doc = {"calibration": cal.to_metadata(), "grid": [r.__dict__ for r in rows]}
        atomic_write_bytes(args.json, (json.dumps(doc, indent=1) + "\n").encode())
    return 0
