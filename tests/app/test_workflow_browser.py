"""The whole path a person takes, in a real browser on small data, three times over.

SEG-Y: create a project, add a SEG-Y volume, go to an inline by its number, add two
classes and paint them with mouse strokes, import a well from CSV, train a tiny design
for a few iterations, see the prediction on Results, open the 3D view (its canvas draws
more than background), export a SEG-Y and check its headers against the source. Then a
GeoTIFF map (export checked against the source grid and CRS) and a two-date ENVI pair.

Every page is watched: a console error, a failed request, a request to the internet or
a traceback on the page fails the test. Screenshots go to ``test-artifacts/``, and the
walk's duration to ``test-artifacts/workflow-seconds.txt`` (aim: under two minutes on an
idle 2-core machine).
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from io_adapters.project import Project
from tests.app.browser_support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    PageWatch,
    goto,
    retry,
    settle,
    streamlit_server,
)

pytestmark = pytest.mark.browser

SEISMIC_SHAPE = (24, 24, 40)
MAP_SHAPE = (40, 48)
CUBE_SHAPE = (32, 32, 4)
CLASSES = (("Sand", "#f2c14e"), ("Shale", "#4c78a8"))
WAIT = 60_000  # ms, for what streamlit computes (training waits longer)


# ----------------------------------------------------------------------------- data
def write_map(path: Path) -> Path:
    """A one-band float GeoTIFF in UTM 31N, 30 m cells: two regions and noise."""
    import rasterio
    from affine import Affine

    rows, cols = MAP_SHAPE
    rng = np.random.default_rng(1)
    values = (np.where(np.arange(cols)[None, :] < cols // 2, 1.0, -1.0)
              + 0.3 * rng.normal(size=MAP_SHAPE)).astype(np.float32)
    with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=1,
                       dtype="float32", crs="EPSG:32631",
                       transform=Affine(30.0, 0.0, 500_000.0, 0.0, -30.0, 6_000_000.0)) as dst:
        dst.write(values, 1)
    return path


def write_envi(path: Path, cube: np.ndarray) -> Path:
    """A (lines, samples, bands) float32 cube as ENVI (BSQ) with its header; returns the
    header path."""
    lines, samples, bands = cube.shape
    path.write_bytes(np.transpose(cube, (2, 0, 1)).astype("<f4").tobytes())
    header = path.with_suffix(".hdr")
    header.write_text(f"ENVI\nsamples = {samples}\nlines = {lines}\nbands = {bands}\n"
                      "header offset = 0\nfile type = ENVI Standard\ndata type = 4\n"
                      "interleave = bsq\nbyte order = 0\n"
                      "wavelength = {0.48, 0.56, 0.66, 0.83}\nwavelength units = Micrometers\n")
    return header


def write_pair(folder: Path) -> list[Path]:
    """Two dates of one scene: a square that appears between them."""
    rng = np.random.default_rng(2)
    before = rng.normal(size=CUBE_SHAPE).astype(np.float32)
    after = before + 0.1 * rng.normal(size=CUBE_SHAPE).astype(np.float32)
    after[8:24, 8:24] += 3.0
    return [write_envi(folder / "date1.img", before), write_envi(folder / "date2.img", after)]


# ----------------------------------------------------------------------------- steps
def wait_text(page, text: str | re.Pattern, timeout: float = WAIT):
    found = page.get_by_text(text).first
    found.wait_for(timeout=timeout)
    return found


def create_project(page, watch: PageWatch, folder: Path, name: str) -> None:
    goto(page, watch, "Project & data")
    page.get_by_text("Open another project or start a new one").click()
    page.get_by_role("tab", name="New project").click()
    page.get_by_role("textbox", name="New project folder").fill(str(folder))
    page.get_by_role("textbox", name="Name", exact=True).fill(name)
    page.get_by_role("button", name="Create").click()
    wait_text(page, "No data in this project yet.")
    watch.check("creating a project")


def add_files(page, watch: PageWatch, paths: list[Path]) -> None:
    box = page.get_by_role("textbox", name="File path(s), one per line")
    box.last.wait_for(timeout=WAIT)
    time.sleep(0.3)  # a page drawn again after the project changed: let it settle
    box.last.fill("\n".join(map(str, paths)))
    # while the page is drawn again the stale form can still be there: use the new one
    page.get_by_role("button", name="Add to project").last.click()
    wait_text(page, "Added ")
    wait_text(page, "Summary")
    watch.check("adding data")


def labelled(page) -> int:
    value = page.locator('[data-testid="stMetricValue"]').first
    value.wait_for(timeout=WAIT)
    return int(value.inner_text().replace(",", "").strip())


def add_classes(page, watch: PageWatch) -> None:
    header = page.get_by_test_id("stExpander").get_by_text("Class table", exact=True)
    box = page.get_by_role("textbox", name="New class")
    for name, _colour in CLASSES:
        def type_name(name: str = name) -> None:
            # the class table can be drawn again, open or closed, by a rerun still going
            settle(page)
            if not box.is_visible():
                header.click()
            box.fill(name, timeout=5_000)

        retry(type_name, 6, f"the class table's 'New class' box never took {name!r}")
        page.get_by_role("button", name="Add class").click()
        wait_text(page, f"Added class {name}")
    watch.check("adding classes")


def canvas(page):
    layer = page.locator("canvas.upper-canvas").first
    layer.wait_for(state="visible", timeout=WAIT)
    # One set of controls, the app's: the component's own toolbar is built but never shown.
    toolbars = page.locator(".dc-toolbar")
    toolbars.first.wait_for(state="attached", timeout=WAIT)
    for k in range(toolbars.count()):
        expect(toolbars.nth(k)).to_be_hidden(timeout=WAIT)
    time.sleep(0.5)
    return layer


def stroke(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse stroke across the canvas between two points given as fractions of it."""
    box = canvas(page).bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100

    def at(t: float) -> tuple[float, float]:
        return (box["x"] + box["width"] * (start[0] + t * (end[0] - start[0])),
                box["y"] + box["height"] * (start[1] + t * (end[1] - start[1])))

    page.mouse.move(*at(0.0))
    page.mouse.down()
    for k in range(1, 16):
        page.mouse.move(*at(k / 15))
    page.mouse.up()


