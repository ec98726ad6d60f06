"""Choose a checkpoint's inference geometry on its own held-out validation names (never a test split).

    python benchmarks/bench_val_geometry.py RUN/best.pt --data ../shared/datasets \
        [--geometry auto squash] [--threshold 0.5 0.4 0.3]

The validation names are read from the checkpoint's metadata (``val_names``, carved from the
training split by ``napari-irsam train``; names are ``<dataset folder>/<stem>`` when several
datasets were trained on together). For each geometry and threshold it prints corrected-mode
IoU / nIoU / Pd / Fa and the annotation effort (``napari_irsam.effort``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from napari_irsam.data.dataset import IRSTDDataset
from napari_irsam.effort import EffortAccumulator, format_effort
from napari_irsam.inference import Predictor
from napari_irsam.metrics import MetricAccumulator, format_table
from napari_irsam.model import load_model, read_checkpoint


def val_samples(ckpt: str, data_root: Path):
    """The checkpoint's validation samples, loaded once."""
    meta = read_checkpoint(ckpt).metadata
    names = meta.get("val_names") or []
    if not names:
        raise SystemExit(f"{ckpt} records no validation names.")
    by_folder: dict[str, list[str]] = {}
    for n in names:
        folder, _, stem = n.rpartition("/")
        by_folder.setdefault(folder, []).append(stem)
    samples = []
    for folder, stems in by_folder.items():
        ds = IRSTDDataset(data_root / folder if folder else data_root, names=stems)
        samples += [ds[i] for i in range(len(ds))]
    return samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True, help="folder holding the trained-on dataset folders")
    ap.add_argument("--geometry", nargs="+", default=["auto", "squash"])
    ap.add_argument("--threshold", type=float, nargs="+", default=[0.5])
    ap.add_argument("--json")
    args = ap.parse_args()
    samples = val_samples(args.checkpoint, Path(args.data))
    model, _ = load_model(args.checkpoint)
    rows, effort = {}, {}
    for geom in args.geometry:
        predictor = Predictor(model, "auto", geometry=geom, maps=())
        t0 = time.perf_counter()
        probs = [predictor.predict_frame(s.image).prob for s in samples]
        dt = (time.perf_counter() - t0) / len(samples)
        for thr in args.threshold:
            name = f"{geom} @ {thr:g} ({dt * 1000:.0f} ms/img)"
            acc, eff = MetricAccumulator("corrected"), EffortAccumulator()
            for s, p in zip(samples, probs):
                acc.update(p > thr, s.mask)
                eff.update(p > thr, s.mask, p)
            rows[name], effort[name] = acc.compute(), eff.compute()
    print(f"{args.checkpoint}: {len(samples)} validation images\n")
    print(format_table(rows))
    print()
    print(format_effort(effort))
    if args.json:
        Path(args.json).write_text(json.dumps({"metrics": rows, "effort": effort}, indent=1))


if __name__ == "__main__":
    main()
