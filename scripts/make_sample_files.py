"""Write the files in sample_data/: a 16-bit TIFF sequence and two 8-bit PNG frames with masks."""

from pathlib import Path

import tifffile

from napari_irsam.data.io import write_png
from napari_irsam.data.synthetic import make_scene, make_sequence


def main(out: Path = Path("sample_data")) -> None:
    frames, labels = make_sequence(
        n_frames=8, shape=(256, 256), seed=7, n_targets=3, background="cloud"
    )
    out.mkdir(exist_ok=True)
    tifffile.imwrite(
        out / "sequence_uint16.tif", frames, photometric="minisblack", compression="zlib"
    )
    tifffile.imwrite(
        out / "sequence_labels.tif",
        labels.astype("uint8"),
        photometric="minisblack",
        compression="zlib",
    )
    for i, bg in enumerate(("sea", "ground")):
        scene = make_scene((256, 256), seed=100 + i, background=bg, n_targets=3, dtype="uint8")
        write_png(out / "frames" / f"frame_{i + 1:02d}.png", scene.image)
        write_png(out / "masks" / f"frame_{i + 1:02d}.png", scene.mask)


if __name__ == "__main__":
    main()
