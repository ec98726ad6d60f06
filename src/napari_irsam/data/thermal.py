"""Radiometric camera files → temperature frames in °C (float32) with their camera metadata.

The formats are parsed in :mod:`napari_irsam.data.flir`; this module turns raw counts into
object temperatures and gathers the metadata that travels with the frames (layer metadata,
export manifests). numpy only; no napari, no Qt.

Raw counts → temperature (FLIR's calibration model, as published in Minkina & Dudzik,
*Infrared Thermography: Errors and Uncertainties* (2009), and implemented by ExifTool's forum
formula, R Thermimage ``raw2temp``, flirpy and flyr): the camera measures
``raw = E·τ·S(T_obj) + (1−E)·τ·S(T_refl) + (1−τ)·S(T_atm)`` (window terms when an IR window is
set), with the Planck-shaped sensor curve ``S(T) = R1 / (R2·(exp(B/T) − F)) − O`` (T in kelvin)
and the atmospheric transmission ``τ = X·exp(−√(d/2)·(α1 + β1·√h₂o)) + (1−X)·exp(−√(d/2)·(α2 +
β2·√h₂o))`` over the object distance d (m), h₂o the water vapour content from relative humidity
and air temperature. Solving for T_obj gives :func:`raw_to_celsius`; :func:`celsius_to_raw` is
its inverse (used by tests to write files with known temperatures).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .flir import FlirSequence, ThermalFormatError, flir_jpeg_fff, jpeg_kind, parse_fff

KELVIN = 273.15
SEQUENCE_EXTS = (".seq", ".csq", ".fff")
JPEG_EXTS = (".jpg", ".jpeg")
#: parameters that decide the temperature; kept per frame when they change within a file
CALIBRATION_KEYS = (
    "emissivity",
    "object_distance_m",
    "reflected_temperature_c",
    "atmospheric_temperature_c",
    "ir_window_temperature_c",
    "ir_window_transmission",
    "relative_humidity",
    "planck_r1",
    "planck_r2",
    "planck_b",
    "planck_f",
    "planck_o",
    "atm_trans_alpha1",
    "atm_trans_alpha2",
    "atm_trans_beta1",
    "atm_trans_beta2",
    "atm_trans_x",
)
#: defaults where a camera leaves a field out (no window, 1 m, 20 °C, 50 %)
_DEFAULTS = {
    "emissivity": 1.0,
    "object_distance_m": 1.0,
    "reflected_temperature_c": 20.0,
    "atmospheric_temperature_c": 20.0,
    "ir_window_temperature_c": 20.0,
    "ir_window_transmission": 1.0,
    "relative_humidity": 0.5,
    "atm_trans_alpha1": 0.006569,
    "atm_trans_alpha2": 0.01262,
    "atm_trans_beta1": -0.002276,
    "atm_trans_beta2": -0.00667,
    "atm_trans_x": 1.9,
    "planck_f": 1.0,
    "planck_o": 0.0,
    "planck_r2": 1.0,
}
DJI_MESSAGE = (
    "{name} is a DJI radiometric JPEG: its temperatures can only be decoded with DJI's Thermal "
    "SDK, so the palette picture is opened instead (convert it to a temperature TIFF with DJI "
    "Thermal Analysis Tool or the SDK's dji_irp; see docs/thermal.md)."
)


def _params(cam: dict[str, Any]) -> dict[str, float]:
    p = dict(_DEFAULTS)
    p.update({k: float(cam[k]) for k in CALIBRATION_KEYS if cam.get(k) is not None})
    if p["emissivity"] <= 0 or p["ir_window_transmission"] <= 0:
        raise ThermalFormatError("Emissivity and IR window transmission must be above 0.")
    return p


def _planck(t_c: float | np.ndarray, p: dict[str, float]) -> Any:
    """Sensor counts S(T) of a black body at ``t_c`` °C."""
    return (
        p["planck_r1"] / (p["planck_r2"] * (np.exp(p["planck_b"] / (t_c + KELVIN)) - p["planck_f"]))
        - p["planck_o"]
    )


def _transmission(p: dict[str, float]) -> float:
    t_atm, d = p["atmospheric_temperature_c"], p["object_distance_m"]
    h2o = p["relative_humidity"] * math.exp(
        1.5587 + 0.06939 * t_atm - 0.00027816 * t_atm**2 + 0.00000068455 * t_atm**3
    )
    root = -math.sqrt(max(d, 0.0) / 2)
    x = p["atm_trans_x"]
    return x * math.exp(root * (p["atm_trans_alpha1"] + p["atm_trans_beta1"] * math.sqrt(h2o))) + (
        1 - x
    ) * math.exp(root * (p["atm_trans_alpha2"] + p["atm_trans_beta2"] * math.sqrt(h2o)))


def _gain_offset(p: dict[str, float]) -> tuple[float, float]:
    """(g, c) with object counts = raw · g − c (atmosphere, reflections and window removed)."""
    e, irt, tau = p["emissivity"], p["ir_window_transmission"], _transmission(p)
    s_refl, s_atm = (
        _planck(p["reflected_temperature_c"], p),
        _planck(p["atmospheric_temperature_c"], p),
    )
    s_win = _planck(p["ir_window_temperature_c"], p)
    g = 1.0 / (e * tau * irt * tau)  # the window is taken half-way: τ before and after it
    c = (1 - e) / e * s_refl + (1 - tau) / (e * tau) * s_atm
    c += (1 - irt) / (e * tau * irt) * s_win + (1 - tau) * g * s_atm
    return g, c


def raw_to_celsius(raw: np.ndarray, cam: dict[str, Any]) -> np.ndarray:
    """Raw counts (any shape) → object temperature in °C, float32 (NaN where undefined)."""
    p = _params(cam)
    g, c = _gain_offset(p)
    obj = np.asarray(raw, np.float64) * g - c
    with np.errstate(divide="ignore", invalid="ignore"):
        t = p["planck_b"] / np.log(
            p["planck_r1"] / (p["planck_r2"] * (obj + p["planck_o"])) + p["planck_f"]
        )
    return (t - KELVIN).astype(np.float32)


def celsius_to_raw(t_c: np.ndarray | float, cam: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`raw_to_celsius`: the counts a camera would record (float64)."""
    p = _params(cam)
    g, c = _gain_offset(p)
    return (_planck(np.asarray(t_c, np.float64), p) + c) / g


