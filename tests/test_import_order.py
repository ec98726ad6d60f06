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
from napari_irsam.data.synthetic import make_dataset
from napari_irsam.training.train import TrainConfig, train
import tempfile
with tempfile.TemporaryDirectory() as tmp:  # training builds an optimizer: torch._dynamo loads
    make_dataset(tmp + "/ds", 4, size=(64, 64))
    cfg = TrainConfig(dataset=tmp + "/ds", out=tmp + "/run", config={"name": "t", "image_size": 64},
                      epochs=1, batch_size=2, max_steps=1, val_fraction=0.0)
    assert [e.kind for e in train(cfg)][-1] == "done"
viewer.close()
print("ok")
"""


def test_plugin_imports_and_training_after_napari_started_do_not_crash():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")
