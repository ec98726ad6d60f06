from napari_irsam._demo import run_demo
from napari_irsam._widgets.run_irsam import RunIRSAMWidget


def test_demo_opens_sample_and_widget(qtbot):
    viewer = run_demo(with_sample=True, run=False)
    try:
        assert [layer.name for layer in viewer.layers] == ["synthetic IR", "ground truth"]
        assert any(isinstance(w, RunIRSAMWidget) for w in viewer.window.dock_widgets.values())
        # napari makes the last layer added active (the hidden ground truth); the demo starts on
        # the image. (A second plain napari.Viewer() in a process that already used the
        # make_napari_viewer fixture re-registers the plugin's commands, so this lives here.)
        assert viewer.layers.selection.active.name == "synthetic IR"
    finally:
        viewer.close()
