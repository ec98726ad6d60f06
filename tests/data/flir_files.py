"""Small FLIR files written by the tests (no downloads): FFF records, SEQ/CSQ sequences and
radiometric JPEGs with known raw counts and camera constants, laid out as ExifTool documents
them (see napari_irsam.data.flir) — and as flyr/flirpy read them."""

from __future__ import annotations

import io
import struct
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

#: camera constants of a typical FLIR uncooled camera (values of the order real files carry)
CAMERA = {
    "emissivity": 0.95,
    "object_distance_m": 12.5,
    "reflected_temperature_c": 21.5,
    "atmospheric_temperature_c": 18.0,
    "ir_window_temperature_c": 20.0,
    "ir_window_transmission": 1.0,
    "relative_humidity": 0.55,
    "planck_r1": 17096.453,
    "planck_r2": 0.046642166,
    "planck_b": 1428.0,
    "planck_f": 1.0,
    "planck_o": -7340,
    "atm_trans_alpha1": 0.006569,
    "atm_trans_alpha2": 0.01262,
    "atm_trans_beta1": -0.002276,
    "atm_trans_beta2": -0.00667,
    "atm_trans_x": 1.9,
}
T0 = datetime(2024, 5, 17, 9, 30, 0, tzinfo=timezone.utc)


def raw_frame(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """Counts spanning a realistic range, with a hot 2×2 target."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(13000, 15000, (h, w)).astype(np.uint16)
    raw[5:7, 9:11] = 18000 + 1000 * seed
    return raw


def camera_info(cam: dict, when: datetime, tz_minutes: int = -120, order: str = "<") -> bytes:
    """A CameraInfo record (0x480 bytes) in ``order``; temperatures stored in kelvin."""
    rec = bytearray(0x480)
    struct.pack_into(order + "H", rec, 0, 2)

    def put(fmt: str, at: int, value: float) -> None:
        struct.pack_into(order + fmt, rec, at, value)

    k = 273.15
    put("f", 0x20, cam["emissivity"])
    put("f", 0x24, cam["object_distance_m"])
    put("f", 0x28, cam["reflected_temperature_c"] + k)
    put("f", 0x2C, cam["atmospheric_temperature_c"] + k)
    put("f", 0x30, cam["ir_window_temperature_c"] + k)
    put("f", 0x34, cam["ir_window_transmission"])
    put("f", 0x3C, cam["relative_humidity"])
    put("f", 0x58, cam["planck_r1"])
    put("f", 0x5C, cam["planck_b"])
    put("f", 0x60, cam["planck_f"])
    put("f", 0x70, cam["atm_trans_alpha1"])
    put("f", 0x74, cam["atm_trans_alpha2"])
    put("f", 0x78, cam["atm_trans_beta1"])
    put("f", 0x7C, cam["atm_trans_beta2"])
    put("f", 0x80, cam["atm_trans_x"])
    put("f", 0x90, 150 + k)
    put("f", 0x94, -20 + k)
    rec[0xD4 : 0xD4 + 9] = b"FLIR T540"
    rec[0x104 : 0x104 + 8] = b"12345678"
    rec[0x170 : 0x170 + 7] = b"FOL 24\x00"
    put("i", 0x308, cam["planck_o"])
    put("f", 0x30C, cam["planck_r2"])
    put("H", 0x310, 10000)
    put("H", 0x312, 30000)
    put("H", 0x464, 30)
    secs = int(when.timestamp())
    put("I", 0x384, secs)
    put("I", 0x388, int(round((when.timestamp() - secs) * 1000)))
    put("h", 0x38C, tz_minutes)
    return bytes(rec)


def raw_record(raw: np.ndarray, encoding: str = "le", order: str = "<") -> bytes:
    """A RawData record: 0x20-byte header (width, height), then the counts."""
    h, w = raw.shape
    head = bytearray(0x20)
    struct.pack_into(order + "HHH", head, 0, 2, w, h)
    if encoding == "png":  # FLIR writes PNG counts byte-swapped
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(raw.byteswap()).save(buf, format="PNG")
        data = buf.getvalue()
    elif encoding == "jpegls":
        import imagecodecs

        data = imagecodecs.jpegls_encode(raw)
    else:
        data = raw.astype(order + "u2").tobytes()
    return bytes(head) + data


def fff(
    raw: np.ndarray,
    cam: dict = CAMERA,
    when: datetime = T0,
    encoding: str = "le",
    header_order: str = "<",
) -> bytes:
    """One FFF file: header, record directory (RawData, CameraInfo and two free entries, as
    cameras leave them), then the records (little-endian, as cameras write them)."""
    records = [(0x01, 2, raw_record(raw, encoding)), (0x20, 1, camera_info(cam, when))]
    n_entries = len(records) + 2
    offset = 0x40 + 32 * n_entries
    head = bytearray(0x40)
    head[:4] = b"FFF\x00"
    head[4:11] = b"CAMCTRL"
    struct.pack_into(header_order + "IIII", head, 0x14, 100, 0x40, n_entries, 2)
    directory, body = bytearray(), bytearray()
    for i, (rtype, sub, data) in enumerate(records):
        directory += struct.pack(
            header_order + "HHIIIIIII",
            rtype,
            sub,
            100,
            i + 1,
            offset + len(body),
            len(data),
            0,
            0,
            0,
        )
        body += data
    directory += bytes(32 * (n_entries - len(records)))
    return bytes(head) + bytes(directory) + bytes(body)


def write_seq(path: Path, raws: list[np.ndarray], encoding: str = "le", cams=None) -> Path:
    """Frames back to back, one FFF each, 1/30 s apart."""
    from datetime import timedelta

    cams = cams or [CAMERA] * len(raws)
    blob = b"".join(
        fff(r, c, T0 + timedelta(milliseconds=round(1000 * i / 30)), encoding)
        for i, (r, c) in enumerate(zip(raws, cams))
    )
    path.write_bytes(blob)
    return path


def write_rjpeg(path: Path, raw: np.ndarray, cam: dict = CAMERA, chunk: int = 4000) -> Path:
    """A radiometric JPEG: a palette JPEG whose APP1 ``FLIR`` segments carry a big-endian FFF
    file (PNG counts), split into chunks of ``chunk`` bytes."""
    from PIL import Image

    grey = ((raw - raw.min()) / max(1, np.ptp(raw)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="JPEG")
    jpeg = buf.getvalue()
    blob = fff(raw, cam, T0, encoding="png", header_order=">")
    parts = [blob[i : i + chunk] for i in range(0, len(blob), chunk)]
    segments = b""
    for i, part in enumerate(parts):
        payload = b"FLIR\x00\x01" + bytes([i, len(parts) - 1]) + part
        segments += b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    path.write_bytes(jpeg[:2] + segments + jpeg[2:])
    return path


def write_dji_like(path: Path) -> Path:
    """A JPEG with what marks a DJI R-JPEG: EXIF Make "DJI" and an APP3 segment."""
    from PIL import Image

    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "DJI"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="JPEG", exif=exif.tobytes())
    jpeg = buf.getvalue()
    app3 = b"\xff\xe3" + struct.pack(">H", 2 + 16) + bytes(16)
    path.write_bytes(jpeg[:2] + app3 + jpeg[2:])
    return path
