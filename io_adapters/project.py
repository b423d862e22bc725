"""A project folder: data references, labels, models and predictions in one place.

The app and the command line open the same work through :class:`Project`::

    my-survey/
      project.toml    name, data sources (path, kind, options), label file, times
      labels/         labels.npz (io_adapters.labels.save_labels)
      models/         trained networks
      predictions/    predicted volumes/maps
      exports/        GeoTIFF / SEG-Y handed to other software

``project.toml`` is read with tomllib and written with tomli_w through
:func:`io_adapters.atomic.atomic_output`. Paths in it are stored as given: relative
paths are relative to the project folder (so a project folder can be moved together
with its data), absolute paths stay absolute.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
import xarray as xr

from .atomic import atomic_output
from .boreholes import Borehole, load_boreholes, save_boreholes
from .errors import DataError
from .gridmatch import spatial_dims, spatial_shape, stack_volumes
from .labels import (
    LabelCells,
    LabelSet,
    load_label_cells,
    load_labels,
    save_label_cells,
    save_labels,
)

__all__ = ["Project", "DataSource", "SOURCE_KINDS", "PROJECT_FILE", "guess_kind",
           "plain_file_name"]

PathLike = str | os.PathLike[str]

PROJECT_FILE = "project.toml"
FORMAT_VERSION = 1
SUBFOLDERS = ("labels", "models", "predictions", "exports")
DEFAULT_LABEL_FILE = "labels/labels.npz"
BOREHOLE_FILE = "labels/boreholes.json"
LABEL_CELLS_FILE = "labels/label_cells.npz"  # labels listed cell by cell (large surveys)
# a survey read chunk by chunk with more cells than this keeps its labels as a list of
# cells: a label grid (int16 labels + uint8 provenance) would take 3 bytes per cell
LABEL_GRID_LIMIT = 100_000_000
DATA_FOLDER = "data"  # where files handed in through the app (uploads) are kept

# The options each kind of source accepts (passed on to its reader).
SOURCE_KINDS: dict[str, tuple[str, ...]] = {
    "segy": ("iline", "xline", "fill_missing"),
    "geotiff": ("categorical", "reference"),
    "hyperspectral": ("variable", "band_axis", "time"),
}
_MAT_SUFFIXES = (".mat",)
_NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".h5", ".hdf5", ".he5")


_SEGY_SUFFIXES = (".sgy", ".segy")
_TIFF_SUFFIXES = (".tif", ".tiff", ".gtiff")
_ENVI_DATA_SUFFIXES = ("", ".img", ".dat", ".raw", ".bsq", ".bil", ".bip")


def _read_survey(path: Path, options: dict[str, Any]) -> xr.DataArray:
    """A SEG-Y in memory, or an ingested survey store (Dask-backed, read chunk by chunk)."""
    from .zarr_store import is_segy_store, open_segy_store

    if path.suffix.lower() == ".zarr" or is_segy_store(path):
        if options:
            raise DataError(
                f"{path.name} is an ingested survey store: its byte locations and gaps were "
                f"fixed at ingest, so options {sorted(options)} do not apply; remove them"
            )
        return open_segy_store(path)
    from .segy import read_segy

    return read_segy(path, **options)


def guess_kind(path: PathLike) -> str:
    """The source kind a file name suggests: "segy", "geotiff" or "hyperspectral".

    .sgy/.segy and .zarr (a SEG-Y ingested by ``fhn ingest``) -> segy; .tif/.tiff ->
    geotiff; .hdr, ENVI data (.img, .dat, .raw, .bsq, .bil, .bip or no suffix), .mat and
    NetCDF/HDF5 -> hyperspectral. Anything else is a
    :class:`DataError` that asks for the kind.
    """
    suffix = Path(path).suffix.lower()
    if suffix in (*_SEGY_SUFFIXES, ".zarr"):
        return "segy"
    if suffix in _TIFF_SUFFIXES:
        return "geotiff"
    if suffix in (".hdr", *_ENVI_DATA_SUFFIXES, *_MAT_SUFFIXES, *_NETCDF_SUFFIXES):
        return "hyperspectral"
    raise DataError(
        f"cannot tell the kind of {Path(path).name} from its suffix '{suffix}'; choose the "
        f"kind (one of {list(SOURCE_KINDS)}) or rename the file"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class DataSource:
    """One data file of the project: ``path`` as stored, ``kind``, reader ``options``."""

    path: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


class Project:
    """A project folder; build it with :meth:`create` or :meth:`open`, not the constructor.

    Attributes: ``folder`` (absolute Path), ``name``, ``sources`` (list of
    :class:`DataSource`), ``label_file`` (path of the label file as stored), ``created``
    and ``modified`` (ISO 8601 UTC; ``modified`` changes whenever project.toml is saved).
    """

    def __init__(
        self,
        folder: Path,
        name: str,
        sources: list[DataSource],
        label_file: str = DEFAULT_LABEL_FILE,
        created: str = "",
        modified: str = "",
    ) -> None:
        self.folder = folder
        self.name = name
        self.sources = sources
        self.label_file = label_file
        self.created = created or _now()
        self.modified = modified or self.created

    # ---------------------------------------------------------------- create / open
    @classmethod
    def create(cls, folder: PathLike, name: str) -> Project:
        """Make a new project in ``folder`` (created if missing) with its subfolders.

        Raises :class:`DataError` if the folder already holds a project.
        """
        root = Path(folder).expanduser().resolve()
        if (root / PROJECT_FILE).exists():
            raise DataError(
                f"{root} already holds a project ({PROJECT_FILE}); open it instead, or choose "
                "another folder"
            )
        if not str(name).strip():
            raise DataError("a project needs a name; give a non-empty name")
        try:
            root.mkdir(parents=True, exist_ok=True)
            for sub in SUBFOLDERS:
                (root / sub).mkdir(exist_ok=True)
        except OSError as err:
            raise DataError(
                f"cannot create project folder {root}: {err.strerror}; choose a folder you "
                "can write to"
            ) from err
        project = cls(root, str(name).strip(), [])
        project.save()
        return project

    @classmethod
    def open(cls, folder: PathLike) -> Project:
        """Open the project in ``folder`` (DataError if there is none or it is damaged)."""
        root = Path(folder).expanduser().resolve()
        toml_path = root / PROJECT_FILE
        if not toml_path.is_file():
            raise DataError(
                f"{root} is not an fhn project (no {PROJECT_FILE}); create a project first "
                "(Project.create or 'New project' in the app)"
            )
        try:
            with open(toml_path, "rb") as fh:
                doc = tomllib.load(fh)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise DataError(
                f"{toml_path} is not valid TOML ({err}); repair it by hand or create a new "
                "project and add the data again"
            ) from err
        except OSError as err:
            raise DataError(f"cannot read {toml_path}: {err.strerror}") from err
        return cls._from_doc(root, toml_path, doc)

    @classmethod
    def _from_doc(cls, root: Path, toml_path: Path, doc: dict[str, Any]) -> Project:
        def bad(what: str) -> DataError:
            return DataError(f"{toml_path}: {what}; repair the file or create a new project")

        name = doc.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad("'name' is missing or not a string")
        if int(doc.get("format_version", 1)) > FORMAT_VERSION:
            raise bad(f"format_version {doc['format_version']} is newer than this fhn; update fhn")
        raw_sources = doc.get("sources", [])
        if not isinstance(raw_sources, list):
            raise bad("'sources' must be a list of [[sources]] tables")
        sources = []
        for i, s in enumerate(raw_sources):
            if not isinstance(s, dict) or not isinstance(s.get("path"), str):
                raise bad(f"source #{i + 1} has no 'path'")
            if s.get("kind") not in SOURCE_KINDS:
                raise bad(f"source #{i + 1} has kind {s.get('kind')!r}, not one of "
                          f"{list(SOURCE_KINDS)}")
            options = s.get("options", {})
            if not isinstance(options, dict):
                raise bad(f"source #{i + 1}: 'options' must be a table")
            sources.append(DataSource(s["path"], s["kind"], dict(options)))
        label_file = doc.get("labels", DEFAULT_LABEL_FILE)
        if not isinstance(label_file, str):
            raise bad("'labels' must be a path string")
        if not _inside(root, label_file):
            raise bad(f"'labels' = {label_file!r} leads outside the project folder; labels are "
                      f"written there, so keep them inside, e.g. labels = "
                      f"{DEFAULT_LABEL_FILE!r}")
        return cls(root, name, sources, label_file, str(doc.get("created", "")),
                   str(doc.get("modified", "")))

    def save(self) -> Path:
        """Write project.toml atomically (updates ``modified``); returns its path."""
        self.modified = _now()
        doc: dict[str, Any] = {
            "name": self.name,
            "format_version": FORMAT_VERSION,
            "created": self.created,
            "modified": self.modified,
            "labels": self.label_file,
            "sources": [
                {"path": s.path, "kind": s.kind, "options": dict(s.options)} for s in self.sources
            ],
        }
        target = self.folder / PROJECT_FILE
        with atomic_output(target) as tmp, open(tmp, "wb") as fh:
            tomli_w.dump(doc, fh)
        return target

    # ---------------------------------------------------------------- paths
    def resolve(self, path: PathLike) -> Path:
        """A stored path as an absolute Path (relative ones are under the project folder)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.folder / p

    @property
    def project_file(self) -> Path:
        """The project.toml path."""
        return self.folder / PROJECT_FILE

    @property
    def labels_path(self) -> Path:
        """Where the project's labels are saved."""
        return self.resolve(self.label_file)

    @property
    def labels_dir(self) -> Path:
        """The labels/ folder."""
        return self.folder / "labels"

    @property
    def label_cells_path(self) -> Path:
        """Where the labels of a survey too large for a label grid are saved."""
        return self.folder / LABEL_CELLS_FILE

    @property
    def boreholes_path(self) -> Path:
        """Where the project's well table is saved (beside the labels)."""
        return self.folder / BOREHOLE_FILE

    @property
    def data_dir(self) -> Path:
        """The data/ folder holding files stored with :meth:`store_file` (uploads)."""
        return self.folder / DATA_FOLDER

    @property
    def models_dir(self) -> Path:
        """The models/ folder (trained networks)."""
        return self.folder / "models"

    @property
    def predictions_dir(self) -> Path:
        """The predictions/ folder."""
        return self.folder / "predictions"

    @property
    def exports_dir(self) -> Path:
        """The exports/ folder (files for other software)."""
        return self.folder / "exports"

    # ---------------------------------------------------------------- sources
    def add_source(self, path: PathLike, kind: str, **options: Any) -> DataSource:
        """Add a data file and save project.toml; returns the new :class:`DataSource`.

        ``kind`` is "segy" (options iline, xline, fill_missing), "geotiff" (categorical,
        reference) or "hyperspectral" (variable, band_axis, time; ENVI, .mat or NetCDF by
        file suffix). A relative ``path`` is relative to the project folder. Options that
        are None are left out. Raises :class:`DataError` for an unknown kind or option, a
        missing file, or a source kind that cannot be combined with those already added.
        """
        if kind not in SOURCE_KINDS:
            raise DataError(f"data kind {kind!r} unknown; use one of {list(SOURCE_KINDS)}")
        unknown = sorted(set(options) - set(SOURCE_KINDS[kind]))
        if unknown:
            raise DataError(
                f"option(s) {unknown} do not apply to {kind} data; allowed: "
                f"{list(SOURCE_KINDS[kind])}"
            )
        clean = {k: v for k, v in options.items() if v is not None}
        for key, value in clean.items():
            if not isinstance(value, str | int | float | bool | list):
                raise DataError(
                    f"option {key}={value!r} cannot be stored in {PROJECT_FILE}; use a string, "
                    "number, true/false or a list"
                )
        resolved = self.resolve(path)
        if not resolved.exists():
            hint = "" if Path(path).is_absolute() else (
                " (relative paths are taken from the project folder; give an absolute path "
                "for data elsewhere)"
            )
            raise DataError(f"data file {resolved} not found{hint}")
        others = {s.kind for s in self.sources}
        if others and others != {kind}:
            raise DataError(
                f"this project holds {sorted(others)[0]} data; {kind} data cannot be loaded "
                "with it, so make a separate project for it"
            )
        source = DataSource(str(path), kind, clean)
        self.sources.append(source)
        self.save()
        return source

    def store_file(self, name: str, content: bytes) -> str:
        """Keep ``content`` as data/<name> in the project folder (atomically); returns that path.

        For files handed in by upload: the returned relative path is what :meth:`add_source`
        takes. ``name`` must be a plain file name; an existing file of that name is replaced.
        """
        clean = plain_file_name(name)
        try:
            self.data_dir.mkdir(exist_ok=True)
        except OSError as err:
            raise DataError(
                f"cannot create {self.data_dir}: {err.strerror}; check the project folder"
            ) from err
        with atomic_output(self.data_dir / clean) as tmp:
            tmp.write_bytes(content)
        return f"{DATA_FOLDER}/{clean}"

    def remove_source(self, index: int) -> DataSource:
        """Remove source number ``index`` (0-based) and save project.toml."""
        if not 0 <= index < len(self.sources):
            raise DataError(f"no data source #{index}; the project has {len(self.sources)}")
        gone = self.sources.pop(index)
        self.save()
        return gone

    def load_data(self) -> xr.DataArray:
        """Load the project's data with the reader for its kind (imported lazily).

        segy: ``read_segy`` (iline, xline, samples); several volumes of one survey are
        stacked as input channels (band, iline, xline, samples), checked to share the grid
        (:func:`io_adapters.gridmatch.stack_volumes`); geotiff: ``stack_rasters`` of all
        sources (band, y, x); hyperspectral: ``read_envi`` / ``read_mat`` / ``read_netcdf``
        per source, several dates combined with ``stack_dates`` (y, x, band, time).
        """
        if not self.sources:
            raise DataError(f"project {self.name!r} has no data yet; add a data source first")
        kind = self.sources[0].kind
        paths = [self.resolve(s.path) for s in self.sources]
        for p in paths:
            if not p.exists():
                raise DataError(
                    f"data file {p} of project {self.name!r} is missing; put it back or edit "
                    f"the path in {self.project_file}"
                )
        if kind == "segy":
            volumes = [_read_survey(p, s.options) for p, s in zip(paths, self.sources,
                                                                  strict=True)]
            if len(volumes) == 1:
                return volumes[0]
            # several volumes of one survey: input channels on one grid
            return stack_volumes(volumes, _unique_names(paths), [p.name for p in paths])
        if kind == "geotiff":
            from .geotiff import stack_rasters

            flags = [bool(s.options.get("categorical", False)) for s in self.sources]
            ref = next((i for i, s in enumerate(self.sources) if s.options.get("reference")), 0)
            return stack_rasters(paths, reference=ref, categorical=flags)
        cubes = [_read_hyperspectral(p, s.options) for p, s in zip(paths, self.sources,
                                                                    strict=True)]
        if len(cubes) == 1:
            return cubes[0]
        from .hyperspectral import stack_dates

        times = [s.options.get("time") for s in self.sources]
        if all(t is None for t in times):
            return stack_dates(cubes)
        return stack_dates(cubes, [str(t) if t is not None else p.name
                                   for t, p in zip(times, paths, strict=True)])

    # ---------------------------------------------------------------- labels
    def save_labels(self, labelset: LabelSet) -> Path:
        """Save the project's labels atomically to :attr:`labels_path`."""
        self.labels_path.parent.mkdir(parents=True, exist_ok=True)
        return save_labels(self.labels_path, labelset)

    def has_labels(self) -> bool:
        """True once labels were saved."""
        return self.labels_path.is_file()

    def save_boreholes(self, wells: list[Borehole]) -> Path:
        """Save the well table (positions and intervals) atomically to :attr:`boreholes_path`."""
        self.boreholes_path.parent.mkdir(parents=True, exist_ok=True)
        return save_boreholes(self.boreholes_path, wells)

    def load_boreholes(self) -> list[Borehole]:
        """The saved well table; an empty list when none was saved yet."""
        if not self.boreholes_path.is_file():
            return []
        return load_boreholes(self.boreholes_path)

    def load_labels(self, grid: xr.DataArray | None = None) -> LabelSet:
        """The saved labels, or an empty LabelSet on the data grid when none are saved yet.

        ``grid`` (the already loaded data) avoids loading the data again and is checked
        against the saved labels' shape.
        """
        if self.has_labels():
            labels = load_labels(self.labels_path)
            if grid is not None and labels.shape != spatial_shape(grid):
                raise DataError(
                    f"labels in {self.labels_path} have shape {labels.shape} but the data grid "
                    f"is {spatial_shape(grid)}; were the data sources changed? Move the label "
                    "file away to start new labels"
                )
            return labels
        data = grid if grid is not None else self.load_data()
        return LabelSet.empty(spatial_shape(data), [], spatial_dims(data))

    @staticmethod
    def labels_as_cells(grid: xr.DataArray) -> bool:
        """True for data read chunk by chunk (a survey store) with more cells than
        :data:`LABEL_GRID_LIMIT`: its labels are kept as a list of cells
        (:meth:`load_label_cells`), never as a grid of the survey's size."""
        shape = spatial_shape(grid)
        return grid.chunks is not None and int(np.prod(shape, dtype=np.int64)) > LABEL_GRID_LIMIT

    def save_label_cells(self, labels: LabelCells) -> Path:
        """Save listed labels atomically to :attr:`label_cells_path`."""
        self.label_cells_path.parent.mkdir(parents=True, exist_ok=True)
        return save_label_cells(self.label_cells_path, labels)

    def load_label_cells(self, grid: xr.DataArray) -> LabelCells:
        """The saved labels as a list of cells (none saved: no cells, no classes), checked
        against the data grid; a label grid saved earlier is listed cell by cell."""
        if self.label_cells_path.is_file():
            labels = load_label_cells(self.label_cells_path)
            where = self.label_cells_path
        elif self.has_labels():
            labels, where = LabelCells.of(load_labels(self.labels_path)), self.labels_path
        else:
            return LabelCells.empty(spatial_shape(grid), spatial_dims(grid))
        if labels.shape != spatial_shape(grid):
            raise DataError(
                f"labels in {where} have shape {labels.shape} but the data grid is "
                f"{spatial_shape(grid)}; were the data sources changed? Move the label file "
                "away to start new labels"
            )
        return labels


