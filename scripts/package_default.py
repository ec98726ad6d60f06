"""Package a trained checkpoint as the bundled ``default`` model (issue 6).

    python scripts/package_default.py /work/runs/default_v2/best.pt \
        --record "python scripts/train_default.py --data ... (seed 0, 70 min)"

Writes ``src/napari_irsam/weights/default.pt`` (float16 parameters, our checkpoint format, written
atomically) and ``src/napari_irsam/weights/registry.json`` with its sha256, which
:func:`napari_irsam.model.weights.resolve_weights` checks every time the model is loaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from napari_irsam.data.io import atomic_write_bytes
from napari_irsam.model import build_irsam, load_checkpoint, read_checkpoint, save_checkpoint
from napari_irsam.model.weights import BUNDLED_DIR

#: where every image the bundled default learned from came from (never a test split)
DATA_PROVENANCE = [
    {
        "stage": "pretraining (v1, issue 6)",
        "data": "napari-irsam synthetic scenes: make_dataset(n=1100, seed=2027, 256², "
        "SNR 1.5–20 log-uniform, gamma 0.6–1.6)",
    },
    {
        "stage": "training (v2, issue 10)",
        "data": "SIRST v1 (Dai et al., WACV 2021), split idx_427/trainval.txt (341 images)",
        "source": "github.com/YimianDai/sirst @ 84302ab351af09dde227aa13ee9887f081bc3d4f",
    },
    {
        "stage": "training (v2, issue 10)",
        "data": "NUDT-SIRST (Li et al., DNANet, IEEE TIP 2023), split "
        "irsam_NUDT-SIRST00/trainval.txt (1061 images)",
        "source": "github.com/15730845297/Infrared-Small-Target-Detection @ "
        "69e62793bc85ecffca78f1df586225bed0ebb587",
    },
    {
        "stage": "training (v3, issue 10)",
        "data": "v2 continued on the same two trainval splits and the same held-out names "
        "(seed 0); no other data",
    },
    {
        "stage": "training (v4, issue 10)",
        "data": "v3 continued in bf16 on the CPU on the same two trainval splits and the same "
        "held-out names (seed 0); no other data",
    },
    {
        "stage": "training (v5, issue 10)",
        "data": "v4 continued in bf16 on the CPU on the same two trainval splits and the same "
        "held-out names (seed 0); no other data",
    },
    {
        "stage": "calibration (issue 10)",
        "data": "temperature, threshold and least target peak fitted by `napari-irsam calibrate` "
        "on the 140 held-out trainval names (seed 0, 10 %) of the same two splits; no other data",
    },
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--record", required=True, help="how it was trained (command, seed, time)")
    ap.add_argument("--out-dir", default=str(BUNDLED_DIR))
    ap.add_argument(
        "--description",
        default="IRSAM (WPMD + GAD) pretrained on napari-irsam's synthetic IR scenes, then trained "
        "on the SIRST and NUDT-SIRST trainval splits.",
    )
    args = ap.parse_args()
    src = read_checkpoint(args.checkpoint)
    if not src.config:
        raise SystemExit("The checkpoint carries no configuration; package one of ours.")
    model = build_irsam(src.config)
    load_checkpoint(model, src)
    meta = dict(src.metadata or {})
    meta.update(
        {
            "training_record": args.record,
            "source_sha256": src.sha256,
            "data_provenance": DATA_PROVENANCE,
        }
    )
    out = Path(args.out_dir)
    sha = save_checkpoint(model, out / "default.pt", metadata=meta, half=True)
    entry = {
        "name": "default",
        "filename": "default.pt",
        "sha256": sha,
        "url": None,
        "config": model.config.name,
        "description": args.description,
    }
    atomic_write_bytes(out / "registry.json", (json.dumps([entry], indent=1) + "\n").encode())
    size = (out / "default.pt").stat().st_size
    print(f"default.pt: {size / 1e6:.1f} MB, sha256 {sha}")


if __name__ == "__main__":
    main()