def paint_two_classes(page, watch: PageWatch, strokes) -> None:
    """One stroke per class, each seen to add labelled cells."""
    for (name, _colour), (start, end) in zip(CLASSES, strokes, strict=True):
        page.locator('[data-testid="stRadio"]').get_by_text(name, exact=True).click()
        settle(page)
        before = labelled(page)
        stroke(page, start, end)
        deadline = time.monotonic() + 30
        while labelled(page) == before and time.monotonic() < deadline:
            time.sleep(0.3)
        assert labelled(page) > before, f"painting {name} labelled nothing"
    watch.check("painting")


def train(page, watch: PageWatch, patch: dict[str, str]) -> str:
    from playwright.sync_api import expect

    goto(page, watch, "Train")
    preset = page.get_by_role("combobox", name="Start from")
    # until a rerun ends, the controls it replaces can linger beside the new ones
    expect(preset).to_have_count(1, timeout=2 * WAIT)
    preset.click()
    page.get_by_role("option", name=re.compile("Quick check")).click()
    deadline = time.monotonic() + 2 * WAIT / 1000
    while not _any_value(preset, "Quick check"):
        assert time.monotonic() < deadline, "the preset box never showed 'Quick check'"
        time.sleep(0.3)
    # the preset re-keys the settings: wait for its iterations before typing over them
    # (the auto recipe's disabled box can linger in the page until the rerun ends)
    expect(page.get_by_role("spinbutton", name="Iterations", exact=True,
                            disabled=False)).to_have_value("10", timeout=WAIT)
    for label, value in (("Iterations", "3"), *patch.items()):
        set_number(page, label, value)
    page.get_by_role("button", name="Start training").click()
    wait_text(page, "See the results", timeout=120_000)
    watch.check("training")
    return page.locator("h4").filter(has_text="Run").first.inner_text()


def _any_value(boxes, text: str) -> bool:
    """Whether one of the boxes shows ``text`` (a rerun can draw a box again beside the
    old one until it ends; either may be the one read)."""
    for box in boxes.all():
        try:
            if text in box.input_value(timeout=1_000):
                return True
        except Exception:  # noqa: BLE001 - the box was removed while being read
            pass
    return False


