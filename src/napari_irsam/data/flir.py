"""FLIR radiometric files → raw counts and camera parameters (numpy only; no napari, no Qt).

One parser for the one record format FLIR cameras write, the *FFF* file, wherever it sits:

* ``.fff``: one FFF file (one frame);
* ``.seq`` / ``.csq``: FFF files back to back, one per frame (CSQ frames hold JPEG-LS
  compressed counts, decoded with the optional ``imagecodecs``);
* radiometric JPEG (R-JPEG): a JPEG whose APP1 segments starting with ``FLIR\\0`` carry one FFF
  file split into chunks (the visible JPEG is only a palette rendering).

The layout follows ExifTool's public FLIR tag documentation (``TagNames/FLIR.html``, FLIR.pm):

* FFF header (0x40 bytes): magic ``FFF\\0``/``AFF\\0``, creator (16 bytes), version (uint32, 100
  …), record-directory offset, record count. Its byte order is the one in which the version
  reads 100–199 (R-JPEGs: big-endian, sequences: often little-endian).
* Record directory: 32-byte entries (type, subtype, version, index, offset from the FFF start,
  length, …); type 0 is a free entry, 0x01 RawData, 0x20 CameraInfo.
* A record's own byte order is given by its first uint16 (2 when little-endian).
* RawData: width at byte 2, height at byte 4, the image from byte 0x20 — uint16 counts, or a
  PNG (written with swapped bytes by FLIR cameras), or JPEG-LS (CSQ).
* CameraInfo: the float/int fields of :data:`_CAMERA_FIELDS` (temperatures in kelvin, stored
  here in °C) and the capture time at 0x384 (UTC seconds, milliseconds, time-zone minutes).

Why not flirpy or flyr: see docs/thermal.md (flirpy pins numpy < 2.4 and pulls camera/USB
drivers and 25 MB of ExifTool binaries; flyr reads only R-JPEG, and is EUPL). The tests check
files written to this layout against flyr (R-JPEG) and the formula against both.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

FFF_MAGICS = (b"FFF\x00", b"AFF\x00")
HEADER_SIZE = 0x40
ENTRY_SIZE = 32
RAW_DATA, CAMERA_INFO = 0x01, 0x20
PNG_SIG, JPEG_SIG = b"\x89PNG", b"\xff\xd8"

#: CameraInfo fields: (key, byte offset, struct code, kelvin → °C)
_CAMERA_FIELDS: tuple[tuple[str, int, str, bool], ...] = (
    ("emissivity", 0x20, "f", False),
    ("object_distance_m", 0x24, "f", False),
    ("reflected_temperature_c", 0x28, "f", True),
    ("atmospheric_temperature_c", 0x2C, "f", True),
    ("ir_window_temperature_c", 0x30, "f", True),
    ("ir_window_transmission", 0x34, "f", False),
    ("relative_humidity", 0x3C, "f", False),
    ("planck_r1", 0x58, "f", False),
    ("planck_b", 0x5C, "f", False),
    ("planck_f", 0x60, "f", False),
    ("atm_trans_alpha1", 0x70, "f", False),
    ("atm_trans_alpha2", 0x74, "f", False),
    ("atm_trans_beta1", 0x78, "f", False),
    ("atm_trans_beta2", 0x7C, "f", False),
    ("atm_trans_x", 0x80, "f", False),
    ("camera_range_max_c", 0x90, "f", True),
    ("camera_range_min_c", 0x94, "f", True),
    ("planck_o", 0x308, "i", False),
    ("planck_r2", 0x30C, "f", False),
    ("raw_value_range_min", 0x310, "H", False),
    ("raw_value_range_max", 0x312, "H", False),
    ("frame_rate", 0x464, "H", False),
)
#: CameraInfo strings: (key, byte offset, length)
_CAMERA_STRINGS = (
    ("camera_model", 0xD4, 32),
    ("camera_part_number", 0xF4, 16),
    ("camera_serial", 0x104, 16),
    ("camera_software", 0x114, 16),
    ("lens_model", 0x170, 32),
)
_DATETIME_OFFSET = 0x384


class ThermalFormatError(ValueError):
    """A radiometric file that cannot be read; the message is one sentence for the user."""


@dataclass
class FlirFrame:
    """One FFF frame: raw counts (H, W) uint16 and its camera parameters (JSON-able dict)."""

    raw: np.ndarray
    camera: dict[str, Any] = field(default_factory=dict)


def _u32(buf: Any, at: int, order: str) -> int:
    return struct.unpack_from(order + "I", buf, at)[0]


def _header_order(buf: Any, offset: int) -> str:
    """``"<"`` or ``">"``: the byte order in which the FFF version reads 100–199."""
    return "<" if 100 <= _u32(buf, offset + 0x14, "<") < 200 else ">"


def _record_order(rec: Any) -> str:
    return "<" if struct.unpack_from("<H", rec, 0)[0] == 2 else ">"


def _entries(buf: Any, offset: int, name: str) -> list[tuple[int, int, int]]:
    """(type, absolute offset, length) of every used record of the FFF file at ``offset``."""
    if len(buf) < offset + HEADER_SIZE or bytes(buf[offset : offset + 4]) not in FFF_MAGICS:
        raise ThermalFormatError(f"{name} holds no FLIR FFF record (damaged or not a FLIR file).")
    order = _header_order(buf, offset)
    dir_offset, count = struct.unpack_from(order + "II", buf, offset + 0x18)
    if count > 10_000 or offset + dir_offset + count * ENTRY_SIZE > len(buf):
        raise ThermalFormatError(f"{name}: the FLIR record directory is damaged or truncated.")
    out = []
    for i in range(count):
        at = offset + dir_offset + i * ENTRY_SIZE
        rtype, _sub, _ver, _idx, roff, rlen = struct.unpack_from(order + "HHIIII", buf, at)
        if rtype == 0:
            continue
        if offset + roff + rlen > len(buf):
            raise ThermalFormatError(f"{name}: a FLIR record runs past the end of the file.")
        out.append((rtype, offset + roff, rlen))
    return out


def fff_extent(buf: Any, offset: int = 0, name: str = "file") -> int:
    """Bytes taken by the FFF file at ``offset``: up to the end of its directory or last record."""
    order = _header_order(buf, offset)
    dir_offset, count = struct.unpack_from(order + "II", buf, offset + 0x18)
    end = offset + dir_offset + count * ENTRY_SIZE
    for _t, at, length in _entries(buf, offset, name):
        end = max(end, at + length)
    return end - offset


def _decode_raw(rec: bytes, name: str) -> np.ndarray:
    """RawData record → (H, W) uint16 counts."""
    order = _record_order(rec)
    width, height = struct.unpack_from(order + "HH", rec, 2)
    data = bytes(rec[0x20:])
    if data[:4] == PNG_SIG:
        from PIL import Image

        img = np.asarray(Image.open(io.BytesIO(data)))
        img = img.astype(np.uint16).byteswap()  # FLIR writes its PNG counts byte-swapped
    elif data[:2] == JPEG_SIG:
        try:
            import imagecodecs
        except ImportError as exc:
            raise ThermalFormatError(
                f"{name} stores JPEG-LS compressed frames (FLIR CSQ); reading them needs the "
                "optional package imagecodecs: pip install 'napari-irsam[thermal]'."
            ) from exc
        img = np.asarray(imagecodecs.jpegls_decode(data)).astype(np.uint16)
    else:
        if len(data) < 2 * width * height:
            raise ThermalFormatError(f"{name}: the FLIR raw image is truncated.")
        img = np.frombuffer(data, order + "u2", count=width * height).astype(np.uint16)
        img = img.reshape(height, width)
    if img.shape != (height, width):
        raise ThermalFormatError(
            f"{name}: the FLIR raw image is {img.shape} but its record says {(height, width)}."
        )
    return img


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def _decode_camera(rec: bytes) -> dict[str, Any]:
    """CameraInfo record → parameters (temperatures in °C, humidity 0–1, distance in m)."""
    order = _record_order(rec)
    cam: dict[str, Any] = {}
    for key, at, code, kelvin in _CAMERA_FIELDS:
        if at + struct.calcsize(code) <= len(rec):
            value = struct.unpack_from(order + code, rec, at)[0]
            cam[key] = round(float(value) - 273.15, 4) if kelvin else value
    for key, value in list(cam.items()):
        if isinstance(value, float):  # float32 holds ~7 digits: no float64 noise in metadata
            cam[key] = float(f"{value:.7g}")
    if cam.get("relative_humidity", 0) > 2:  # some cameras store percent
        cam["relative_humidity"] /= 100.0
    for key, at, n in _CAMERA_STRINGS:
        if at + n <= len(rec):
            cam[key] = _text(bytes(rec[at : at + n]))
    if _DATETIME_OFFSET + 10 <= len(rec):
        secs, msecs = struct.unpack_from(order + "II", rec, _DATETIME_OFFSET)
        tz_min = struct.unpack_from(order + "h", rec, _DATETIME_OFFSET + 8)[0]
        if secs:
            when = datetime.fromtimestamp(secs, timezone(timedelta(minutes=-tz_min)))
            when += timedelta(milliseconds=msecs & 0xFFFF)
            cam["datetime"] = when.isoformat(timespec="milliseconds")
    return cam


def parse_fff(buf: Any, offset: int = 0, name: str = "file", image: bool = True) -> FlirFrame:
    """The FFF file at ``offset`` of ``buf`` (bytes or mmap) → :class:`FlirFrame`; with
    ``image=False`` only the camera parameters are decoded (``raw`` is an empty array)."""
    raw = None if image else np.zeros((0, 0), np.uint16)
    cam = None
    for rtype, at, length in _entries(buf, offset, name):  # slicing copies only this record
        if rtype == RAW_DATA and raw is None:
            raw = _decode_raw(buf[at : at + length], name)
        elif rtype == CAMERA_INFO and cam is None:
            cam = _decode_camera(buf[at : at + length])
    if raw is None or cam is None:
        what = "raw thermal image" if raw is None else "camera calibration (CameraInfo)"
        raise ThermalFormatError(f"{name} has no {what}, so no temperatures can be computed.")
    if not cam.get("planck_r1") or not cam.get("planck_b"):
        raise ThermalFormatError(f"{name} has no Planck calibration constants.")
    return FlirFrame(raw, cam)


# ------------------------------------------------------------------------------------ JPEG
def jpeg_segments(path: str | os.PathLike[str]) -> list[tuple[int, bytes]]:
    """(marker, payload) of a JPEG's segments before the image data (SOS); [] if not a JPEG."""
    out: list[tuple[int, bytes]] = []
    with open(path, "rb") as f:
        if f.read(2) != JPEG_SIG:
            return out
        while True:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0xFF:
                return out
            marker, length = head[1], struct.unpack(">H", head[2:])[0]
            if marker == 0xDA or length < 2:  # start of scan: no metadata after it
                return out
            payload = f.read(length - 2)
            if len(payload) < length - 2:
                return out
            out.append((marker, payload))