def _unique_names(paths: list[Path]) -> list[str]:
    """File names without suffix, made unique (near.sgy, far.sgy -> near, far)."""
    names: list[str] = []
    for p in paths:
        name, k = p.stem, 2
        while name in names:
            name, k = f"{p.stem}-{k}", k + 1
        names.append(name)
    return names


def _read_hyperspectral(path: Path, options: dict[str, Any]) -> xr.DataArray:
    from .hyperspectral import read_envi, read_mat, read_netcdf

    suffix = path.suffix.lower()
    if suffix in _MAT_SUFFIXES:
        return read_mat(path, options.get("variable"), band_axis=options.get("band_axis"))
    if suffix in _NETCDF_SUFFIXES:
        return read_netcdf(path, options.get("variable"))
    return read_envi(path)


# The file system allows 255 bytes per name; the temporary ".<name>.<random>.part" of an
# atomic write needs about 15 of them.
MAX_NAME_BYTES = 240


def plain_file_name(name: str) -> str:
    """``name`` (an upload's file name) if it is a plain, storable file name, else DataError.

    Refused: folders in the name, '.', '..', NUL or other control characters, and names
    longer than :data:`MAX_NAME_BYTES` bytes in UTF-8.
    """
    text = str(name)
    clean = Path(text).name.strip()
    if not clean or clean in (".", "..") or clean != text.strip():
        raise DataError(
            f"{text!r} is not a plain file name; give a name without folders, e.g. 'cube.hdr'"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in clean):
        raise DataError(f"the file name {clean!r} contains control characters (such as NUL); "
                        "rename the file")
    size = len(clean.encode("utf-8", "surrogateescape"))
    if size > MAX_NAME_BYTES:
        raise DataError(f"the file name {clean[:40]!r}... is {size} bytes long; rename the file "
                        f"to at most {MAX_NAME_BYTES} bytes")
    return clean


def _inside(root: Path, relative: str) -> bool:
    """Whether ``relative`` (as stored in project.toml) stays inside the project ``root``."""
    target = Path(relative).expanduser()
    if target.is_absolute():
        return False
    return (root / target).resolve().is_relative_to(root.resolve())