def set_number(page, label: str, value: str, timeout: float = 30.0) -> None:
    """Type a number into the box called ``label`` until streamlit's rerun keeps it (a
    rerun that was under way when it was typed draws the box again with the old value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        box = page.get_by_role("spinbutton", name=label, exact=True, disabled=False)
        try:
            box.fill(value, timeout=2_000)
            box.press("Tab", timeout=2_000)
            kept = time.monotonic() + 0.6
            while time.monotonic() < kept:  # still there after the rerun it started?
                time.sleep(0.15)
                if box.input_value(timeout=2_000) != value:
                    break
            else:
                return
        except Exception:  # noqa: BLE001 - the box was redrawn while typing: type again
            pass
    pytest.fail(f"the number box {label!r} did not keep {value!r}")


def results(page, watch: PageWatch, shot: str) -> None:
    goto(page, watch, "Results")
    page.get_by_role("button", name="Save figure").first.wait_for(timeout=WAIT)
    wait_text(page, "Mean IoU")
    # no message from another project (its reference, its design) on this project's page
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, [errors.nth(i).inner_text() for i in range(errors.count())]
    time.sleep(0.5)
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    watch.check("results")


def view3d(page, watch: PageWatch, shot: str) -> np.ndarray:
    """The 3D view's canvas as RGB; asserts it drew more than background."""
    from PIL import Image

    goto(page, watch, "3D view")
    frame = page.frame_locator("iframe").first
    frame.locator("canvas").first.wait_for(timeout=WAIT)
    deadline = time.monotonic() + 30  # vtk.js draws once the scene is decoded
    while True:
        png = page.locator("iframe").first.screenshot()
        with Image.open(io.BytesIO(png)) as img:
            rgb = np.asarray(img.convert("RGB")).astype(int)
        drawn = int((np.abs(rgb - rgb[2, 2]).max(axis=-1) > 40).sum())
        if drawn > 0.05 * rgb.shape[0] * rgb.shape[1] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    (ARTIFACTS / shot).write_bytes(png)
    assert drawn > 0.05 * rgb.shape[0] * rgb.shape[1], f"the 3D view drew {drawn} pixels"
    watch.check("3D view")
    return rgb


def export(page, watch: PageWatch, format_title: str | None = None) -> None:
    goto(page, watch, "Export")
    if format_title:
        page.get_by_text(format_title).click()
    page.get_by_role("button", name="Export", exact=True).click()
    wait_text(page, "Wrote")
    watch.check("export")


