"""Opening the plugin inside a running napari must not crash (see model/_sam_modeling.py)."""

import subprocess
import sys

SCRIPT = """
import sys
import napari
viewer = napari.Viewer(show=False)  # Qt + OpenGL (Mesa llvmpipe under Xvfb) loaded first
import napari_irsam._widgets.run_irsam, napari_irsam._widgets.finetune
from napari_irsam.model import build_irsam
build_irsam({"name": "t", "image_size": 64})
assert "torchvision" not in sys.modules and "triton" not in sys.modules, "heavy imports came back"
viewer.close()
print("ok")
"""


def test_plugin_imports_after_napari_started_do_not_pull_torchvision():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")
