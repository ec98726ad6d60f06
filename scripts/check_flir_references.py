"""Cross-check our FLIR reader against flirpy (SEQ) and flyr (R-JPEG) on files the test fixtures
write — the check docs/thermal.md reports.

flirpy pins numpy < 2.4 and pulls USB/OpenCV dependencies, so it is not installed in the venv;
install it beside, without dependencies, and point this script at it::

    .venv/bin/pip install --no-deps --target /tmp/flirpy_ref flirpy
    .venv/bin/python scripts/check_flir_references.py --flirpy /tmp/flirpy_ref

Prints the largest temperature difference (K) and whether the raw counts agree, per frame.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))

import flir_files as F  # noqa: E402

from napari_irsam.data.io import read_frames  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flirpy", help="folder flirpy was installed into (--no-deps --target)")
    args = ap.parse_args()
    raws = [F.raw_frame(seed=i) for i in range(3)]
    with tempfile.TemporaryDirectory() as tmp:
        seq = F.write_seq(Path(tmp) / "rec.seq", raws)
        ours = read_frames(seq).data
        if args.flirpy:
            sys.path.insert(0, args.flirpy)
            from flirpy.io.seq import Seq

            s = Seq(str(seq))
            print(f"flirpy: {len(s)} frame(s)")
            for i in range(len(s)):
                frame = s[i]
                diff = np.abs(frame.get_radiometric_image() - ours[i]).max()
                same = bool((frame.get_image() == raws[i]).all())
                print(f"  frame {i}: counts identical {same}, max |ΔT| {diff * 1000:.2f} mK")
        try:
            import flyr
        except ImportError:
            print("flyr not installed: R-JPEG check skipped")
            return 0
        jpg = F.write_rjpeg(Path(tmp) / "IR.jpg", raws[0])
        diff = np.abs(flyr.unpack(str(jpg)).celsius - read_frames(jpg).data[0]).max()
        print(f"flyr: R-JPEG max |ΔT| {diff * 1000:.2f} mK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
