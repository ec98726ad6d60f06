"""Implementations of ``napari-irsam predict``, ``evaluate`` and ``train`` (no napari, no Qt)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import astuple
from pathlib import Path
from typing import Any

import numpy as np

from .classical import CLASSICAL_DETECTORS, detect


class UsageError(Exception):
    """A user error: printed as one line, exit code 2."""


def _segmenter(
    model: str,
    device: str,
    threshold: float | None,
    precision: str = "fp32",
    tta: bool = False,
    min_peak: float | None = None,
    refine: float | None = None,
):
    """Return ``frame (H, W) → (mask bool, score float32)`` for a model name or checkpoint path."""
    if model in CLASSICAL_DETECTORS:

        def run_classical(frame: np.ndarray):
            d = detect(model, frame)
            return d.mask, d.saliency

        return run_classical
    from .inference import Predictor
    from .model import CheckpointError, load_model

    try:
        net, _ = load_model(model)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from exc
    # no display maps: nobody looks at them here
    predictor = Predictor(
        net,
        device,
        threshold,
        maps=(),
        precision=precision,
        tta=tta,
        min_peak=min_peak,
        refine=refine,
    )

    def run_irsam(frame: np.ndarray):
        p = predictor.predict_frame(frame)
        return p.mask, p.prob

    return run_irsam


def _iter_inputs(inputs: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(name, frame) for every frame of every input file/folder/stack."""
    from .data.io import read_frames
    from .data.thermal import stack_warnings
    from .preprocess import to_grey

    for item in inputs:
        if not Path(item).exists():
            raise UsageError(f"Input {item} does not exist.")
        stack = read_frames(item)
        for warning in stack_warnings(stack):  # DJI R-JPEG, FLIR recording cut short
            print(f"napari-irsam: warning: {warning}", file=sys.stderr)
        for name, frame in zip(stack.frame_names, stack.data):
            yield name, (to_grey(frame) if stack.rgb else frame)


def cmd_predict(args: Any) -> int:
    """Segment every frame of the inputs into ``--out`` (see :mod:`napari_irsam.batch`): in this
    process, or one Dask task per batch with ``--cluster local:N`` / ``--cluster tcp://HOST:PORT``.
    Frames already written are skipped."""
    from . import batch as bt

    batches = bt.plan_batches(args.input, getattr(args, "batch_frames", 16))  # headers only
    _dji_warnings(batches)
    spec = bt.ModelSpec.from_args(args)
    bt.cached_segmenter(spec)  # a bad model is one sentence here, before any work
    out = Path(args.out)
    total = sum(len(b.indices) for b in batches)
    order = {b: k for k, b in enumerate(batches)}
    rows: dict[int, list[dict[str, Any]]] = {}
    client = cluster = None
    cluster_arg = getattr(args, "cluster", None)
    computed = 0
    progress = _progress(total, "predict")
    last = time.monotonic()
    try:
        if cluster_arg:
            client, cluster = bt.connect(cluster_arg)
            print(f"Dask cluster: {client.dashboard_link or cluster_arg}", file=sys.stderr)
            events = bt.iter_cluster(spec, batches, str(out), client)
        else:
            events = bt.iter_local(spec, batches, str(out))
        done = 0
        for b, (n_new, batch_rows) in events:
            rows[order[b]] = batch_rows
            computed += n_new
            done += len(b.indices)
            progress.update(len(b.indices))
            if progress.disable and time.monotonic() - last >= 30:  # a log file, not a terminal
                last = time.monotonic()
                print(f"predict: {done}/{total} frame(s)", file=sys.stderr, flush=True)
    finally:
        progress.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    n_rows = bt.write_csv(out, rows)
    skipped = total - computed
    note = f" ({skipped} already written, skipped)" if skipped else ""
    print(f"{total} frame(s), {n_rows} target(s) → {out}{note}")
    return 0


def _dji_warnings(batches: Any) -> None:
    """DJI R-JPEG inputs give the palette picture only: say so (data.thermal)."""
    try:
        from .data.thermal import stack_warnings
    except ImportError:  # pragma: no cover - the thermal module ships with the package
        return
    from .batch import _groups

    for item in dict.fromkeys(b.item for b in batches):
        for stack in _groups(item):
            for warning in stack_warnings(stack):
                print(f"napari-irsam: warning: {warning}", file=sys.stderr)


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not sys.stderr.isatty(), leave=False)


def cmd_evaluate(args: Any) -> int:
    from .data.dataset import IRSTDDataset, read_grey
    from .effort import EFFORT_KEYS, EffortAccumulator, format_effort
    from .metrics import MetricAccumulator, format_table, resize_nearest

    try:
        data = IRSTDDataset(args.dataset, args.split)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if (args.model is None) == (args.predictions is None):
        raise UsageError("Give exactly one of --model or --predictions.")
    from . import batch as bt

    run = _segmenter(*astuple(bt.ModelSpec.from_args(args))) if args.model else None
    acc, effort = MetricAccumulator(args.mode), EffortAccumulator()
    progress = _progress(len(data), "evaluate")
    for i in range(len(data)):
        s = data[i]
        score = None
        if run is not None:
            pred, score = run(s.image)
        else:
            path = next(
                (
                    Path(args.predictions) / f"{s.name}{e}"
                    for e in (".png", ".bmp", ".tif")
                    if (Path(args.predictions) / f"{s.name}{e}").is_file()
                ),
                None,
            )
            if path is None:
                raise UsageError(f"No prediction for {s.name} in {args.predictions}.")
            pred = read_grey(path) > 127
            if pred.shape != s.mask.shape and not args.size:
                raise UsageError(
                    f"Prediction {path.name} is {pred.shape} but its mask is {s.mask.shape}."
                )
        gt = np.where(s.mask, 255, 0).astype(np.uint8)
        effort.update(pred.astype(bool), s.mask, score)  # at native size, as an annotator sees it
        if args.size:
            pred = resize_nearest(pred, (args.size, args.size))
            gt = resize_nearest(gt, (args.size, args.size))
        acc.update(pred.astype(bool), gt)
        progress.update(1)
    progress.close()
    result = acc.compute()
    eff = effort.compute()
    print(format_table({args.model or args.predictions: result}))
    print(format_effort({args.model or args.predictions: eff}))
    if args.json:
        from .data.io import atomic_write_bytes

        keys = ("iou", "niou", "pd", "fa", "n_images", "mode")
        doc = {k: result[k] for k in keys}
        doc["effort"] = {k: eff[k] for k in EFFORT_KEYS}
        doc["target_ap"] = eff["target_ap"]
        atomic_write_bytes(args.json, json.dumps(doc, indent=1).encode())
    return 0