# --------------------------------------------------------------------------------- reading
def thermal_kind(path: str | os.PathLike[str]) -> str | None:
    """``"flir"`` for FLIR SEQ/CSQ/FFF files and FLIR R-JPEGs, ``"dji"`` for DJI R-JPEGs (not
    decodable here), None for any other file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in SEQUENCE_EXTS:
        return "flir"
    if suffix in JPEG_EXTS and p.is_file():
        return jpeg_kind(p)
    return None


def _frame_list(path: Path) -> list[dict[str, Any]]:
    """Camera parameters of every frame of one FLIR file (images are not decoded)."""
    if path.suffix.lower() in JPEG_EXTS:
        return [parse_fff(flir_jpeg_fff(path), 0, path.name, image=False).camera]
    with FlirSequence(path) as seq:
        cams = [seq.frame(i, image=False).camera for i in range(len(seq))]
        if seq.truncated:  # the recording was cut short: its complete frames are kept
            cams[-1] = {**cams[-1], "truncated_after": True}
        return cams


def read_celsius(path: str | os.PathLike[str], index: int = 0) -> np.ndarray:
    """Frame ``index`` of one FLIR file as (H, W) float32 °C."""
    path = Path(path)
    if path.suffix.lower() in JPEG_EXTS:
        frame = parse_fff(flir_jpeg_fff(path), 0, path.name)
    else:
        with FlirSequence(path) as seq:
            frame = seq.frame(index)
    return raw_to_celsius(frame.raw, frame.camera)


def _read_all(path: Path) -> list[np.ndarray]:
    """Every frame of one FLIR file as (H, W) float32 °C (the file opened once)."""
    if path.suffix.lower() in JPEG_EXTS:
        return [read_celsius(path)]
    with FlirSequence(path) as seq:
        frames = [seq.frame(i) for i in range(len(seq))]
    return [raw_to_celsius(f.raw, f.camera) for f in frames]


def thermal_metadata(cameras: Sequence[dict[str, Any]], fmt: str) -> dict[str, Any]:
    """The ``thermal`` metadata of a stack: units, the first frame's camera parameters, per-frame
    timestamps (ISO 8601; seconds since the first frame) and any parameter that changes."""
    first = dict(cameras[0])
    stamps = [c.get("datetime") for c in cameras]
    meta: dict[str, Any] = {
        "format": fmt,
        "unit": "°C",
        "reader": "napari_irsam.data.flir",
        "camera": {k: v for k, v in first.items() if k != "datetime"},
        "timestamps": stamps,
    }
    if all(stamps):
        from datetime import datetime

        t0 = datetime.fromisoformat(stamps[0])
        meta["time_s"] = [
            round((datetime.fromisoformat(s) - t0).total_seconds(), 3) for s in stamps
        ]
    cut = [i for i, c in enumerate(cameras) if c.get("truncated_after")]
    if cut:
        meta["truncated"] = (
            f"the file ends in an incomplete frame after frame {cut[0]}; the complete frames "
            "were read"
        )
        meta["camera"].pop("truncated_after", None)
    varying = {
        k: [c.get(k) for c in cameras]
        for k in CALIBRATION_KEYS
        if any(c.get(k) != first.get(k) for c in cameras)
    }
    if varying:
        meta["per_frame"] = varying
    return meta


def read_thermal(
    files: Sequence[str | os.PathLike[str]], lazy: bool | None = None
) -> tuple[Any, dict[str, Any], list[str]]:
    """FLIR files (one sequence, or several R-JPEGs/FFFs/SEQs as one stack) → (N, H, W) float32
    °C, the ``thermal`` metadata and one name per frame; a one-sentence ``ValueError`` if any
    file is not a FLIR file. ``lazy`` (None: when the stack is larger than
    ``NAPARI_IRSAM_LAZY_BYTES``) gives a dask array that decodes a frame when it is read."""
    paths = [Path(f) for f in files]
    plain = [p.name for p in paths if thermal_kind(p) != "flir"]
    if plain:
        raise ThermalFormatError(
            f"{plain[0]} is not a FLIR radiometric file, but other selected files are; open "
            "radiometric and ordinary images separately."
        )
    cameras, names, where, formats = [], [], [], set()
    for p in paths:
        cams = _frame_list(p)
        formats.add("R-JPEG" if p.suffix.lower() in JPEG_EXTS else p.suffix[1:].upper())
        names += [p.stem] if len(cams) == 1 else [f"{p.stem}_{i:04d}" for i in range(len(cams))]
        where += [(p, i) for i in range(len(cams))]
        cameras += cams
    meta = thermal_metadata(cameras, "+".join(sorted(formats)))
    first = read_celsius(*where[0])
    nbytes = len(where) * first.nbytes
    if lazy is None:
        from .lazy import lazy_bytes

        lazy = nbytes > lazy_bytes()
    if lazy:
        import dask
        import dask.array as da

        parts = [first[None]] + [
            da.from_delayed(
                dask.delayed(read_celsius, pure=True)(str(p), i), first.shape, dtype=np.float32
            )[None]
            for p, i in where[1:]
        ]
        return da.concatenate(parts, axis=0), meta, names
    frames = [first] + [f for p in dict.fromkeys(p for p, _ in where) for f in _read_all(p)][1:]
    for p, f in zip((p for p, _ in where), frames):
        if f.shape != first.shape:
            raise ThermalFormatError(
                f"Frames differ in size: {paths[0].name} is {first.shape} but {p.name} is "
                f"{f.shape}; open them separately."
            )
    return np.stack(frames), meta, names


def thermal_stack(files: Sequence[str | os.PathLike[str]], lazy: bool | None = None) -> Any:
    """A :class:`~napari_irsam.data.io.FrameStack` of °C frames when ``files`` are FLIR
    radiometric files (``metadata["thermal"]`` filled in), else None (not a thermal input)."""
    if not any(thermal_kind(f) == "flir" for f in files):
        return None
    from .io import FrameStack

    data, meta, names = read_thermal(files, lazy)
    return FrameStack(data, [str(f) for f in files], names, "float32", False, {"thermal": meta})


def dji_warnings(files: Sequence[str | os.PathLike[str]]) -> list[str]:
    """One message per DJI R-JPEG among ``files`` (their temperatures are not decoded)."""
    return [DJI_MESSAGE.format(name=Path(f).name) for f in files if thermal_kind(f) == "dji"]


def stack_warnings(stack: Any) -> list[str]:
    """What the user should hear about a read :class:`~napari_irsam.data.io.FrameStack`: DJI
    R-JPEGs among its files, a FLIR recording cut short (its complete frames were read)."""
    out = dji_warnings(stack.paths)
    note = (stack.metadata.get("thermal") or {}).get("truncated")
    if note:
        out.append(f"{Path(stack.paths[-1]).name}: {note}.")
    return out
