"""A real browser against a real server: paint a stroke, see it saved, reload, still there;
train from the demo's labels, look at the results and the 3D view, export a SEG-Y.

Starts ``streamlit run app/serve.py`` on a free port with a small copy of the demo
project, drives Debian's Chromium (installed with apt when missing; skipped with the
reason when that is impossible) through Playwright, and stops the server by its process
id. Screenshots go to ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assets.demo_project import ensure_demo_project
from io_adapters.project import Project
from tests.app.browser_support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    PageWatch,
    goto,
    streamlit_server,
)

pytestmark = pytest.mark.browser

SHAPE = (32, 32, 48)
FIRST_CLASS_COLOUR = (0xF2, 0xC1, 0x4E)  # Overburden, the class selected on opening


@pytest.fixture()
def server(tmp_path: Path, chromium: Path) -> Iterator[tuple[str, Path]]:
    """A streamlit server on a free port serving a fresh small demo project."""
    folder = ensure_demo_project(tmp_path / "demo", shape=SHAPE)
    with streamlit_server(folder, tmp_path / "streamlit.log") as url:
        yield url, folder


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _labelled(page) -> int:
    value = page.locator('[data-testid="stMetricValue"]').first
    value.wait_for(timeout=30_000)
    return int(value.inner_text().replace(",", "").strip())


def _canvas(page):
    """The drawable canvas's top (event) layer, in the page or inside a component frame."""
    for scope in [page, *page.frames]:
        layer = scope.locator("canvas.upper-canvas")
        if layer.count():
            layer.first.wait_for(state="visible", timeout=30_000)
            return layer.first
    page.locator("canvas").first.wait_for(timeout=30_000)
    return page.locator("canvas").last