def jpeg_kind(path: str | os.PathLike[str]) -> str | None:
    """``"flir"`` (FLIR R-JPEG), ``"dji"`` (DJI R-JPEG) or None (a plain JPEG)."""
    try:
        segments = jpeg_segments(path)
    except OSError:
        return None
    if any(m == 0xE1 and p.startswith(b"FLIR\x00") for m, p in segments):
        return "flir"
    exif = b"".join(p[:512] for m, p in segments if m == 0xE1 and p.startswith(b"Exif"))
    if b"DJI" in exif and any(m == 0xE3 for m, _ in segments):  # APP3 carries DJI's raw data
        return "dji"
    return None


def flir_jpeg_fff(path: str | os.PathLike[str]) -> bytes:
    """The FFF file carried by a FLIR R-JPEG's APP1 ``FLIR`` chunks, joined in chunk order."""
    name = Path(path).name
    chunks: dict[int, bytes] = {}
    total = None
    for marker, payload in jpeg_segments(path):
        if marker == 0xE1 and payload.startswith(b"FLIR\x00") and len(payload) >= 8:
            number, last = payload[6], payload[7]
            if (total is not None and last != total) or number in chunks:
                raise ThermalFormatError(f"{name}: the FLIR segments are inconsistent.")
            total = last
            chunks[number] = payload[8:]
    if total is None or sorted(chunks) != list(range(total + 1)):
        raise ThermalFormatError(f"{name}: FLIR segments are missing (file truncated?).")
    return b"".join(chunks[i] for i in range(total + 1))


