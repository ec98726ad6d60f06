"""Open napari with the synthetic sample and the "IRSAM" dock at its Run step."""

from __future__ import annotations

#: what the demo says first (in the Run step's status line and as a notification)
DEMO_HINT = (
    "Demo: a synthetic infrared recording with moving small targets is loaded (the hidden "
    "'ground truth' layer is the answer). Press Run to segment the frame shown (frames: 'all "
    "frames' for the whole recording), then follow 'Next' at the bottom of the dock."
)


def run_demo(with_sample: bool = True, run: bool = True):
    """Create a viewer (returned), load the sample, dock "IRSAM" on its Run tab with a pointer to
    the next step; ``run`` starts napari's event loop."""
    import napari
    from napari.utils.notifications import show_info

    viewer = napari.Viewer(title="napari-irsam")
    if with_sample:
        viewer.open_sample("napari-irsam", "synthetic_ir")
        # napari makes the last layer added active: the hidden ground truth; start on the image
        viewer.layers.selection.active = viewer.layers["synthetic IR"]
    _, dock = viewer.window.add_plugin_dock_widget("napari-irsam", "IRSAM")
    dock.show_step("run")
    if with_sample:
        dock.run.status.setText(DEMO_HINT)
        show_info(DEMO_HINT)
    if run:
        napari.run()
    return viewer
