"""Survey coordinates, axes and colour bars, the viewer kept per project, page URLs, the
validation settings and the training estimates (issue 23), without a browser."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from streamlit.testing.v1 import AppTest

from app import serve, viewer
from app.labelling import Stroke, strokes_on_section
from app.views import (
    ColourBar,
    axis_ticks,
    data_colourbar,
    default_settings,
    display_axes,
    frame_section,
    make_view,
)
from assets.demo_project import ensure_demo_project
from io_adapters.project import Project

APP = Path(__file__).resolve().parents[2] / "app"
LABEL_PAGE = str(APP / "screens" / "label.py")
TRAIN_PAGE = str(APP / "screens" / "train.py")
VIEW3D_PAGE = str(APP / "screens" / "view3d.py")
SHAPE = (20, 18, 40)
TIMEOUT = 60


def seismic() -> xr.DataArray:
    values = np.random.default_rng(0).normal(size=(12, 10, 30)).astype(np.float32)
    return xr.DataArray(values, dims=("iline", "xline", "samples"), coords={
        "iline": np.arange(1000, 1012), "xline": np.arange(2000, 2020, 2),
        "samples": np.arange(30) * 4.0 + 800.0}, attrs={"vertical_unit": "ms"}, name="amplitude")


# ----------------------------------------------------------------------------- axes
def test_axis_ticks_sit_on_the_cells_of_their_coordinates() -> None:
    coords = np.arange(1000, 1032)  # 32 inlines on 320 pixels: 10 pixels a cell
    ticks = axis_ticks(coords, 320, 4)
    assert ticks, "no ticks"
    for x, text in ticks:
        value = int(text)
        assert 1000 <= value <= 1031 and value % 5 == 0
        assert x == pytest.approx((value - 1000 + 0.5) * 10)
    # a decreasing axis (map y, north up) puts each value on its own cell as well
    ys = np.linspace(500.0, 190.0, 32)
    for y, text in axis_ticks(ys, 320, 4):
        k = float(np.interp(float(text), ys[::-1], np.arange(32)[::-1]))
        assert y == pytest.approx((k + 0.5) * 10)


def test_frame_section_keeps_the_section_and_labels_its_axes() -> None:
    grid = seismic()
    view = make_view(grid, "inline", 3)
    assert display_axes(grid, view) == ("samples", "xline")
    image = np.full((150, 100, 3), 77, dtype=np.uint8)
    bar = data_colourbar(grid, default_settings(grid), [(-2.0, 2.0)])
    assert bar == ColourBar("amplitude", "seismic", (-2.0, 2.0))
    framed = frame_section(image, grid, view, bar)
    left, top = framed.offset
    assert left > 30 and top > 20  # room for the tick labels
    h, w = framed.image.shape[:2]
    assert h > 150 + top - 1 and w > 100 + left + 40  # and for the colour bar
    section = framed.image[top:top + 150, left:left + 100]
    assert np.array_equal(section, image), "the section's pixels moved or changed"
    # the colour bar: the high end of the seismic map (dark red) on top, dark blue below
    column = framed.image[top:top + 150, left + 100 + 12 + 7]
    assert column[2, 0] > 100 and column[2, 2] < 60
    assert column[-3, 2] > 60 and column[-3, 0] < 30
    # tick marks above the section and left of it are drawn (dark pixels in the margins)
    assert (framed.image[top - 5:top - 1, left:left + 100] < 100).any()
    assert (framed.image[top:top + 150, left - 5:left - 1] < 100).any()


def test_frame_makes_room_for_long_map_coordinates() -> None:
    values = np.zeros((40, 48), dtype=np.float32)
    grid = xr.DataArray(values, dims=("y", "x"), coords={
        "y": 6_000_000.0 - 30.0 * np.arange(40), "x": 500_000.0 + 30.0 * np.arange(48)})
    view = make_view(grid, "map")
    framed = frame_section(np.zeros((400, 480, 3), np.uint8), grid, view)
    left, top = framed.offset
    assert left > 64  # seven-digit northings need more than the default margin
    assert np.array_equal(framed.image[top:top + 400, left:left + 480], np.zeros((400, 480, 3)))


def test_strokes_on_section_move_by_the_frame_and_drop_the_margins() -> None:
    strokes = [Stroke("path", np.array([[70.0, 50.0], [10.0, 50.0], [90.0, 60.0]])),
               Stroke("point", np.array([[5.0, 5.0]]))]
    moved = strokes_on_section(strokes, (60, 40), (100, 80))
    assert len(moved) == 1
    np.testing.assert_allclose(moved[0].points, [[10.0, 10.0], [30.0, 20.0]])


# ----------------------------------------------------------------------------- serving
def test_pages_get_the_server_root_and_assets_pass_unchanged() -> None:
    html = b"<html><head><title>x</title></head></html>"

    async def page(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html"),
                                (b"content-length", str(len(html)).encode())]})
        await send({"type": "http.response.body", "body": html})

    def call(path: str) -> tuple[dict, bytes]:
        sent: list[dict] = []

        async def send(message) -> None:
            sent.append(message)

        async def receive() -> dict:
            return {"type": "http.request"}

        scope = {"type": "http", "method": "GET", "path": path,
                 "headers": [(b"accept-encoding", b"gzip")]}
        asyncio.run(serve.BaseUrlMiddleware(page)(scope, receive, send))
        return sent[0], b"".join(m.get("body", b"") for m in sent[1:])

    for path in ("/", "/label", "/results"):
        start, body = call(path)
        assert body.startswith(b"<html><head><script>window.__streamlit=")
        assert b"BACKEND_BASE_URL:window.location.origin+\"/\"" in body
        assert dict(start["headers"])[b"content-length"] == str(len(body)).encode()
    for path in ("/_stcore/health", "/static/js/index.js", "/label/_stcore/host-config"):
        assert not serve.is_page_request({"type": "http", "method": "GET", "path": path})
    assert serve.base_url_script("tools/fhn").count(b'"/tools/fhn/"') == 1


def test_every_page_has_its_own_url_and_the_root_is_a_hidden_switch() -> None:
    source = (APP / "main.py").read_text()
    paths = ["data", "label", "wells", "train", "results", "view3d", "export"]
    for path in paths:
        assert f'url_path="{path}"' in source
    # the default page (served at "/") is the hidden one that switches to /label, so the
    # View & label page keeps its own URL
    assert 'default=True, visibility="hidden"' in source
    assert source.count("default=True") == 1


# ----------------------------------------------------------------------------- pages
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_project(tmp_path_factory.mktemp("survey") / "demo", shape=SHAPE)


def run(script: str) -> AppTest:
    at = AppTest.from_file(script, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_viewer_goes_to_an_inline_by_its_number_and_keeps_it_across_reloads(demo: Path) -> None:
    grid = Project.open(demo).load_data()
    inlines = [int(v) for v in grid.coords["iline"].values]
    at = run(LABEL_PAGE)
    slider = at.select_slider(key="view-inline__slider")
    assert slider.options[0] == str(inlines[0]) and slider.options[-1] == str(inlines[-1])
    number = at.number_input(key="view-inline__number")
    assert number.value in inlines  # the box holds an inline number, not an index
    number.set_value(inlines[7]).run()
    assert not at.exception
    assert at.session_state["view-inline__value"] == 7
    assert any(f"Inline **{inlines[7]}**" in c.value and "index 7" in c.value
               for c in at.caption)
    # a time slice by its time in ms: the nearest sample is shown
    at.segmented_control(key="view-kind").set_value("timeslice").run()
    times = grid.coords["samples"].values
    at.number_input(key="view-timeslice__number").set_value(float(times[12]) + 0.4).run()
    assert at.session_state["view-timeslice__value"] == 12
    saved = json.loads((demo / viewer.VIEW_FILE).read_text())["view"]
    assert saved["kind"] == "timeslice"
    assert saved["positions"]["inline"] == 7 and saved["positions"]["timeslice"] == 12
    # a reload is a new session: the same section comes back
    again = run(LABEL_PAGE)
    assert again.segmented_control(key="view-kind").value == "timeslice"
    assert again.session_state["view-timeslice__value"] == 12
    assert again.session_state["view-inline__value"] == 7


def test_train_page_says_what_validation_does(demo: Path) -> None:
    at = run(TRAIN_PAGE)
    assert at.selectbox(key="fhn-train-preset").value == "demo"  # fraction 0 in the recipe
    share = [s for s in at.slider if s.label.startswith("Validation: random share")][0]
    every = [n for n in at.number_input if n.label == "Validate every (iterations)"][0]
    assert share.value == 0.0 and every.disabled
    assert any("no validation: every label trains" in c.value for c in at.caption)
    assert not any("random 0%" in c.value for c in at.caption)
    share.set_value(0.2).run()
    every = [n for n in at.number_input if n.label == "Validate every (iterations)"][0]
    assert not every.disabled
    assert any("random 20% of each class's labels" in c.value and
               f"every {every.value} iterations" in c.value for c in at.caption)


def test_3d_slice_positions_read_in_survey_coordinates(demo: Path) -> None:
    from app import jobs
    from fhn_core.design import NetworkDesign, Segment
    from fhn_core.training import TrainConfig

    design = NetworkDesign(5, 3, (Segment(0, 1, 4), Segment(1, 1, 4), Segment(0, 1, 4)))
    job = jobs.registry().start(jobs.JobSpec(demo, design, TrainConfig(
        iterations=2, patch=(8, 8, None), validate_every=2, checkpoint_every=0)))
    assert job.wait(120) and job.snapshot().status == "finished", job.snapshot().error
    snap = job.snapshot()
    assert snap.remaining == pytest.approx(0.0) and snap.predicted == pytest.approx(1.0)
    grid = Project.open(demo).load_data()
    at = AppTest.from_file(VIEW3D_PAGE, default_timeout=TIMEOUT)
    at.session_state["fhn-3d-interactive"] = False
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    sliders = {s.label: s for s in at.select_slider}
    assert sliders["Inline"].options[0] == str(int(grid.coords["iline"].values[0]))
    assert sliders["Time slice (ms)"].options[-1] == (
        f"{float(grid.coords['samples'].values[-1]):g} ms")


def test_layout_shapes_count_every_band_of_every_date() -> None:
    from app import runs
    from app.layout import to_channels_first

    rng = np.random.default_rng(0)
    pair = xr.DataArray(rng.normal(size=(6, 7, 4, 2)).astype(np.float32),
                        dims=("y", "x", "band", "time"))
    shapes = runs.layout_shapes(pair)
    full = to_channels_first(pair, spatial_dims=2)
    assert shapes[2].channels == full.data.shape[0] == 8
    assert shapes[2].spatial_shape == (6, 7)


# ----------------------------------------------------------------------------- volumes
@pytest.fixture(scope="module")
def surveys(tmp_path_factory: pytest.TempPathFactory):
    from assets.demo_survey import build_demo_survey

    root = tmp_path_factory.mktemp("volumes")
    near = build_demo_survey(root / "near", shape=(16, 17, 32), seed=0).segy
    far = build_demo_survey(root / "far", shape=(16, 17, 32), seed=3).segy
    other = build_demo_survey(root / "other", shape=(18, 17, 32), seed=0).segy
    return near, far, other


def test_several_volumes_of_one_survey_are_input_channels(surveys, tmp_path: Path) -> None:
    from app import sources
    from app.layout import grid_of, to_channels_first
    from io_adapters.errors import DataError
    from io_adapters.segy import read_segy

    near, far, other = surveys
    project = Project.create(tmp_path / "p", "stacks")
    sources.add_paths(project, [str(near), str(far)])
    grid = Project.open(project.folder).load_data()
    assert grid.dims == ("band", "iline", "xline", "samples")
    assert list(grid.coords["band"].values) == ["demo", "demo-2"]
    np.testing.assert_array_equal(grid.isel(band=1).values, read_segy(far).values)
    assert grid.attrs["source_path"] == read_segy(near).attrs["source_path"]
    layout = to_channels_first(grid, vertical_channel=True)
    assert layout.channel_names == ["demo", "demo-2", "vertical coordinate (ms)"]
    np.testing.assert_array_equal(layout.data[1], read_segy(far).values)
    assert grid_of(grid) == (("iline", "xline", "samples"), (16, 17, 32))
    # a volume on another grid is refused with what differs, and nothing is kept
    with pytest.raises(DataError, match="does not share the survey grid.*iline axis"):
        sources.add_paths(project, [str(other)])
    assert len(Project.open(project.folder).sources) == 2


def test_a_file_that_does_not_fit_can_start_a_new_project(surveys, tmp_path: Path,
                                                          monkeypatch) -> None:
    near, _far, other = surveys
    project = Project.create(tmp_path / "p", "first")
    project.add_source(str(near), "segy")
    monkeypatch.setenv("FHN_PROJECT", str(project.folder))
    at = run(str(APP / "screens" / "data.py"))
    at.text_area(key="fhn-add-paths").set_value(str(other))
    at.button[[b.label for b in at.button].index("Add to project")].click().run()
    assert any("does not share the survey grid" in e.value for e in at.error)
    offer = [b for b in at.button if b.label == "New project from this file"]
    assert offer, "no offer to start a new project from the file"
    target = tmp_path / "second"
    at.text_input(key="fhn-misfit-folder").set_value(str(target))
    offer[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    made = Project.open(target)
    assert [Path(s.path).name for s in made.sources] == [other.name]
    assert at.session_state["fhn_project_dir"] == str(target.resolve())
    assert len(Project.open(project.folder).sources) == 1  # the first project is untouched


def test_pages_show_and_train_on_several_volumes(surveys, tmp_path: Path, monkeypatch) -> None:
    near, far, _other = surveys
    project = Project.create(tmp_path / "p", "stacks")
    project.add_source(str(near), "segy")
    project.add_source(str(far), "segy")
    monkeypatch.setenv("FHN_PROJECT", str(project.folder))
    label = run(LABEL_PAGE)
    band = label.selectbox(key="display-band")
    assert list(band.options) == ["1: demo", "2: demo-2"]
    label.text_input(key="fhn-cls-new-name").set_value("Sand")
    label.button[[b.label for b in label.button].index("Add class")].click().run()
    assert not label.exception
    label.session_state["fhn_canvas_inject"] = {"version": "5.3.0", "objects": [
        {"type": "circle", "left": 20, "top": 20, "radius": 3, "originX": "left",
         "originY": "top", "width": 6, "height": 6, "strokeWidth": 0}]}
    label.run()
    assert not label.exception and (Project.open(project.folder).load_labels().labels >= 0).any()
    train = run(TRAIN_PAGE)
    assert any("data laid out as (5, 16, 17, 32)" in c.value for c in train.caption), \
        [c.value for c in train.caption]
