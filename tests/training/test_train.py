import torch

from napari_irsam.data.synthetic import make_dataset
from napari_irsam.model import read_checkpoint
from napari_irsam.training.train import TrainConfig, lr_at, train

TINY = {"name": "tiny", "image_size": 64, "gad_mode": "both", "wpmd_levels": ["0", "1"]}


def _cfg(tmp_path, **kw):
    data = tmp_path / "ds"
    if not data.exists():
        make_dataset(data, 10, seed=0, size=(64, 64))
    base = dict(
        dataset=str(data),
        out=str(tmp_path / "run"),
        split="train",
        config=TINY,
        epochs=2,
        batch_size=2,
        lr=1e-3,
        warmup_steps=1,
        val_fraction=0.2,
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_loss_decreases_and_checkpoints_carry_metadata(tmp_path):
    events = list(train(_cfg(tmp_path, epochs=3)))
    steps = [e.loss for e in events if e.kind == "step"]
    assert len(steps) == 9 and sum(steps[-3:]) < sum(steps[:3])
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.epoch for e in epochs] == [0, 1, 2] and "iou" in epochs[-1].metrics
    ck = read_checkpoint(tmp_path / "run" / "best.pt")
    assert ck.config["name"] == "tiny" and len(ck.metadata["data_manifest_sha256"]) == 64
    assert ck.metadata["val_names"] and ck.metadata["seed"] == 0
    assert read_checkpoint(tmp_path / "run" / "last.pt").metadata["epoch"] == 2


def test_resume_continues_from_the_saved_epoch(tmp_path):
    run = train(_cfg(tmp_path, epochs=2))
    for ev in run:  # "kill" the run right after its first epoch was saved
        if ev.kind == "epoch":
            run.close()
            break
    events = list(train(_cfg(tmp_path, epochs=2)))
    assert events[0].kind == "start" and events[0].epoch == 1 and events[0].step == 3
    assert [e.epoch for e in events if e.kind == "epoch"] == [1]
    fresh = list(train(_cfg(tmp_path, epochs=2, out=str(tmp_path / "fresh"))))
    a = read_checkpoint(tmp_path / "run" / "last.pt").state_dict
    b = read_checkpoint(tmp_path / "fresh" / "last.pt").state_dict
    key = "mask_decoder.edge_token.weight"
    torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)  # resumed == uninterrupted
    assert fresh[-1].kind == "done"


def test_max_steps_and_schedule(tmp_path):
    events = list(train(_cfg(tmp_path, epochs=5, max_steps=3)))
    assert max(e.step for e in events) == 3
    assert lr_at(0, 100, 1.0, 10) == 0.1 and lr_at(9, 100, 1.0, 10) == 1.0
    assert abs(lr_at(100, 100, 1.0, 10)) < 1e-9 and 0.4 < lr_at(55, 100, 1.0, 10) < 0.6
    # a time-limited run anneals with the clock when the clock is further along than the steps
    assert lr_at(20, 100, 1.0, 10, time_fraction=0.5) == lr_at(55, 100, 1.0, 10)
    assert lr_at(20, 100, 1.0, 10, time_fraction=1.0) < 1e-9


def test_finetune_keeps_the_start_checkpoints_configuration(tmp_path):
    list(train(_cfg(tmp_path, epochs=1, max_steps=1)))
    start = tmp_path / "run" / "best.pt"
    events = list(
        train(
            _cfg(
                tmp_path,
                init=str(start),
                config=None,
                epochs=1,
                max_steps=1,
                mask_bce_weight=1.0,
                out=str(tmp_path / "ft"),
            )
        )
    )
    assert "mask_bce" in [e for e in events if e.kind == "step"][0].metrics
    assert read_checkpoint(tmp_path / "ft" / "best.pt").config["name"] == "tiny"


def test_order_seed_changes_batches_but_not_the_held_out_names(tmp_path):
    def run(name, **kw):
        list(train(_cfg(tmp_path, out=str(tmp_path / name), epochs=1, max_steps=2, **kw)))
        return read_checkpoint(tmp_path / name / "last.pt")

    base, same, other = run("a"), run("b", order_seed=0), run("c", order_seed=7)
    key = "mask_decoder.edge_token.weight"
    torch.testing.assert_close(base.state_dict[key], same.state_dict[key])  # None means seed
    assert not torch.allclose(base.state_dict[key], other.state_dict[key])
    assert other.metadata["val_names"] == base.metadata["val_names"]
    assert other.metadata["train_config"]["order_seed"] == 7
