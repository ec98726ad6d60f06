"""Deliberate faults that the test suite must catch: a small mutation check the project owns.

Each fault is one textual change to one source file. For each, the script copies the repository's
``src/``, ``tests/`` and ``pyproject.toml`` into a temporary folder (never touching the working
tree), applies the fault there, runs the tests named for it with ``PYTHONPATH`` pointing at the
copy, and reports whether the fault was *killed* (a test failed) or *survived* (all passed).
A baseline run of the same tests without any fault comes first: a test that fails without a
fault would make every "killed" meaningless.

No third-party mutation tool: tools such as mutmut generate hundreds of blind operator flips and
need the whole suite per mutant (hours on a CPU-only machine, where this suite's model tests are
slow), while the faults that matter here are specific, reviewed bugs, each with the test files
that should see it. Add a fault whenever a bug slips through the suite.

Usage (from the repository root; the test runs are slow, so run it niced)::

    nice -n 19 .venv/bin/python scripts/mutation_check.py            # the issue-14 faults
    nice -n 19 .venv/bin/python scripts/mutation_check.py --all      # and the extra faults
    .venv/bin/python scripts/mutation_check.py --list
    .venv/bin/python scripts/mutation_check.py --only pca-refit --ref HEAD

``--ref REF`` takes the files from a commit (``git archive``) instead of the working tree.
Exit status 0 when every fault run was killed, 1 when one survived, 2 on a setup problem (a fault
whose text is not found once in its file, a baseline failure, a test run that errored).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("src", "tests", "pyproject.toml")


@dataclass(frozen=True)
class Fault:
    """Replace ``old`` (found exactly once) by ``new`` in ``path``; ``tests`` should then fail."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str
    extra: bool = False  #: not in issue 14's list; run with --all


FAULTS = [
    Fault(
        "blend-flat",
        "src/napari_irsam/inference.py",
        "blend_window(hw, self.overlap) if blended else np.ones(hw, np.float32)",
        "np.ones(hw, np.float32)",
        ("tests/test_inference_numbers.py", "tests/test_inference.py"),
        "overlapping tiles are averaged with flat weights instead of the blend ramp",
    ),
    Fault(
        "blend-window-flat",
        "src/napari_irsam/preprocess.py",
        "    return np.outer(ramp(th), ramp(tw))",
        "    return np.ones((th, tw), np.float32)",
        ("tests/test_inference_numbers.py", "tests/test_preprocess.py"),
        "blend_window itself returns flat weights",
    ),
    Fault(
        "pca-refit",
        "src/napari_irsam/inference.py",
        "        if self.basis is None:\n            self.mean = x.mean(0)",
        "        if True:\n            self.mean = x.mean(0)",
        ("tests/test_inference_numbers.py", "tests/test_inference.py"),
        "the granularity PCA is refitted on every batch (colours change meaning between frames)",
    ),
    Fault(
        "autocast-off",
        "src/napari_irsam/model/device.py",
        '    if precision == "fp32" or device.type != "cuda":',
        "    if True:",
        ("tests/model/test_autocast.py", "tests/model/test_device.py"),
        "autocast_for never enables autocast (fp16/bf16 silently run in fp32)",
    ),
    Fault(
        "no-cuda-index-check",
        "src/napari_irsam/model/device.py",
        "if dev.index is not None and dev.index >= torch.cuda.device_count():",
        "if False:",
        ("tests/model/test_device.py",),
        "select_device accepts cuda:N for a GPU that does not exist",
    ),
    Fault(
        "no-dedup-within-export",
        "src/napari_irsam/data/export.py",
        "            seen.add(key)\n",
        "",
        ("tests/data/test_export.py", "tests/data/test_export_append.py"),
        "an identical frame given twice in one export is written twice",
    ),
    Fault(
        "threshold-ignored",
        "src/napari_irsam/inference.py",
        "mask=prob > self.threshold,",
        "mask=prob > 0.5,",
        ("tests/test_inference_numbers.py", "tests/test_inference.py"),
        "the Predictor's threshold is ignored when the mask is made",
    ),
    # ---- extra faults: each one checks a test that issue 14 found unable to fail
    Fault(
        "half-buffers",
        "src/napari_irsam/model/checkpoint.py",
        "if half and k in params and v.is_floating_point():",
        "if half and v.is_floating_point():",
        ("tests/model/test_checkpoint.py",),
        "fp16 checkpoints also round BatchNorm statistics and the PE matrix",
        extra=True,
    ),
    Fault(
        "metrics-threshold-ignored",
        "src/napari_irsam/metrics.py",
        "p = pred if pred.dtype == bool else pred > self.threshold",
        "p = pred if pred.dtype == bool else pred > 0",
        ("tests/test_metrics.py",),
        "evaluate() binarises scores at 0 whatever the threshold",
        extra=True,
    ),
    Fault(
        "edge-loss-on-mask",
        "src/napari_irsam/training/losses.py",
        "    edge_gt = mask_edges(target)\n",
        "    edge_gt = target\n",
        ("tests/training/test_losses_augment.py",),
        "the edge BCE is computed against the mask instead of its outline band",
        extra=True,
    ),
    Fault(
        "classical-modifies-input",
        "src/napari_irsam/classical.py",
        "    out = arr.astype(np.float32)\n",
        "    out = arr.astype(np.float32, copy=False)\n",
        ("tests/test_classical.py",),
        "detectors write NaN replacements into the caller's float32 frame",
        extra=True,
    ),
    Fault(
        "attention-bias-cached",
        "src/napari_irsam/model/tiny_vit.py",
        "        bias = self.attention_biases[:, self.attention_bias_idxs]",
        "        bias = getattr(self, '_ab', None)\n"
        "        if bias is None:\n"
        "            bias = self._ab = self.attention_biases[:, self.attention_bias_idxs].detach()",
        ("tests/model/test_checkpoint.py::test_loaded_attention_biases_take_effect_in_eval_mode",),
        "attention biases cached once (official TinyViT's eval() cache): loaded biases ignored",
        extra=True,
    ),
    Fault(
        "core-imports-qt",
        "src/napari_irsam/metrics.py",
        "import numpy as np\n",
        "import numpy as np\nimport qtpy  # noqa: F401\n",
        ("tests/test_segment.py::test_core_does_not_import_qt",),
        "a core module imports Qt",
        extra=True,
    ),
]