# ----------------------------------------------------------------------------- the walk
def test_a_person_walks_segy_geotiff_and_envi_projects(tmp_path: Path, chromium: Path,
                                                       sync_playwright) -> None:
    import rasterio
    import segyio

    from assets.demo_survey import build_demo_survey

    started = time.monotonic()
    ARTIFACTS.mkdir(exist_ok=True)
    survey = build_demo_survey(tmp_path / "survey", shape=SEISMIC_SHAPE)
    # a survey of one's own comes without the demo's ground truth (which Results would
    # offer as the reference, in the demo's five units, not this walk's two classes)
    (survey.segy.parent / "demo_units.npy").unlink()
    with segyio.open(survey.segy) as src:
        inline = int(src.ilines[len(src.ilines) // 3])
        xline = int(src.xlines[len(src.xlines) // 2])
        times = src.samples
    wells = tmp_path / "wells.csv"
    wells.write_text("well,iline,xline,top,base,class\n"
                     f"W-9,{inline},{xline},{times[0]:g},{times[len(times) // 2]:g},Sand\n"
                     f"W-9,{inline},{xline},{times[len(times) // 2]:g},{times[-1]:g},Shale\n")
    tif = write_map(tmp_path / "map.tif")
    pair = write_pair(tmp_path)
    home = Project.create(tmp_path / "home", "Start")

    with streamlit_server(home.folder, tmp_path / "streamlit.log") as url, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            watch = PageWatch(page)
            page.goto(f"{url}/data")  # a page opened by its own URL
            wait_text(page, "Project & data")
            watch.check("opening /data")

            # ---------------------------------------------------------------- SEG-Y
            seismic = tmp_path / "seismic"
            create_project(page, watch, seismic, "Seismic walk")
            add_files(page, watch, [survey.segy])
            goto(page, watch, "View & label")
            set_number(page, "Inline number", str(inline))  # kept through a late rerun
            wait_text(page, re.compile(rf"Inline {inline} · index"))
            add_classes(page, watch)
            paint_two_classes(page, watch, [((0.15, 0.15), (0.45, 0.2)),
                                            ((0.15, 0.8), (0.45, 0.85))])
            page.screenshot(path=str(ARTIFACTS / "workflow-segy-label.png"), full_page=True)
            goto(page, watch, "Wells & validation")
            page.get_by_role("textbox", name="CSV path on this machine").fill(str(wells))
            page.get_by_role("button", name="Import wells").click()
            wait_text(page, "Imported wells")
            watch.check("importing wells")
            run = train(page, watch, {"iline": "16", "xline": "16"})
            assert run
            results(page, watch, "workflow-segy-results.png")
            view3d(page, watch, "workflow-segy-3d.png")
            export(page, watch)

            project = Project.open(seismic)
            (run_dir,) = list(project.exports_dir.iterdir())
            exported = run_dir / f"{run_dir.name}-classes.sgy"
            classes = np.load(project.predictions_dir / run_dir.name / "classes.npy")
            with segyio.open(survey.segy) as src, segyio.open(exported) as out:
                assert list(out.ilines) == list(src.ilines)
                assert list(out.xlines) == list(src.xlines)
                assert np.array_equal(out.samples, src.samples)
                assert bytes(out.text[0]) == bytes(src.text[0])
                for i in (0, src.tracecount // 2, src.tracecount - 1):
                    assert dict(out.header[i]) == dict(src.header[i])
                np.testing.assert_array_equal(segyio.tools.cube(out),
                                              classes.astype(np.float32))
            names = [c.name for c in project.load_labels().classes]
            assert names == [n for n, _ in CLASSES]

            # ---------------------------------------------------------------- GeoTIFF map
            mapped = tmp_path / "mapped"
            create_project(page, watch, mapped, "Map walk")
            add_files(page, watch, [tif])
            goto(page, watch, "View & label")
            add_classes(page, watch)
            paint_two_classes(page, watch, [((0.1, 0.3), (0.35, 0.7)),
                                            ((0.65, 0.3), (0.9, 0.7))])
            train(page, watch, {})
            results(page, watch, "workflow-map-results.png")
            view3d(page, watch, "workflow-map-3d.png")
            export(page, watch)
            project = Project.open(mapped)
            (run_dir,) = list(project.exports_dir.iterdir())
            with rasterio.open(tif) as src, \
                    rasterio.open(run_dir / f"{run_dir.name}-classes.tif") as out:
                assert out.crs == src.crs and out.transform == src.transform
                assert (out.height, out.width) == (src.height, src.width)

            # ---------------------------------------------------------------- ENVI pair
            cubes = tmp_path / "cubes"
            create_project(page, watch, cubes, "Two dates")
            add_files(page, watch, pair)
            goto(page, watch, "View & label")
            add_classes(page, watch)
            paint_two_classes(page, watch, [((0.35, 0.45), (0.65, 0.55)),
                                            ((0.05, 0.05), (0.2, 0.9))])
            train(page, watch, {})
            results(page, watch, "workflow-envi-results.png")
            export(page, watch)
            project = Project.open(cubes)
            (run_dir,) = list(project.exports_dir.iterdir())
            out = np.load(run_dir / f"{run_dir.name}-classes.npy")
            assert out.shape == CUBE_SHAPE[:2]
            watch.check("the whole walk")
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "workflow-failed.png"), full_page=True)
            raise
        finally:
            browser.close()
    # the aim is under two minutes on an idle 2-core machine; the time is recorded, not
    # asserted (a timed test fails on a busy machine, not on a slow app)
    elapsed = time.monotonic() - started
    (ARTIFACTS / "workflow-seconds.txt").write_text(f"{elapsed:.1f}\n")
