"""The segmentation generator, run synchronously without napari or Qt."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from napari_irsam.model import CheckpointError, IRSAMConfig, build_irsam, save_checkpoint
from napari_irsam.review import PROVENANCE_KEYS
from napari_irsam.segment import (
    FrameDone,
    ModelCache,
    RunSpec,
    RunStarted,
    label_targets,
    run_segmentation,
    segment_stack,
)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    cfg = IRSAMConfig(name="tiny", image_size=64, gad_mode="both", wpmd_levels=("0", "1"))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(build_irsam(cfg), path, {"note": "test"})
    return path


@pytest.fixture(scope="module")
def tiny_ckpt_no_wpmd(tmp_path_factory):
    torch.manual_seed(0)
    cfg = IRSAMConfig(name="tiny-release", image_size=64)
    path = tmp_path_factory.mktemp("ckpt") / "tiny_release.pt"
    save_checkpoint(build_irsam(cfg), path)
    return path


def _stack(n=4, h=40, w=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4000, (n, h, w)).astype(np.uint16)


def test_run_yields_started_then_frames_in_order(tiny_ckpt):
    frames = _stack()
    events = list(run_segmentation(RunSpec(str(tiny_ckpt), "cpu", 0.5), frames, [2, 0]))
    assert isinstance(events[0], RunStarted)
    assert events[0].frame_indices == [2, 0]
    assert set(events[0].outputs) >= {"prob", "mask", "wpmd_edges", "granularity_local"}
    md = events[0].metadata
    assert md["model_id"] == "tiny.pt" and md["device"] == "cpu" and md["threshold"] == 0.5
    assert len(md["checkpoint_sha256"]) == 64 and md["has_wpmd"] is True
    frames_done = events[1:]
    assert [e.index for e in frames_done] == [2, 0]
    assert [(e.done, e.total) for e in frames_done] == [(1, 2), (2, 2)]
    out = frames_done[0].output
    assert out.prob.shape == out.mask.shape == out.wpmd_edges.shape == (40, 48)
    assert out.granularity_global.shape == (40, 48, 3)
    assert out.mask.dtype == bool and out.seconds > 0


def test_run_metadata_is_the_provenance_and_has_wpmd(tiny_ckpt):
    """The one list of provenance keys (review and export) names what runs really write."""
    irsam = next(run_segmentation(RunSpec(str(tiny_ckpt), "cpu"), _stack(1))).metadata
    classical = next(run_segmentation(RunSpec("classical:tophat", "cpu"), _stack(1))).metadata
    assert set(classical) == {*PROVENANCE_KEYS, "has_wpmd"}
    assert set(irsam) == {*PROVENANCE_KEYS, "has_wpmd"} - {"params"}


def test_release_config_has_no_wpmd_outputs(tiny_ckpt_no_wpmd):
    events = list(run_segmentation(RunSpec(str(tiny_ckpt_no_wpmd), "cpu"), _stack(1)))
    assert "wpmd_edges" not in events[0].outputs and events[0].metadata["has_wpmd"] is False
    assert events[1].output.wpmd_edges is None


def test_display_maps_only_for_the_layers_asked_for(tiny_ckpt):
    spec = RunSpec(str(tiny_ckpt), "cpu", maps=("wpmd",))
    events = list(run_segmentation(spec, _stack(1)))
    assert events[0].outputs == ("prob", "mask", "wpmd_edges", "wpmd_diffused")
    out = events[1].output
    assert out.granularity_local is None and out.wpmd_edges.shape == (40, 48)
    bare = list(run_segmentation(RunSpec(str(tiny_ckpt), "cpu", maps=()), _stack(1)))
    assert bare[0].outputs == ("prob", "mask") and bare[1].output.wpmd_edges is None


def test_rgb_frames_become_luminance(tiny_ckpt):
    rgb = np.random.default_rng(1).integers(0, 255, (2, 32, 32, 3)).astype(np.uint8)
    events = list(run_segmentation(RunSpec(str(tiny_ckpt), "cpu"), rgb))
    assert [type(e) for e in events] == [RunStarted, FrameDone, FrameDone]
    assert events[1].output.prob.shape == (32, 32)


def test_stopping_keeps_done_frames(tiny_ckpt):
    gen = run_segmentation(RunSpec(str(tiny_ckpt), "cpu"), _stack(5))
    next(gen)
    first = next(gen)
    gen.close()  # what a napari worker does on quit
    assert first.index == 0 and first.total == 5
    stop_after = iter([False, True])
    events = list(
        run_segmentation(
            RunSpec(str(tiny_ckpt), "cpu"), _stack(5), should_stop=lambda: next(stop_after, True)
        )
    )
    assert len([e for e in events if isinstance(e, FrameDone)]) == 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "neither a checkpoint file"),
        (b"this is not a checkpoint", "bad.pt (could not be read|is not a PyTorch)"),
        ({"foo.weight": torch.zeros(2)}, "does not match"),
    ],
)
def test_loading_errors_raise_before_any_event(tmp_path, content, needle):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    gen = run_segmentation(RunSpec(str(path), "cpu"), _stack(1))
    with pytest.raises(CheckpointError, match=needle):
        next(gen)


def test_model_cache_loads_once_and_reloads_on_change(tiny_ckpt, tmp_path):
    cache = ModelCache()
    m1, info1 = cache.get(str(tiny_ckpt), "cpu")
    m2, _ = cache.get(str(tiny_ckpt), "cpu")
    assert m1 is m2 and cache.loads == 1
    other = tmp_path / "other.pt"
    torch.manual_seed(5)
    save_checkpoint(build_irsam(IRSAMConfig(name="tiny", image_size=64)), other)
    m3, info3 = cache.get(str(other), "cpu")
    assert m3 is not m1 and cache.loads == 2 and info3.sha256 != info1.sha256
    with pytest.raises(CheckpointError):
        cache.get(str(tmp_path / "missing.pt"), "cpu")
    # a failed load does not leave a stale model behind
    assert cache.get(str(other), "cpu")[1].sha256 == info3.sha256 and cache.loads == 3


def test_segment_stack_with_any_segmenter_and_bad_index():
    class Echo:  # a stand-in segmenter: mask = frame > 0.5
        metadata: dict = {}
        outputs = ("prob", "mask")

        def iter_frames(self, frames, should_stop=None):
            from napari_irsam.segment import FrameOutput

            for i, f in enumerate(frames):
                yield i, FrameOutput(prob=f.astype(np.float32), mask=f > 0.5, seconds=0.0)

    frames = np.zeros((3, 8, 8), np.float32)
    frames[1, 2:4, 2:4] = 1
    done = list(segment_stack(frames, Echo(), [1]))
    assert len(done) == 1 and done[0].index == 1 and done[0].output.mask.sum() == 4
    with pytest.raises(ValueError, match="outside the stack"):
        list(segment_stack(frames, Echo(), [3]))


def test_label_targets_one_id_per_8_connected_target():
    mask = np.zeros((10, 10), bool)
    mask[1, 1] = mask[2, 2] = True  # diagonal neighbours: one target
    mask[6:8, 6:8] = True
    labels = label_targets(mask, first_id=10)
    assert labels.dtype == np.int32
    assert sorted(np.unique(labels)) == [0, 10, 11]
    assert labels[1, 1] == labels[2, 2]


#: top-level packages of the GUI stack; the core must run where none of them is installed
GUI_PACKAGES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy")

CORE_IMPORT_SCRIPT = """
import importlib, pkgutil, sys
import numpy as np
import napari_irsam
names = [m.name for m in pkgutil.walk_packages(napari_irsam.__path__, "napari_irsam.")
         if not m.name.startswith(("napari_irsam._widgets", "napari_irsam.__main__"))]
for name in names:
    importlib.import_module(name)
from napari_irsam.segment import RunSpec, run_segmentation
frames = np.random.default_rng(0).integers(0, 4000, (1, 40, 48)).astype(np.uint16)
events = list(run_segmentation(RunSpec(sys.argv[1], "cpu"), frames))
assert len(events) == 2, events
gui = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2:]))
print("modules", len(names), "gui", gui)
"""


def test_core_does_not_import_qt(tiny_ckpt):
    """Every module outside ``_widgets`` imports, and a whole segmentation runs, in a fresh
    interpreter without loading napari or any Qt binding (this process has them loaded by other
    tests, so only a fresh interpreter can tell)."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", CORE_IMPORT_SCRIPT, str(tiny_ckpt), *GUI_PACKAGES],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    n_modules = int(last.split()[1])
    assert n_modules >= 30, last  # the walk really found the package's modules
    assert last.endswith("gui []"), f"core modules imported GUI packages: {last}"