# -------------------------------------------------------------------------------- sequences
class FlirSequence:
    """A SEQ/CSQ/FFF file as frames, read on demand from a memory map (the file is never read
    whole): ``len(seq)``, ``seq.frame(i)`` → :class:`FlirFrame`. Close it (or use ``with``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self._file = open(self.path, "rb")
        try:
            size = os.fstat(self._file.fileno()).st_size
            if size < HEADER_SIZE:
                raise ThermalFormatError(f"{self.name} is too small to be a FLIR file.")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self.offsets = self._index()
        except BaseException:
            self._file.close()
            raise

    def _index(self) -> list[int]:
        """Start of every FFF frame: each frame's extent, or the next magic after padding.

        A recording cut short (camera stopped, copy interrupted) keeps its complete frames:
        a damaged or truncated record after at least one good frame ends the index there, and
        :attr:`truncated` says so. A file without one complete frame is refused."""
        buf, offsets, at = self._map, [], 0
        self.sizes: list[int] = []
        self.truncated = False
        while at + HEADER_SIZE <= len(buf):
            if buf[at : at + 4] not in FFF_MAGICS:
                nxt = buf.find(b"FFF\x00", at)
                if nxt < 0:
                    break
                at = nxt
                continue
            try:
                size = max(fff_extent(buf, at, self.name), HEADER_SIZE)
            except ThermalFormatError:
                if not offsets:
                    raise
                self.truncated = True
                break
            offsets.append(at)
            self.sizes.append(size)
            at += size
        if not offsets:
            raise ThermalFormatError(f"{self.name} holds no FLIR FFF frame.")
        return offsets

    def __len__(self) -> int:
        return len(self.offsets)

    def frame(self, i: int, image: bool = True) -> FlirFrame:
        """Frame ``i``; ``image=False`` decodes only its camera parameters."""
        return parse_fff(self._map, self.offsets[i], f"{self.name} frame {i}", image)

    def close(self) -> None:
        self._map.close()
        self._file.close()

    def __enter__(self) -> FlirSequence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
