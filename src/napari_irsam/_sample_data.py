"""Sample data: a synthetic 16-bit infrared recording with moving small targets, ground-truth
labels (value = track id) and the ground-truth track table (see
:mod:`napari_irsam.data.synthetic_video`)."""

from __future__ import annotations

from typing import Any

from .data.synthetic_video import make_recording

#: what the sample is made of (kept small: it opens in about a second)
SAMPLE = {
    "n_frames": 24,
    "shape": (256, 256),
    "n_targets": 4,
    "seed": 7,
    "background": "cloud",
    "snr_range": (3.0, 8.0),
    "flicker_rate": 0.5,
}


def make_sample_data() -> list[tuple[Any, dict[str, Any], str]]:
    """24 frames of 256×256 uint16 (thermal-camera-like) with 4 moving targets (2 point,
    2 extended), camera jitter and one-frame flickers, + a hidden ground-truth Labels layer whose
    ids are the track ids (its metadata holds the track table: frame, track_id, row, col, …)."""
    from .data.io import DISPLAY_PERCENTILES, percentile_limits

    rec = make_recording(**SAMPLE)
    names = [f"synthetic_{i:02d}" for i in range(len(rec.frames))]
    meta = {"source_paths": [], "dtype": str(rec.frames.dtype), "frame_names": names}
    return [
        (
            rec.frames,
            {
                "name": "synthetic IR",
                "colormap": "gray",
                "contrast_limits": percentile_limits(rec.frames, *DISPLAY_PERCENTILES),
                "metadata": meta,
            },
            "image",
        ),
        (
            rec.labels,
            {
                "name": "ground truth",
                "opacity": 0.5,
                "visible": False,
                "metadata": {"frame_names": names, "tracks": rec.tracks},
            },
            "labels",
        ),
    ]
