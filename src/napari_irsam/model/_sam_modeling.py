"""segment-anything's ``modeling`` subpackage, loaded without ``segment_anything/__init__.py``.

That ``__init__`` imports the predictor and the automatic mask generator, which import
torchvision; torchvision imports ``torch._dynamo`` and with it triton, whose bundled LLVM crashes
the process (segmentation fault) when Mesa's llvmpipe OpenGL is already loaded — that is, when a
widget of this plugin is first opened inside a running napari on a machine without a GPU driver.
IRSAM needs only the modeling classes (plain torch), so we load that subpackage on its own under a
private name; when ``segment_anything`` is already imported, its own ``modeling`` is used.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_PRIVATE = "napari_irsam._segment_anything_modeling"


def sam_modeling() -> ModuleType:
    """The ``segment_anything.modeling`` package (submodules ``common``, ``mask_decoder``,
    ``prompt_encoder``, ``transformer`` … are attributes)."""
    if "segment_anything" in sys.modules:
        return importlib.import_module("segment_anything.modeling")
    if _PRIVATE in sys.modules:
        return sys.modules[_PRIVATE]
    spec = importlib.util.find_spec("segment_anything")  # locates without importing
    if spec is None or spec.origin is None:
        raise ImportError("segment-anything is not installed: pip install segment-anything")
    folder = Path(spec.origin).parent / "modeling"
    sub = importlib.util.spec_from_file_location(
        _PRIVATE, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert sub is not None and sub.loader is not None
    module = importlib.util.module_from_spec(sub)
    sys.modules[_PRIVATE] = module
    try:
        sub.loader.exec_module(module)
    except BaseException:
        del sys.modules[_PRIVATE]
        raise
    return module