def cmd_train(args: Any) -> int:
    from .training.train import TrainConfig, train

    for d in args.dataset:
        if not Path(d).is_dir():
            raise UsageError(f"Dataset folder {d} does not exist.")
    split = args.split
    if split is not None and len(split) not in (1, len(args.dataset)):
        raise UsageError(
            f"Give one --split for all datasets or one per dataset ({len(args.dataset)})."
        )
    if split is not None and len(split) == 1:
        split = split * len(args.dataset)
    cfg = TrainConfig(
        dataset=args.dataset[0] if len(args.dataset) == 1 else args.dataset,
        out=args.out,
        split=split[0] if split is not None and len(split) == 1 else split,
        init=args.init,
        config=args.config,
        size=args.size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        max_steps=args.max_steps,
        time_budget_s=None if args.minutes is None else 60 * args.minutes,
        cpu_budget_s=None if args.cpu_minutes is None else 60 * args.cpu_minutes,
        geometry=args.geometry,
        val_fraction=args.val_fraction,
        precision=args.precision,
        warmup_steps=args.warmup,
        target_crop=args.target_crop,
        mask_bce_weight=args.mask_bce,
        seed=args.seed,
        order_seed=args.order_seed,
        resume=args.resume,
        workers=args.workers,
        augment_stream=args.augment_stream,
    )
    if args.workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {args.workers}.")
    bar = None
    t0 = last_line = time.monotonic()
    events = train(cfg)
    if os.environ.get("RANK", "0") != "0":  # under torchrun: rank 0 alone reports
        for _ in events:
            pass
        return 0
    for ev in events:
        if ev.kind == "start":
            bar = _progress(ev.total_steps, "train")
            bar.update(ev.step)
        elif ev.kind == "step" and bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{ev.loss:.3f}", lr=f"{ev.lr:.2e}")
            if bar.disable and time.monotonic() - last_line >= 60:  # a log file, not a terminal
                last_line = time.monotonic()
                print(
                    f"step {ev.step}/{ev.total_steps} loss {ev.loss:.4f} lr {ev.lr:.2e} "
                    f"({(last_line - t0) / 60:.1f} min)",
                    flush=True,
                )
        elif ev.kind == "epoch":
            val = ev.metrics.get("iou")
            print(
                f"epoch {ev.epoch}: loss {ev.loss:.4f}"
                + (f", val IoU {100 * val:.2f}" if val is not None else "")
                + f" ({(time.monotonic() - t0) / 60:.1f} min)",
                flush=True,
            )
        elif ev.kind == "done":
            if bar is not None:
                bar.close()
            print(f"best checkpoint: {ev.checkpoint}", flush=True)
    if args.calibrate:
        from .calibrate import calibrate_run

        cal = calibrate_run(cfg, args.device, args.precision)
        if cal is not None:
            print(
                f"calibrated best.pt on its held-out frames: temperature {cal.temperature:.2f}, "
                f"threshold {cal.threshold}, min peak {cal.min_peak}, refine {cal.refine}",
                flush=True,
            )
    return 0


def cmd_export(args: Any) -> int:
    from ._cli_track import tracks_csv_points
    from .data.export import export_training_set
    from .data.io import read_frames

    images, masks = read_frames(args.images), read_frames(args.masks)
    if images.data.shape[0] != masks.data.shape[0]:
        raise UsageError(
            f"{images.data.shape[0]} image frame(s) but {masks.data.shape[0]} mask frame(s)."
        )
    frames = images.data
    if images.rgb:
        from .preprocess import to_grey

        frames = np.stack([to_grey(f) for f in frames]).astype(np.uint8)
    sources = [images.paths[0]] * len(frames) if len(images.paths) == 1 else images.paths
    result = export_training_set(
        args.out,
        frames,
        masks.data,
        names=images.frame_names,
        sources=sources,
        groups=[str(args.images)] * len(frames),  # one sequence: split in blocks, not per file
        reviewed_only=False,
        test_ratio=args.test_ratio,
        seed=args.seed,
        if_exists=args.if_exists,
        provenance={"exported_by": "napari-irsam export", **images.metadata},  # + "thermal"
        formats=getattr(args, "format", ["irstd"]),
        track_points=tracks_csv_points(getattr(args, "tracks", None), sources),
    )
    print(
        f"{len(result.written)} sample(s) written, {len(result.skipped_duplicates)} duplicate(s) "
        f"skipped → {result.folder} (train {len(result.train)}, test {len(result.test)})"
    )
    return 0
