"""Sample data: a synthetic 16-bit infrared sequence with moving small targets and ground truth."""

from __future__ import annotations

from typing import Any

from .data.synthetic import make_sequence


def make_sample_data() -> list[tuple[Any, dict[str, Any], str]]:
    """8 frames of 256×256 uint16 (thermal-camera-like) + a ground-truth Labels layer."""
    from .data.io import DISPLAY_PERCENTILES, percentile_limits

    frames, labels = make_sequence(
        n_frames=8, shape=(256, 256), seed=7, n_targets=3, background="cloud"
    )
    names = [f"synthetic_{i:02d}" for i in range(len(frames))]
    meta = {"source_paths": [], "dtype": str(frames.dtype), "frame_names": names}
    return [
        (
            frames,
            {
                "name": "synthetic IR",
                "colormap": "gray",
                "contrast_limits": percentile_limits(frames, *DISPLAY_PERCENTILES),
                "metadata": meta,
            },
            "image",
        ),
        (
            labels,
            {
                "name": "ground truth",
                "opacity": 0.5,
                "visible": False,
                "metadata": {"frame_names": names},
            },
            "labels",
        ),
    ]
