"""Training batches through the DataLoader: the same batches as the loop they replaced, the same
batches whatever the number of workers or processes, and refusals in one sentence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_irsam.data.dataset import IRSTDDataset
from napari_irsam.data.synthetic import make_dataset
from napari_irsam.model import read_checkpoint
from napari_irsam.training.augment import augment, augment_native
from napari_irsam.training.loader import (
    AugmentSpec,
    EpochBatches,
    TrainSamples,
    make_loader,
    resolve_stream,
)
from napari_irsam.training.train import TrainConfig, train

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader") / "ds"
    make_dataset(root, 12, seed=3, size=(48, 56))
    return IRSTDDataset(root, cache=True)


def _epoch(data, spec, stream, workers=0, rank=0, world=1, epoch=1, batch=4):
    samples = TrainSamples(data, spec, seed=7)
    batches = EpochBatches(batch, len(data) // batch, rank, world)
    rng = np.random.default_rng([7, epoch])
    batches.set_epoch(epoch, rng.permutation(len(data)))
    samples.epoch_rng = rng if stream == "epoch" else None
    return list(make_loader(samples, batches, workers, CPU))


@pytest.mark.parametrize("geometry", ["squash", "native"])
def test_epoch_stream_gives_the_batches_of_the_old_inline_loop(data, geometry):
    spec = AugmentSpec(geometry, 32, vflip=True, target_crop=0.5)
    got = _epoch(data, spec, "epoch")
    # the loop before the DataLoader: one generator per epoch, order first, then every sample
    rng = np.random.default_rng([7, 1])
    order = rng.permutation(len(data))
    assert len(got) == 3
    for b, (x, y) in enumerate(got):
        pairs = []
        for i in order[b * 4 : (b + 1) * 4]:
            s = data[int(i)]
            if geometry == "native":
                pairs.append(augment_native(s.image, s.mask, 32, rng, 0.5))
            else:
                pairs.append(augment(s.image, s.mask, 32, rng, vflip=True, target_crop=0.5))
        assert x.shape == (4, 3, 32, 32) and y.shape == (4, 1, 32, 32)
        assert torch.equal(x, torch.stack([p[0] for p in pairs]))
        assert torch.equal(y, torch.stack([p[1] for p in pairs]))


def test_sample_stream_is_the_same_for_any_workers_and_processes(data):
    spec = AugmentSpec("squash", 32, target_crop=0.5)
    alone = _epoch(data, spec, "sample")
    assert _epoch(data, spec, "epoch")[0][0].shape == alone[0][0].shape
    assert not torch.equal(_epoch(data, spec, "epoch")[0][0], alone[0][0])  # another stream
    with_workers = _epoch(data, spec, "sample", workers=2)
    for (xa, ya), (xb, yb) in zip(alone, with_workers):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # two processes: rank r holds positions r, r+2 of each global batch
    r0 = _epoch(data, spec, "sample", rank=0, world=2)
    r1 = _epoch(data, spec, "sample", rank=1, world=2)
    for (x, _), (x0, _), (x1, _) in zip(alone, r0, r1):
        assert x0.shape[0] == x1.shape[0] == 2
        assert torch.equal(x[0::2], x0) and torch.equal(x[1::2], x1)
    # another epoch, other batches
    assert not torch.equal(_epoch(data, spec, "sample", epoch=2)[0][0], alone[0][0])


def test_refusals_are_one_sentence():
    assert resolve_stream(None, 0, 1) == "epoch"
    assert resolve_stream(None, 2, 1) == resolve_stream(None, 0, 2) == "sample"
    with pytest.raises(ValueError, match="workers=0 and one process"):
        resolve_stream("epoch", 2, 1)
    with pytest.raises(ValueError, match="'epoch' or 'sample'"):
        resolve_stream("batch", 0, 1)
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        EpochBatches(3, 2, rank=0, world=2)
    with pytest.raises(ValueError, match="workers must be 0 or more"):
        make_loader(None, EpochBatches(2, 1), -1, CPU)


def test_training_with_workers_equals_training_without(tmp_path):
    make_dataset(tmp_path / "ds", 8, seed=0, size=(64, 64))
    tiny = {"name": "tiny", "image_size": 64, "gad_mode": "both", "wpmd_levels": ["0", "1"]}

    def run(name, **kw):
        cfg = TrainConfig(
            dataset=str(tmp_path / "ds"), out=str(tmp_path / name), split="train", config=tiny,
            epochs=1, batch_size=2, max_steps=2, lr=1e-3, warmup_steps=1, val_fraction=0.0,
            seed=0, **kw,
        )  # fmt: skip
        events = list(train(cfg))
        assert [e.step for e in events if e.kind == "step"] == [1, 2]
        return read_checkpoint(tmp_path / name / "last.pt")

    a = run("w0", augment_stream="sample")
    b = run("w1", workers=1)
    assert b.metadata["train_config"]["workers"] == 1
    # The batches are identical (test above) but arrive through shared memory, and the kernels
    # may round differently for differently placed inputs; AdamW turns float-noise gradients
    # into ±lr steps (see test_distributed), so the weights are compared statistically.
    keys = [k for k, v in a.state_dict.items() if v.is_floating_point() and "running" not in k]
    diff = torch.cat([(b.state_dict[k] - a.state_dict[k]).flatten() for k in keys])
    scale = torch.cat([a.state_dict[k].flatten() for k in keys]).norm()
    assert (diff.abs() > 1e-5).float().mean() < 0.005
    assert diff.norm() < 1e-3 * scale