def copy_tree(dest: Path, ref: str | None) -> None:
    """``src/``, ``tests/`` and ``pyproject.toml`` of the working tree (tracked and untracked,
    not ignored) or of commit ``ref`` into ``dest``."""
    if ref is not None:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", ref, *COPIED],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        with tempfile.TemporaryFile() as f:
            f.write(archive)
            f.seek(0)
            with tarfile.open(fileobj=f) as tar:
                tar.extractall(dest, filter="data")
        return
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *COPIED],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the working tree is left out
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, list[str], str]:
    """pytest on ``tests`` inside ``copy``: (exit code, failed test ids, output tail)."""
    env = dict(os.environ, PYTHONPATH=str(copy / "src"), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", *tests]
    try:
        proc = subprocess.run(
            cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return 124, [], f"timed out after {timeout:.0f} s"
    out = proc.stdout + proc.stderr
    failed = re.findall(r"^FAILED (\S+)", out, flags=re.MULTILINE)
    return proc.returncode, failed, out[-3000:]


def check_import_location(copy: Path) -> None:
    """The copy, not the installed working tree, must be what the tests import."""
    env = dict(os.environ, PYTHONPATH=str(copy / "src"))
    where = subprocess.run(
        [sys.executable, "-c", "import napari_irsam; print(napari_irsam.__file__)"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(copy.resolve()):
        sys.exit(f"the tests would import {where}, not the copy in {copy}: stopping")


def apply(copy: Path, fault: Fault) -> str:
    """Apply ``fault`` in ``copy``; returns the original text of the file."""
    path = copy / fault.path
    text = path.read_text()
    if text.count(fault.old) != 1:
        raise LookupError(
            f"{fault.name}: the text to change occurs {text.count(fault.old)} times in "
            f"{fault.path} (expected once); update the fault to the current code"
        )
    path.write_text(text.replace(fault.old, fault.new))
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--all", action="store_true", help="also run the extra faults")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run these faults only")
    ap.add_argument("--list", action="store_true", help="list the faults and exit")
    ap.add_argument("--ref", help="take the files from this commit instead of the working tree")
    ap.add_argument("--no-baseline", action="store_true", help="skip the fault-free run")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per test run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = ap.parse_args(argv)

    faults = [f for f in FAULTS if args.all or not f.extra]
    if args.only:
        unknown = set(args.only) - {f.name for f in FAULTS}
        if unknown:
            ap.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
        faults = [f for f in FAULTS if f.name in args.only]
    if args.list:
        for f in FAULTS:
            print(f"{f.name:26} {'extra ' if f.extra else 'issue '} {f.path}: {f.what}")
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="napari-irsam-mutation-"))
    try:
        copy_tree(tmp, args.ref)
        check_import_location(tmp)
        print(f"copy of {'commit ' + args.ref if args.ref else 'the working tree'} in {tmp}")
        for f in faults:  # every fault must apply before anything runs
            (tmp / f.path).write_text(apply(tmp, f))
        if not args.no_baseline:
            tests = tuple(dict.fromkeys(t for f in faults for t in f.tests))
            t0 = time.monotonic()
            rc, failed, tail = run_tests(tmp, tests, args.timeout)
            print(f"baseline (no fault): exit {rc} in {time.monotonic() - t0:.0f} s")
            if rc != 0:
                print(tail)
                print("the tests fail without any fault: fix that first")
                return 2
        results = []
        for f in faults:
            original = apply(tmp, f)
            t0 = time.monotonic()
            try:
                rc, failed, tail = run_tests(tmp, f.tests, args.timeout)
            finally:
                (tmp / f.path).write_text(original)
            status = {0: "SURVIVED", 1: "killed"}.get(rc, f"ERROR (exit {rc})")
            results.append((f, status, failed))
            print(f"{f.name:26} {status:9} {time.monotonic() - t0:5.0f} s  {f.what}")
            for test in failed:
                print(f"{'':36} by {test}")
            if status.startswith("ERROR"):
                print(tail)
        killed = sum(status == "killed" for _, status, _ in results)
        print(f"\nmutation score: {killed}/{len(results)} faults killed")
        if any(status.startswith("ERROR") for _, status, _ in results):
            return 2
        return 0 if killed == len(results) else 1
    except LookupError as exc:
        print(exc)
        return 2
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
