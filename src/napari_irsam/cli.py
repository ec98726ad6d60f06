"""Command line: ``napari-irsam <command>`` (also ``python -m napari_irsam``).

``predict``, ``evaluate`` and ``train`` work without a display; ``demo`` opens napari. Bad arguments
or paths exit with code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from ._cli_run import UsageError, cmd_evaluate, cmd_export, cmd_predict, cmd_train


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2 (argparse prints usage first)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo
    from ._qt_check import qt_start_problem

    problem = qt_start_problem()  # Qt aborts the interpreter on a missing library or display
    if problem:
        print(f"napari-irsam demo: {problem}", file=sys.stderr)
        return 2
    run_demo(with_sample=not args.no_sample)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="napari-irsam", description="IRSAM infrared small-target segmentation.")
    parser.add_argument("--version", action="version", version=f"napari-irsam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = sub.add_parser("demo", help="open napari with the plugin and the sample data")
    demo.add_argument("--no-sample", action="store_true", help="do not load the sample data")
    demo.set_defaults(func=_cmd_demo)

    def model_args(p: argparse.ArgumentParser, required: bool) -> None:
        p.add_argument(
            "--model",
            default="default" if required else None,
            help="default | mobile_sam | tophat | maxmedian | mpcm | CHECKPOINT",
        )
        p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
        p.add_argument(
            "--threshold",
            type=float,
            help="IRSAM probability threshold (default: the checkpoint's calibrated one, else 0.5)",
        )
        p.add_argument(
            "--min-peak",
            type=float,
            help="IRSAM: keep targets whose peak probability reaches this (default: calibrated)",
        )
        p.add_argument(
            "--refine",
            type=float,
            help="IRSAM: redraw outlines at this fraction of each target's contrast, 0 = off "
            "(default: calibrated)",
        )
        p.add_argument(
            "--precision",
            choices=("fp32", "bf16", "fp16"),
            default="fp32",
            help="autocast precision: bf16/fp16 on CUDA, bf16 also on CPUs with bf16 "
            "instructions (about 2x faster); elsewhere fp32",
        )
        p.add_argument(
            "--tta",
            action="store_true",
            help="IRSAM: also run each frame mirrored and average the two (2x the time)",
        )

    pred = sub.add_parser("predict", help="segment files, folders or TIFF stacks")
    pred.add_argument("input", nargs="+", help="image files, folders of frames, TIFF stacks")
    pred.add_argument("--out", required=True, help="folder for <name>.png masks and targets.csv")
    pred.add_argument(
        "--cluster",
        default=None,
        help="run on Dask: local:N (N local worker processes) or tcp://HOST:PORT (a running "
        "scheduler; needs napari-irsam[cluster]); frames already in --out are skipped",
    )
    pred.add_argument(
        "--batch-frames", type=int, default=16, help="frames per task (one model load per worker)"
    )
    model_args(pred, True)
    pred.set_defaults(func=cmd_predict)

    ev = sub.add_parser("evaluate", help="IoU / nIoU / Pd / Fa on an IRSTD dataset split")
    ev.add_argument("dataset", help="folder with images/, masks/, splits/")
    ev.add_argument("--split", required=True, help="split file (path or name under splits/)")
    model_args(ev, False)
    ev.add_argument(
        "--predictions", help="folder of another method's mask PNGs, named like the images"
    )
    ev.add_argument("--mode", choices=("paper", "corrected"), default="corrected")
    ev.add_argument(
        "--size", type=int, default=None, help="resize both to SIZE² (nearest), e.g. 512"
    )
    ev.add_argument("--json", help="write {iou, niou, pd, fa, n_images, mode} here")
    ev.set_defaults(func=cmd_evaluate)

    tr = sub.add_parser(
        "train",
        help="train or fine-tune IRSAM on an IRSTD dataset (several GPUs or processes: run it "
        "under torchrun, see docs/training.md)",
    )
    tr.add_argument("dataset", nargs="+", help="one or more IRSTD folders, trained on together")
    tr.add_argument("--out", required=True, help="run folder (last.pt, best.pt, last_state.pt)")
    tr.add_argument(
        "--split",
        nargs="+",
        default=None,
        help="training split per dataset (one for all, or one each); a validation part is "
        "carved from them",
    )
    tr.add_argument("--init", default="scratch", help="scratch | mobile_sam | default | CHECKPOINT")
    tr.add_argument(
        "--config",
        default=None,
        help="release | paper | fast | native-fine | paper-256 (default: the --init checkpoint's "
        "own, else paper)",
    )
    tr.add_argument("--size", type=int, default=None, help="model input side (default: config's)")
    tr.add_argument("--epochs", type=int, default=10)
    tr.add_argument("--batch-size", type=int, default=4)
    tr.add_argument("--lr", type=float, default=1e-4)
    tr.add_argument("--device", default="auto")
    tr.add_argument("--max-steps", type=int, default=None)
    tr.add_argument(
        "--minutes", type=float, default=None, help="stop after this much training wall time"
    )
    tr.add_argument(
        "--mask-bce",
        type=float,
        default=0.0,
        help="weight of an extra BCE term on the mask (0 = the paper's loss; helps from scratch)",
    )
    tr.add_argument(
        "--target-crop",
        type=float,
        default=0.0,
        help="probability of a native-resolution crop around a target (keeps 1-3 px targets)",
    )
    tr.add_argument(
        "--cpu-minutes",
        type=float,
        default=None,
        help="stop after this much CPU time (all threads; equal budgets for ablations)",
    )
    tr.add_argument(
        "--geometry",
        choices=("squash", "native"),
        default=None,
        help="training samples: squashed whole frames (spec) or native-resolution crops "
        "(default: native for full-resolution mask heads)",
    )
    tr.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="mixed precision: bf16/fp16 on CUDA (fp16 uses loss scaling), bf16 also on CPUs "
        "with bf16 instructions (about 2.4x faster steps); elsewhere fp32",
    )
    tr.add_argument(
        "--workers",
        type=int,
        default=0,
        help="DataLoader processes decoding and augmenting ahead of the model (0 = none; a few "
        "per GPU on CUDA machines)",
    )
    tr.add_argument(
        "--augment-stream",
        choices=("epoch", "sample"),
        default=None,
        help="augmentation randomness: one generator per epoch (earlier versions' results; "
        "--workers 0, one process) or per sample (any workers/processes); default: epoch when "
        "possible",
    )
    tr.add_argument("--val-fraction", type=float, default=0.1)
    tr.add_argument("--warmup", type=int, default=50, help="learning-rate warm-up steps")
    tr.add_argument("--seed", type=int, default=0, help="held-out names and initialisation")
    tr.add_argument(
        "--order-seed",
        type=int,
        default=None,
        help="sample order and augmentation (default: --seed); a new value for a continued run",
    )
    tr.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="start afresh even if the run folder has a last.pt",
    )
    tr.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="leave best.pt uncalibrated (default: fit its temperature and thresholds on the "
        "held-out frames at the end, see docs/model.md)",
    )
    tr.set_defaults(func=cmd_train)

    ex = sub.add_parser("export", help="write frames + corrected masks as an IRSTD training set")
    ex.add_argument("images", help="TIFF stack, image file or folder of frames")
    ex.add_argument("masks", help="labels/masks matching the frames (TIFF stack or folder)")
    ex.add_argument("--out", required=True)
    ex.add_argument("--test-ratio", type=float, default=0.2)
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--if-exists", choices=("error", "append", "new"), default="error")
    ex.add_argument(
        "--format",
        nargs="+",
        choices=("irstd", "coco", "yolo"),
        default=["irstd"],
        help="irstd (always written) and/or coco (instances JSON, RLE masks) and/or yolo "
        "(labels/*.txt boxes + yolo.yaml)",
    )
    ex.add_argument(
        "--tracks",
        help="tracks.csv of these frames (napari-irsam track): track ids per target in the "
        "manifest and mot/*.txt (MOTChallenge CSV)",
    )
    ex.set_defaults(func=cmd_export)

    from ._cli_calibrate import add_calibrate_parser
    from ._cli_track import add_track_parser

    add_track_parser(sub)
    add_calibrate_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"napari-irsam {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
