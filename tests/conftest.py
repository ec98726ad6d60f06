"""Shared fixtures for model tests: one full-size release forward, captured once."""

from __future__ import annotations

import pytest
import torch

from napari_irsam.model import IRSAMConfig, build_irsam
from napari_irsam.model.device import import_dynamo_without_triton

# Qt tests load Mesa's llvmpipe; a later first import of torch._dynamo (torchvision through timm
# in the encoder parity tests, torch.optim in training tests) would import triton, whose bundled
# LLVM then crashes the whole session (segmentation fault). Import dynamo now with triton hidden,
# as the plugin does before it trains (model/device.py says why).
import_dynamo_without_triton()

#: fixtures that start Qt; a session that uses one checks first that Qt can start at all
QT_FIXTURES = frozenset({"qapp", "qtbot", "make_napari_viewer"})


@pytest.hookimpl(trylast=True)  # after pytest-xvfb has started the virtual display
def pytest_collection_modifyitems(session, config, items):
    """Stop with one line (not "Fatal Python error: Aborted" mid-suite) when Qt cannot start."""
    if not any(QT_FIXTURES & set(getattr(item, "fixturenames", ())) for item in items):
        return
    from napari_irsam._qt_check import qt_start_problem

    problem = qt_start_problem(xvfb=config.pluginmanager.has_plugin("xvfb"))
    if problem:
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="session")
def release_model():
    torch.manual_seed(0)
    return build_irsam("release")


@pytest.fixture(scope="session")
def release_run(release_model):
    """Forward a (1, 3, 512, 512) image and record every stage's output shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    enc = release_model.image_encoder
    hooks = [
        enc.patch_embed.register_forward_hook(
            lambda m, i, o: shapes.__setitem__("patch_embed", tuple(o.shape))
        ),
    ]
    for s in range(4):
        hooks.append(
            enc.layers[s].register_forward_hook(
                lambda m, i, o, s=s: shapes.__setitem__(f"layers.{s}", tuple(o[0].shape))
            )
        )
    hooks.append(
        enc.neck.register_forward_hook(lambda m, i, o: shapes.__setitem__("neck", tuple(o.shape)))
    )
    torch.manual_seed(1)
    x = torch.rand(1, 3, 512, 512) * 255
    with torch.inference_mode():
        out = release_model.forward_all(x)
        logits, edges = release_model(x)
    for h in hooks:
        h.remove()
    return {"x": x, "out": out, "logits": logits, "edges": edges, "shapes": shapes}


@pytest.fixture()
def tiny_config() -> IRSAMConfig:
    """A release-architecture model on a 64² input (128² encoder input): fast for tests."""
    return IRSAMConfig(
        name="tiny-test", image_size=64, encoder_scale=2, gad_mode="both", wpmd_levels=("0", "1")
    )