def _pixel(png: bytes, xy: tuple[float, float]) -> tuple[int, int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        return img.convert("RGB").getpixel((int(xy[0]), int(xy[1])))


def _distance(a, b) -> float:
    return sum((int(x) - int(y)) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5


def test_paint_stroke_is_saved_and_survives_reload(server, sync_playwright) -> None:
    url, folder = server
    labels_file = Project.open(folder).labels_path
    digest_before = _digest(labels_file)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            watch = PageWatch(page)
            page.goto(url)
            before = _labelled(page)
            canvas = _canvas(page)
            time.sleep(1.0)  # let the background image settle before the reference shot
            box = canvas.bounding_box()
            assert box and box["width"] > 100 and box["height"] > 100
            shot_before = canvas.screenshot()
            # a stroke across the upper-left part of the section, away from the wells
            start = (box["width"] * 0.12, box["height"] * 0.10)
            end = (box["width"] * 0.40, box["height"] * 0.22)
            page.mouse.move(box["x"] + start[0], box["y"] + start[1])
            page.mouse.down()
            for k in range(1, 21):
                t = k / 20
                page.mouse.move(box["x"] + start[0] + t * (end[0] - start[0]),
                                box["y"] + start[1] + t * (end[1] - start[1]))
            page.mouse.up()

            deadline = time.monotonic() + 30
            after = before
            while after == before and time.monotonic() < deadline:
                time.sleep(0.5)
                after = _labelled(page)
            page.screenshot(path=str(ARTIFACTS / "browser-painted.png"))
            assert after > before, "the label count did not grow after painting"
            assert _digest(labels_file) != digest_before, "the label file was not rewritten"
            from io_adapters.labels import load_labels

            on_disk = load_labels(labels_file)
            assert int((on_disk.labels >= 0).sum()) == after

            page.reload()
            assert _labelled(page) == after
            canvas = _canvas(page)
            time.sleep(1.0)
            shot_after = canvas.screenshot()
            page.screenshot(path=str(ARTIFACTS / "browser-reloaded.png"))
            # the stroke is drawn in the class colour on the section after the reload (where
            # it did not cross labels that were there already)
            along = [(start[0] + t / 19 * (end[0] - start[0]),
                      start[1] + t / 19 * (end[1] - start[1])) for t in range(20)]
            closer = sum(
                _distance(_pixel(shot_after, xy), FIRST_CLASS_COLOUR) + 10
                < _distance(_pixel(shot_before, xy), FIRST_CLASS_COLOUR)
                for xy in along
            )
            assert closer >= 5, f"only {closer} of 20 points along the stroke show its colour"
            watch.check("painting and reloading")
        finally:
            browser.close()


def _settle(page, label: str, value: str, timeout: float = 30.0):
    """The one input called ``label`` once streamlit's rerun shows ``value`` in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        boxes = page.get_by_label(label, exact=True)
        try:  # during a rerun the old and the new widget are both there for a moment
            if boxes.count() == 1 and boxes.input_value(timeout=1_000) == value:
                return boxes
        except Exception:  # noqa: BLE001 - detached while we looked: look again
            pass
        time.sleep(0.2)
    pytest.fail(f"the input {label!r} did not show {value!r} within {timeout:.0f} s")


def _class_pixels(png: bytes, colours: list[str], tol: int = 20) -> int:
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        rgb = np.asarray(img.convert("RGB")).astype(int)
    total = 0
    for colour in colours:
        c = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        total += int((np.abs(rgb - c).max(axis=-1) <= tol).sum())
    return total


def test_train_look_in_3d_and_export_segy(server, sync_playwright) -> None:
    """From the demo with its well labels: a short training run, the results, the 3D view
    and a SEG-Y export that segyio reopens with the source's geometry; nothing is fetched
    from the internet on the way."""
    import numpy as np
    import segyio
    from playwright.sync_api import expect

    url, folder = server
    project = Project.open(folder)
    colours = [c.colour for c in project.load_labels().classes]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            watch = PageWatch(page)
            page.goto(url)
            _labelled(page)
            goto(page, watch, "Train")
            preset = page.get_by_role("combobox", name="Start from")
            expect(preset).to_have_value(re.compile("Demo recipe"), timeout=60_000)
            preset.click()
            page.get_by_role("option", name=re.compile("Quick check")).click()
            expect(preset).to_have_value(re.compile("Quick check"), timeout=30_000)
            _settle(page, "Iterations", "10")
            for label, value in (("Iterations", "4"), ("iline", "16"), ("xline", "16")):
                box = page.get_by_label(label, exact=True)
                box.fill(value)
                box.press("Tab")
                _settle(page, label, value)
            page.get_by_role("button", name="Start training").click()
            page.get_by_text("See the results").wait_for(timeout=180_000)
            page.screenshot(path=str(ARTIFACTS / "browser-trained.png"), full_page=True)
            (run,) = [p.name for p in project.models_dir.iterdir()]

            page.get_by_text("See the results").click()
            page.get_by_text("Mean IoU").first.wait_for(timeout=60_000)
            page.get_by_text("Errors vs reference").wait_for(timeout=120_000)
            time.sleep(1.0)
            page.screenshot(path=str(ARTIFACTS / "browser-results.png"), full_page=True)

            goto(page, watch, "3D view")
            frame = page.frame_locator("iframe").first
            frame.locator("canvas").first.wait_for(timeout=60_000)
            time.sleep(3.0)  # vtk.js draws after the scene is decoded
            shot = page.locator("iframe").first.screenshot()
            (ARTIFACTS / "browser-3d.png").write_bytes(shot)
            page.screenshot(path=str(ARTIFACTS / "browser-3d-page.png"), full_page=True)
            assert _class_pixels(shot, colours) > 2_000, "the 3D view shows no class colours"

            goto(page, watch, "Export")
            page.get_by_role("button", name="Export").click()
            page.get_by_text("Wrote").first.wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "browser-exported.png"), full_page=True)
            watch.check("training, results, 3D view and export")
        finally:
            browser.close()

    exported = project.exports_dir / run / f"{run}-classes.sgy"
    source = project.resolve(project.sources[0].path)
    classes = np.load(project.predictions_dir / run / "classes.npy")
    with segyio.open(source) as src, segyio.open(exported) as out:
        assert list(out.ilines) == list(src.ilines)
        assert list(out.xlines) == list(src.xlines)
        assert np.array_equal(out.samples, src.samples)
        assert out.tracecount == src.tracecount
        assert bytes(out.text[0]) == bytes(src.text[0])
        for i in (0, src.tracecount // 2, src.tracecount - 1):
            assert dict(out.header[i]) == dict(src.header[i])
        np.testing.assert_array_equal(segyio.tools.cube(out), classes.astype(np.float32))


def _upload(page, name: str, content: bytes) -> None:
    """Hand a file to the page's uploader; again if a form clearing itself dropped it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    uploader = page.locator("input[type=file]").first
    # a page that is still rerunning on a busy CI machine can take well over the default 30 s
    uploader.wait_for(state="attached", timeout=120_000)
    for _ in range(3):
        uploader.set_input_files({"name": name, "mimeType": "text/csv", "buffer": content})
        try:
            page.get_by_test_id("stFileChipName").first.wait_for(timeout=10_000)
            return
        except PlaywrightTimeout:
            continue
    pytest.fail(f"the uploader did not take {name[:40]}")


def _upload_until(page, name: str, content: bytes, button: str, message: str) -> None:
    """Upload, press ``button`` and wait for ``message``; again (three tries) when the page was
    still rerunning after the previous case and the press met the earlier file or none (two
    cases upload the same name, so the file chip cannot tell them apart)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    for attempt in range(3):
        _upload(page, name, content)
        expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=30_000)
        page.get_by_role("button", name=button).click()
        try:
            page.get_by_text(message).first.wait_for(timeout=30_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def test_bad_uploads_on_the_data_and_wells_pages_are_messages(server, sync_playwright) -> None:
    """Uploads a user can really make in the browser: a well CSV in Latin-1, one with
    overlapping intervals, names too long to store; each is a one-line message on the page,
    never a traceback, and the labels stay as they were."""
    from playwright.sync_api import expect

    url, folder = server
    project = Project.open(folder)
    labels_before = _digest(project.labels_path)
    well = (folder / "data" / "demo_wells.csv").read_text().splitlines()[1].split(",")
    header = "well,iline,xline,top,base,class\n"
    overlapping = f"{header}A,{well[1]},{well[2]},0,40,Salt\nA,{well[1]},{well[2]},20,60,Shale\n"
    cases = [  # (page, uploaded name, content, message on the page)
        ("Wells & validation", "wells.csv",
         (header + f"Bj\xf8rn,{well[1]},{well[2]},0,40,Salt\n").encode("latin-1"),
         "save it as UTF-8 CSV"),
        ("Wells & validation", "wells.csv", overlapping.encode(),
         "interval 20-60 overlaps the interval 0-40 of the same well"),
        ("Wells & validation", "w" * 246 + ".csv", overlapping.encode(), "is 250 bytes long"),
        ("Project & data", "c" * 246 + ".sgy", b"x", "is 250 bytes long"),
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(url)
            _labelled(page)
            for title, name, content, message in cases:
                page.get_by_role("link", name=title).click()
                expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)
                if title == "Project & data":
                    page.get_by_role("tab", name="Upload").click()
                button = "Import wells" if title.startswith("Wells") else "Upload and add"
                _upload_until(page, name, content, button, message)
                assert "Traceback" not in page.content()
                expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "browser-bad-uploads.png"), full_page=True)
        finally:
            browser.close()
    assert _digest(project.labels_path) == labels_before
    assert not list((folder / "data").glob("c" * 20 + "*"))
