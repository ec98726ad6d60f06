from napari_irsam._demo import DEMO_HINT, run_demo
from napari_irsam._widgets.dock import IRSAMDock


def test_demo_opens_sample_and_the_dock_at_run(qtbot):
    viewer = run_demo(with_sample=True, run=False)
    try:
        assert [layer.name for layer in viewer.layers] == ["synthetic IR", "ground truth"]
        docks = [w for w in viewer.window.dock_widgets.values() if isinstance(w, IRSAMDock)]
        assert len(docks) == 1
        dock = docks[0]
        assert dock.current_step() == "run" and dock.run.image_combo.currentText() == "synthetic IR"
        # a pointer to what to do now, and where the next step is
        assert dock.run.status.text() == DEMO_HINT and "Run" in DEMO_HINT and "Next" in DEMO_HINT
        assert dock.next_labels["run"].text().startswith("Next:")
        # napari makes the last layer added active (the hidden ground truth); the demo starts on
        # the image. (A second plain napari.Viewer() in a process that already used the
        # make_napari_viewer fixture re-registers the plugin's commands, so this lives here.)
        assert viewer.layers.selection.active.name == "synthetic IR"
    finally:
        viewer.close()
