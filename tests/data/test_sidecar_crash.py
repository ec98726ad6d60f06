"""Autosave survives a writer killed (SIGKILL) in the middle of a save.

The test runs this file as a script: a child process that autosaves a scripted review edit by
edit, the way the Review widget does. At a chosen edit it stops *inside* the atomic write — the
temporary file exists and holds half the bytes — tells the test so on stdout and waits; the test
kills it there. The review must then restore exactly up to the last completed edit, and saving
must go on working next to the interrupted temporary file.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from napari_irsam.data import sidecar
from napari_irsam.data.io import atomic_path
from napari_irsam.data.sidecar import Sidecar
from napari_irsam.review import ReviewState

N_FRAMES, SHAPE, N_EDITS = 4, (24, 24), 12


def initial_labels() -> np.ndarray:
    lab = np.zeros((N_FRAMES, *SHAPE), np.int32)
    for f in range(N_FRAMES):
        lab[f, 2 + f : 5 + f, 3:6] = 1
        lab[f, 15:18, 10 + f : 13 + f] = 2
    return lab


def apply_edit(j: int, state: ReviewState, labels: np.ndarray) -> list[int]:
    """Edit number ``j`` ≥ 1, in place → the frames it changed (every third marks a frame)."""
    if j % 3 == 0:
        state.mark_reviewed((j // 3) % N_FRAMES)
        return []
    f = j % N_FRAMES
    if j % 2:
        r, c = (5 * j) % 20, (7 * j) % 20
        labels[f, r : r + 3, c : c + 3] = 100 + j  # a new target (may cover part of another)
    else:
        labels[f][labels[f] == 1] = 0  # erase target 1
    state.sync_frame(f, labels[f])
    return [f]


def replay(k: int) -> tuple[ReviewState, np.ndarray]:
    """The review after edits 1 … k."""
    labels = initial_labels()
    state = ReviewState.from_labels(labels)
    for j in range(1, k + 1):
        apply_edit(j, state, labels)
    return state, labels


def writer(folder: str, kill_edit: int, kill_in: str) -> None:
    """Child process: autosave edit after edit; block inside the chosen atomic write."""
    real_write = sidecar.atomic_write_bytes
    edit = 0

    def write(path: str | os.PathLike[str], data: bytes) -> None:
        is_json = Path(path).name == sidecar.STATE_FILE
        if edit == kill_edit and is_json == (kill_in == "json"):
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                f.write(data[: len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
                print(f"saving {edit} {tmp}", flush=True)
                sys.stdin.read()  # the test kills us here
        real_write(path, data)

    sidecar.atomic_write_bytes = write
    car = Sidecar(folder)
    state, labels = replay(0)
    car.save(state, labels)
    print("done 0", flush=True)
    for edit in range(1, N_EDITS + 1):
        frames = apply_edit(edit, state, labels)
        car.save(state, labels, frames=frames)
        print(f"done {edit}", flush=True)


def _kill_mid_save(folder: Path, kill_edit: int, kill_in: str, timeout: float = 120) -> list[str]:
    """Run the writer until it reports it is inside the save of ``kill_edit``; SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, __file__, str(folder), str(kill_edit), kill_in],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, deadline = b"", time.monotonic() + timeout
    try:
        while b"saving" not in out:
            ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
            if not chunk:  # timed out, or the writer exited without reaching the save
                proc.kill()
                err = proc.communicate()[1].decode(errors="replace")
                raise AssertionError(f"writer never reached edit {kill_edit}:\n{out}\n{err}")
            out += chunk
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
    assert proc.returncode == -signal.SIGKILL
    return out.decode().split()


def test_restore_after_kill_mid_save_and_saving_goes_on(tmp_path):
    """Killed inside a frame write, inside the JSON write after a frame, and inside a JSON-only
    save: each restores up to its last completed edit (a completed frame counts)."""
    for kill_edit, kill_in, expected in (
        (8, "frame", 7),  # frame 0's new labels half-written: edit 8 is lost
        (7, "json", 7),  # frame 3 written, the JSON not: the frame is re-diffed
        (9, "json", 8),  # marking frame 3 reviewed: the JSON was half-written
    ):
        folder = tmp_path / f"{kill_in}{kill_edit}.irsam-review"
        words = _kill_mid_save(folder, kill_edit, kill_in)
        assert f"{kill_edit - 1}" == words[words.index("saving") - 1]  # last completed edit
        tmp = Path(words[-1])
        assert tmp.is_file() and tmp.name.startswith(".") and folder in tmp.parents
        state, labels, _ = Sidecar(folder).load()
        want_state, want_labels = replay(expected)
        assert np.array_equal(labels, want_labels), (kill_edit, kill_in)
        assert state.to_dict() == want_state.to_dict(), (kill_edit, kill_in)

        # carry on from the restore in a new session: a full save, then edit-by-edit saves
        car = Sidecar(folder)
        state, labels, _ = car.load()
        car.save(state, labels)
        for j in range(expected + 1, N_EDITS + 1):
            car.save(state, labels, frames=apply_edit(j, state, labels))
        assert tmp.is_file()  # the interrupted file is left alone (nothing is deleted) …
        state, labels, _ = Sidecar(folder).load()  # … and ignored by a fresh full save/load
        Sidecar(folder).save(state, labels)
        want_state, want_labels = replay(N_EDITS)
        assert np.array_equal(labels, want_labels)
        assert state.to_dict() == want_state.to_dict()


def test_stray_files_in_labels_are_ignored(tmp_path):
    car = Sidecar(tmp_path / "s.irsam-review")
    state, labels = replay(2)
    car.save(state, labels)
    junk = car.folder / "labels"
    (junk / ".000001.ab12cd.npz").write_bytes(b"PK\x03\x04 half")
    (junk / "000001.npz.bak").write_bytes(b"x")
    (junk / "notes.npz").write_bytes(b"x")
    fresh = Sidecar(car.folder)
    state2, labels2, _ = fresh.load()
    assert np.array_equal(labels2, labels)
    fresh.save(state2, labels2)
    assert sorted(sidecar.frame_files(junk)) == [0, 1, 2, 3]


def test_a_damaged_frame_file_is_one_value_error(tmp_path):
    car = Sidecar(tmp_path / "s.irsam-review")
    state, labels = replay(0)
    car.save(state, labels)
    car.frame_path(1).write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match=r"saved frame .*000001\.npz cannot be read") as info:
        Sidecar(car.folder).load()
    assert "\n" not in str(info.value)


def test_frames_a_failed_save_missed_are_written_by_the_next(tmp_path, monkeypatch):
    car = Sidecar(tmp_path / "s.irsam-review")
    state, labels = replay(0)
    car.save(state, labels)
    real_write = sidecar.atomic_write_bytes

    def full_disk(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sidecar, "atomic_write_bytes", full_disk)
    frames = apply_edit(1, state, labels)  # a new target in frame 1
    with pytest.raises(OSError):
        car.save(state, labels, frames=frames)
    monkeypatch.setattr(sidecar, "atomic_write_bytes", real_write)
    car.save(state, labels, frames=apply_edit(3, state, labels))  # JSON only: frame 1 reviewed
    state2, labels2, _ = Sidecar(car.folder).load()
    want_state, want_labels = replay(1)
    want_state.mark_reviewed(1)
    assert np.array_equal(labels2, want_labels)
    assert state2.to_dict() == want_state.to_dict()


if __name__ == "__main__":
    writer(sys.argv[1], int(sys.argv[2]), sys.argv[3])
