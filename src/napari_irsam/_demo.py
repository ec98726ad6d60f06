"""Open napari with the plugin's widget docked and the synthetic sample data loaded."""

from __future__ import annotations


def run_demo(with_sample: bool = True, run: bool = True):
    """Create a viewer (returned), load the sample, dock "Run IRSAM"; ``run`` starts the loop."""
    import napari

    viewer = napari.Viewer(title="napari-irsam")
    if with_sample:
        viewer.open_sample("napari-irsam", "synthetic_ir")
        # napari makes the last layer added active: the hidden ground truth; start on the image
        viewer.layers.selection.active = viewer.layers["synthetic IR"]
    viewer.window.add_plugin_dock_widget("napari-irsam", "Run IRSAM")
    if run:
        napari.run()
    return viewer
