"""napari-irsam: IRSAM (Segment Anything for infrared small targets) in napari.

The core (``model``, ``data``, ``training``, ``inference``, ``metrics``, ``classical``) is
torch/numpy only; the napari contributions (``_reader``, ``_writer``, ``_sample_data``,
``_widgets``) are thin layers over it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-irsam")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
