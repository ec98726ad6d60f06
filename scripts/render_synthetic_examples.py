"""Render docs/images/synthetic-scenes.png: one generated scene per background, GT outlined in red."""

from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import io

from napari_irsam.data.synthetic import BACKGROUNDS, make_scene


def main(out: str = "docs/images/synthetic-scenes.png") -> None:
    tiles = []
    for i, bg in enumerate(BACKGROUNDS):
        scene = make_scene((256, 256), seed=10 + i, background=bg, n_targets=4, dtype="uint8")
        rgb = np.repeat(scene.image[..., None], 3, axis=2)
        edge = scene.mask.astype(bool) & ~ndimage.binary_erosion(scene.mask.astype(bool))
        ring = ndimage.binary_dilation(scene.mask.astype(bool), iterations=4)
        ring &= ~ndimage.binary_dilation(scene.mask.astype(bool), iterations=3)
        rgb[ring] = (255, 40, 40)
        del edge
        tiles.append(np.pad(rgb, ((2, 2), (2, 2), (0, 0)), constant_values=255))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    io.imsave(out, np.concatenate(tiles, axis=1), check_contrast=False)


if __name__ == "__main__":
    main()
