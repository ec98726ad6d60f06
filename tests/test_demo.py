from napari_irsam._demo import run_demo
from napari_irsam._widgets.run_irsam import RunIRSAMWidget


def test_demo_opens_sample_and_widget(qtbot):
    viewer = run_demo(with_sample=True, run=False)
    try:
        assert [layer.name for layer in viewer.layers] == ["synthetic IR", "ground truth"]
        assert any(isinstance(w, RunIRSAMWidget) for w in viewer.window.dock_widgets.values())
    finally:
        viewer.close()
