"""Label model, label file, splits, and the imports of io_adapters.label_points, .boreholes and
.label_rasters (real Taizhou masks and F3 seismic)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from io_adapters.boreholes import (
    Borehole,
    boreholes_from_rows,
    import_boreholes,
    load_boreholes,
    save_boreholes,
)
from io_adapters.errors import DataError
from io_adapters.label_placement import map_to_cells
from io_adapters.label_points import import_points
from io_adapters.label_rasters import import_label_raster, import_mask_pair
from io_adapters.labels import (
    LabelClass,
    LabelSet,
    Provenance,
    load_labels,
    save_labels,
    split_by_region,
)

TAIZHOU = "changedetection/taizhou"
# a small georeferenced map grid: 6 rows x 8 cols, 10 m cells, origin (1000, 2000)
TRANSFORM = (10.0, 0.0, 1000.0, 0.0, -10.0, 2000.0)


def map_grid() -> xr.DataArray:
    return xr.DataArray(
        np.zeros((6, 8, 3), dtype=np.float32),
        dims=("y", "x", "band"),
        attrs={"transform": TRANSFORM, "crs": "EPSG:32651", "kind": "hyperspectral"},
    )


@pytest.fixture(scope="module")
def f3(shared_data: Path) -> xr.DataArray:
    from io_adapters.segy import read_segy

    return read_segy(shared_data / "segy" / "f3.sgy")


def sample_labelset() -> LabelSet:
    rng = np.random.default_rng(5)
    labels = rng.integers(-1, 3, size=(7, 9)).astype(np.int16)
    source = np.where(labels >= 0, rng.integers(1, 6, size=labels.shape), 0).astype(np.uint8)
    classes = [LabelClass(0, "sand", "#ffcc00"), LabelClass(1, "shale", "#336699"),
               LabelClass(2, "salt", "#ffffff")]
    return LabelSet(labels, classes, source, None, ("y", "x"))


# --------------------------------------------------------------------------- masks
def test_taizhou_masks(shared_data: Path) -> None:
    folder = shared_data / TAIZHOU
    ls = import_mask_pair(folder / "change.bmp", folder / "unchanged.bmp", (400, 400))
    assert ls.shape == (400, 400)
    assert ls.class_names == ["changed", "unchanged"]
    assert ls.counts() == {0: 4227, 1: 17163}
    assert np.count_nonzero(ls.labels >= 0) == 4227 + 17163  # no overlap lost
    assert np.all(ls.source[ls.labels >= 0] == Provenance.IMPORTED)
    assert np.all(ls.source[ls.labels < 0] == Provenance.NONE)


def test_mask_pair_overlap_and_size(tmp_path: Path) -> None:
    from PIL import Image

    a = np.zeros((5, 6), dtype=np.uint8)
    b = np.zeros((5, 6), dtype=np.uint8)
    a[1, 1:3] = 255
    b[1, 2:4] = 255
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    with pytest.raises(DataError, match=r"overlap in 1 pixels \(e.g. row 1, col 2\)"):
        import_mask_pair(tmp_path / "a.png", tmp_path / "b.png", (5, 6))
    with pytest.raises(DataError, match=r"a.png is 5 x 6.*grid is 4 x 6"):
        import_mask_pair(tmp_path / "a.png", tmp_path / "b.png", (4, 6))


# --------------------------------------------------------------------------- file
def test_save_load_round_trip_exact(tmp_path: Path) -> None:
    ls = sample_labelset()
    ls.split = (ls.labels >= 0).astype(np.uint8) * (np.arange(ls.labels.size).reshape(
        ls.labels.shape) % 3 == 0)  # a validation mask to round-trip
    path = save_labels(tmp_path / "labels.npz", ls)
    back = load_labels(path)
    np.testing.assert_array_equal(back.labels, ls.labels)
    np.testing.assert_array_equal(back.source, ls.source)
    np.testing.assert_array_equal(back.split, ls.split)
    assert back.labels.dtype == np.int16 and back.source.dtype == np.uint8
    assert back.classes == ls.classes
    assert back.dims == ("y", "x")
    assert back == ls
    back.labels[0, 0] = 2 if back.labels[0, 0] != 2 else 1
    assert back != ls
    # no split saved -> None back
    ls.split = None
    assert load_labels(save_labels(tmp_path / "b.npz", ls)).split is None


def test_save_stores_file_convention_and_json(tmp_path: Path) -> None:
    ls = sample_labelset()
    save_labels(tmp_path / "l.npz", ls)
    with np.load(tmp_path / "l.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["labels"], ls.labels + 1)
        meta = json.loads(str(npz["meta"][()]))
    assert [c["name"] for c in meta["classes"]] == ["sand", "shale", "salt"]


def test_atomic_save_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ls = sample_labelset()
    target = save_labels(tmp_path / "labels.npz", ls)
    before = target.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    ls.labels[:] = -1
    with pytest.raises(RuntimeError, match="disk full"):
        save_labels(target, ls)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.npz"]


def test_load_refuses_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="not a readable fhn label file"):
        load_labels(tmp_path / "junk.npz")
    np.savez(tmp_path / "obj.npz", meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="junk|obj.npz"):
        load_labels(tmp_path / "obj.npz")
    with pytest.raises(DataError, match="not found"):
        load_labels(tmp_path / "missing.npz")


# --------------------------------------------------------------------------- model
def test_class_table_operations() -> None:
    ls = sample_labelset()
    before = ls.labels.copy()
    counts = ls.counts()
    new = ls.add_class("gas", "#FF0000")
    assert new == LabelClass(3, "gas", "#ff0000")
    ls.rename_class(1, "clay")
    ls.recolour_class(1, "#000000")
    assert ls.classes[1] == LabelClass(1, "clay", "#000000")
    with pytest.raises(DataError, match="exists already"):
        ls.add_class("sand")
    with pytest.raises(DataError, match="#rrggbb"):
        ls.recolour_class(0, "red")
    removed = ls.delete_class(1)
    assert removed == counts[1]
    assert ls.class_names == ["sand", "salt", "gas"]
    assert [c.id for c in ls.classes] == [0, 1, 2]
    np.testing.assert_array_equal(ls.labels[before == 0], 0)
    np.testing.assert_array_equal(ls.labels[before == 2], 1)  # moved down
    np.testing.assert_array_equal(ls.labels[before == 1], -1)
    assert np.all(ls.source[before == 1] == 0)
    assert ls.counts() == {0: counts[0], 1: counts[2], 2: 0}


def test_with_classes_copies_and_validates() -> None:
    ls = sample_labelset()
    other = ls.with_classes(["a", "b", "c", "d"])
    assert other.class_names == ["a", "b", "c", "d"] and ls.class_names[0] == "sand"
    other.labels[0, 0] = 3
    assert ls.labels[0, 0] != 3
    with pytest.raises(DataError, match="class table has 2 classes"):
        ls.with_classes(["a", "b"])


def test_empty_and_merge() -> None:
    ls = LabelSet.empty((4, 4), ["rock", "water"], ("y", "x"))
    assert ls.counts() == {0: 0, 1: 0}
    other = LabelSet.empty((4, 4), ["water", "ice"])
    other.labels[0, 0], other.labels[1, 1] = 0, 1
    other.source[0, 0] = other.source[1, 1] = Provenance.POINT
    assert ls.merge(other) == 2
    assert ls.class_names == ["rock", "water", "ice"]
    assert ls.labels[0, 0] == 1 and ls.labels[1, 1] == 2 and ls.source[0, 0] == 3


# --------------------------------------------------------------------------- splits
def test_split_by_region() -> None:
    labels = np.full((6, 10), -1, dtype=np.int16)
    labels[:, 1] = 0
    labels[:, 8] = 0
    labels[2, 7:10] = 1  # class 1 lies entirely beyond the boundary
    ls = LabelSet(labels, ["a", "b"], np.zeros_like(labels, dtype=np.uint8), dims=("y", "x"))
    split = split_by_region(ls, "x", 6)
    assert np.all(split[:, 8] == 1) and np.all(split[:, 1] == 0)
    assert split[2, 7] == 0  # nearest to the boundary kept for training
    assert split[2, 9] == 1
    assert np.all(split[labels < 0] == 0)


# --------------------------------------------------------------------------- rasters
def test_import_npy_label_raster(tmp_path: Path) -> None:
    grid = map_grid()
    values = np.zeros((6, 8), dtype=np.uint8)
    values[1, 2], values[4, 5] = 1, 3
    np.save(tmp_path / "l.npy", values)
    ls = import_label_raster(tmp_path / "l.npy", grid)
    assert ls.class_names == ["class 1", "class 2", "class 3"]
    assert ls.labels[1, 2] == 0 and ls.labels[4, 5] == 2
    assert ls.counts() == {0: 1, 1: 0, 2: 1}
    np.save(tmp_path / "wrong.npy", np.zeros((8, 6), dtype=np.uint8))
    with pytest.raises(DataError, match=r"wrong.npy has shape \(8, 6\).*grid is \(6, 8\)"):
        import_label_raster(tmp_path / "wrong.npy", grid)


def test_import_geotiff_label_raster(tmp_path: Path) -> None:
    pytest.importorskip("io_adapters.geotiff", reason="io_adapters.geotiff not written yet")
    import rasterio
    from rasterio.transform import Affine

    grid = map_grid()
    values = np.zeros((6, 8), dtype=np.uint8)
    values[2, 3] = 2

    def write(name: str, transform: tuple[float, ...]) -> Path:
        with rasterio.open(
            tmp_path / name, "w", driver="GTiff", width=8, height=6, count=1, dtype="uint8",
            crs="EPSG:32651", transform=Affine(*transform),
        ) as dst:
            dst.write(values, 1)
        return tmp_path / name

    ls = import_label_raster(write("ok.tif", TRANSFORM), grid)
    assert ls.labels[2, 3] == 1 and ls.counts() == {0: 0, 1: 1}
    shifted = (10.0, 0.0, 1500.0, 0.0, -10.0, 2000.0)
    with pytest.raises(DataError, match=r"moved.tif has transform .*1500"):
        import_label_raster(write("moved.tif", shifted), grid)


def test_import_segy_label_volume(tmp_path: Path, f3: xr.DataArray) -> None:
    from io_adapters.segy import create_segy

    volume = np.zeros(f3.shape, dtype=np.float32)
    volume[3, 4, 10:20] = 1
    volume[5, 6, 30] = 2
    kwargs = dict(
        ilines=f3["iline"].values, xlines=f3["xline"].values, sample_interval_ms=4.0,
        delay_ms=float(f3["samples"].values[0]),
    )
    create_segy(tmp_path / "labels.sgy", volume, **kwargs)
    ls = import_label_raster(tmp_path / "labels.sgy", f3, class_names=["sand", "shale"])
    assert ls.dims == ("iline", "xline", "samples")
    assert ls.counts() == {0: 10, 1: 1}
    assert np.all(ls.labels[3, 4, 10:20] == 0) and ls.labels[5, 6, 30] == 1
    kwargs["ilines"] = f3["iline"].values + 100
    create_segy(tmp_path / "other.sgy", volume, **kwargs)
    with pytest.raises(DataError, match=r"other.sgy: its iline axis \(211\.\.233"):
        import_label_raster(tmp_path / "other.sgy", f3)


# --------------------------------------------------------------------------- points
def test_map_to_cells_raster() -> None:
    cells, inside = map_to_cells(map_grid(), [1005, 1079.9, 1000, 999], [1995, 1941, 2000, 1990])
    np.testing.assert_array_equal(cells[:3], [[0, 0], [5, 7], [0, 0]])
    np.testing.assert_array_equal(inside, [True, True, True, False])


def test_import_points_csv_map(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("x,y,class\n1005,1995,water\n1035,1975,urban\n1075,1945,1\n")
    ls = import_points(tmp_path / "p.csv", map_grid())
    assert ls.class_names == ["water", "urban"]
    assert ls.labels[0, 0] == 0 and ls.labels[2, 3] == 1 and ls.labels[5, 7] == 0
    assert np.count_nonzero(ls.labels >= 0) == 3
    assert np.all(ls.source[ls.labels >= 0] == Provenance.POINT)
    (tmp_path / "out.csv").write_text("x,y,class\n1005,1995,1\n5000,1995,1\n6000,1,2\n")
    with pytest.raises(DataError, match=r"2 of 3 points fall outside.*line 3: x=5000, y=1995"):
        import_points(tmp_path / "out.csv", map_grid())


def test_import_points_geojson_transect(tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"class": "road"},
             "geometry": {"type": "LineString", "coordinates": [[1005, 1995], [1075, 1995]]}},
            {"type": "Feature", "properties": {"class": "field"},
             "geometry": {"type": "Point", "coordinates": [1045, 1955]}},
        ],
    }
    (tmp_path / "t.geojson").write_text(json.dumps(doc))
    ls = import_points(tmp_path / "t.geojson", map_grid())
    assert ls.class_names == ["road", "field"]
    assert np.all(ls.labels[0, :] == 0)  # the whole row, no gaps
    assert np.all(ls.source[0, :] == Provenance.TRANSECT)
    assert ls.labels[4, 4] == 1 and ls.source[4, 4] == Provenance.POINT
    assert ls.counts() == {0: 8, 1: 1}


def test_import_points_seismic(tmp_path: Path, f3: xr.DataArray) -> None:
    (tmp_path / "s.csv").write_text("iline,xline,time,class\n111,875,4,top\n120,880,100,base\n")
    ls = import_points(tmp_path / "s.csv", f3)
    assert ls.labels[0, 0, 0] == 0 and ls.labels[9, 5, 24] == 1
    assert ls.counts() == {0: 1, 1: 1}
    (tmp_path / "bad.csv").write_text("iline,xline,time,class\n111,875,4,1\n500,880,8,1\n")
    with pytest.raises(DataError, match=r"1 of 2 points.*inlines 111-133"):
        import_points(tmp_path / "bad.csv", f3)
    (tmp_path / "flat.csv").write_text("iline,xline,class\n111,875,1\n")
    with pytest.raises(DataError, match="header line should be"):
        import_points(tmp_path / "flat.csv", f3)
    # map coordinates go to the nearest trace by CDP_X/CDP_Y
    x, y = float(f3["cdp_x"][4, 7]) + 3.0, float(f3["cdp_y"][4, 7]) - 2.0
    (tmp_path / "xy.csv").write_text(f"x,y,twt,class\n{x},{y},40,1\n")
    assert np.argwhere(import_points(tmp_path / "xy.csv", f3).labels >= 0).tolist() == [[4, 7, 9]]


# --------------------------------------------------------------------------- boreholes
def test_import_boreholes_seismic(tmp_path: Path, f3: xr.DataArray) -> None:
    (tmp_path / "w.csv").write_text(
        "well,iline,xline,top,base,class\n"
        "A-1,120,880,100,140,sand\n"
        "A-1,120,880,200,220,shale\n"
        "B-2,111,875,10,20,sand\n"
    )
    ls, wells = import_boreholes(tmp_path / "w.csv", f3, radius=1.5)
    assert [w.name for w in wells] == ["A-1", "B-2"]
    assert wells[0].position == (9, 5)
    assert wells[0].intervals == [(100.0, 140.0, 0), (200.0, 220.0, 1)]
    # 3x3 traces x 11 samples (100..140 ms) sand, 3x3 x 6 shale; B-2 at the corner: 2x2 x 3
    assert ls.counts() == {0: 9 * 11 + 4 * 3, 1: 9 * 6}
    assert np.all(ls.labels[8:11, 4:7, 24:35] == 0)
    assert np.all(ls.source[ls.labels >= 0] == Provenance.BOREHOLE)


def test_import_boreholes_errors(tmp_path: Path, f3: xr.DataArray) -> None:
    (tmp_path / "cols.csv").write_text("well,iline,xline,top,class\nA,120,880,100,1\n")
    with pytest.raises(DataError, match=r"missing column\(s\) base.*well,iline,xline,top,base"):
        import_boreholes(tmp_path / "cols.csv", f3)
    (tmp_path / "far.csv").write_text(
        "well,iline,xline,top,base,class\nA,120,880,100,140,1\nFAR-9,400,880,1,2,1\n"
    )
    with pytest.raises(DataError, match="FAR-9 lie outside the survey"):
        import_boreholes(tmp_path / "far.csv", f3)
    (tmp_path / "unit.csv").write_text("well,iline,xline,top,base,class\nA,120,880,1500,1600,1\n")
    with pytest.raises(DataError, match="ms or m"):
        import_boreholes(tmp_path / "unit.csv", f3)


def test_import_boreholes_map(tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_text("well,x,y,class\nW1,1035,1975,forest\n")
    ls, wells = import_boreholes(tmp_path / "w.csv", map_grid(), radius=1)
    assert wells[0].position == (2, 3) and wells[0].xy == (1035.0, 1975.0)
    assert ls.counts() == {0: 5}


# ------------------------------------------------------------------ typed wells, well table
def test_boreholes_from_rows_matches_csv_import(tmp_path: Path, f3: xr.DataArray) -> None:
    (tmp_path / "w.csv").write_text(
        "well,iline,xline,top,base,class\nA-1,120,880,100,140,sand\nA-1,120,880,200,220,shale\n"
    )
    from_csv, wells_csv = import_boreholes(tmp_path / "w.csv", f3, radius=1.5)
    rows = [{"Well": "A-1", "iline": 120, "xline": 880, "top": 100.0, "base": 140, "class": "sand"},
            {"Well": "A-1", "iline": 120, "xline": 880, "top": 200, "base": 220, "class": "shale"}]
    typed, wells = boreholes_from_rows(rows, f3, 1.5)
    assert typed == from_csv and wells == wells_csv
    with pytest.raises(DataError, match=r"^my table: missing column\(s\) base"):
        boreholes_from_rows([{"well": "A", "iline": 120, "xline": 880, "top": 1, "class": 1}],
                            f3, origin="my table")


def test_save_load_boreholes(tmp_path: Path) -> None:
    wells = [Borehole("W-1", (3, 4), (605000.5, 6073000.25), [(0.0, 110.0, 0), (110.0, 508.0, 4)]),
             Borehole("W-2", (0, 0))]
    path = save_boreholes(tmp_path / "wells.json", wells)
    assert load_boreholes(path) == wells
    assert not list(tmp_path.glob(".*.part"))  # atomic write left nothing behind
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(DataError, match="not a readable fhn well table"):
        load_boreholes(tmp_path / "bad.json")
    with pytest.raises(DataError, match="not found"):
        load_boreholes(tmp_path / "missing.json")
