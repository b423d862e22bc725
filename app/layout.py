"""Data as fhn_core sees it: channels first, spatial axes after, and the grid labels live on.

Layouts (channels first, spatial axes after; the label grid is what labels live on):

==========================  ===========================  ==================  ===========
data dims                   2D design (default)          3D design           label grid
==========================  ===========================  ==================  ===========
seismic (iline,xline,samp)  --                           (1, il, xl, s)      (il, xl, s)
raster (band, y, x)         (band, y, x)                 --                  (y, x)
hyperspectral (y, x, band)  (band, y, x)                 (1, band, y, x)     (y, x)
two dates (y,x,band,time)   (time*band, y, x)            (time, band, y, x)  (y, x)
==========================  ===========================  ==================  ===========

Two-date channel order (2D): channel ``t * n_band + b`` is band b of date t, i.e. all bands
of the first date, then all bands of the second, so one date's spectrum stays contiguous
and a model trained on (2000, 2003) applies to any later pair in the same order.
In the 3D layouts the band axis is a spatial axis the labels are embedded in at its middle
slice (eq. 3.20); it is never flipped. The seismic vertical axis is never flipped either.

A Dask-backed seismic survey (an ingested ``.zarr`` store) stays lazy: its layout's data
is a Dask array (:func:`streamed_channels`) that fhn_core reads window by window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from io_adapters.change_channels import (
    DIFFERENCE_CHANNEL,
    MAGNITUDE_CHANNEL,
    date_differences,
    has_change_channels,
    standardised_per_band,
)
from io_adapters.errors import DataError
from io_adapters.seismic_attributes import attributes_of, seismic_channels

__all__ = ["DataLayout", "grid_of", "layout_for_model", "streamed_channels", "to_channels_first"]


@dataclass
class DataLayout:
    """A dataset as fhn_core sees it: channels-first data plus how its axes are used.

    ``data`` (C, *S) float32 (NaN = nodata), a lazy Dask array for a survey store;
    ``spatial_dims`` the names of S;
    ``grid_dims`` the names of the label grid (S without the slice axis);
    ``fixed_axes`` spatial axes never flipped or transposed (vertical or spectral axis);
    ``slice_axis``/``slice_index`` where labels are embedded (eq. 3.20), if anywhere;
    ``channel_names`` one description per channel; ``kind`` seismic/raster/hyperspectral/dates;
    ``vertical_axis`` the grid axis pointing down (seismic samples), None for maps.
    """

    data: np.ndarray
    fixed_axes: tuple[int, ...]
    spatial_dims: tuple[str, ...]
    grid_dims: tuple[str, ...]
    kind: str
    slice_axis: int | None = None
    slice_index: int | None = None
    channel_names: list[str] = field(default_factory=list)
    vertical_axis: int | None = None
    averaged_axis: int | None = None  # labels on every slice of it, logits averaged over it

    @property
    def grid_shape(self) -> tuple[int, ...]:
        s = self.data.shape[1:]
        return tuple(n for a, n in enumerate(s) if a not in (self.slice_axis,
                                                              self.averaged_axis))


def _kind_of_data(da: xr.DataArray) -> str:
    dims = set(map(str, da.dims))
    if {"iline", "xline", "samples"} == dims - {"band"}:  # band: several volumes
        return "seismic"
    if {"y", "x", "band", "time"} == dims:
        return "dates"
    if {"y", "x", "band"} == dims:
        return "raster" if str(da.dims[0]) == "band" else "hyperspectral"
    if {"y", "x"} == dims:
        return "map"
    raise DataError(
        f"{da.attrs.get('source_path', 'the data')} has dims {tuple(da.dims)}; expected "
        "(iline, xline, samples), (band, y, x), (y, x, band) or (y, x, band, time)"
    )


def grid_of(da: xr.DataArray) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The label grid of ``da`` (dims, shape) without converting the data."""
    dims = ("iline", "xline", "samples") if _kind_of_data(da) == "seismic" else ("y", "x")
    return dims, tuple(int(da.sizes[d]) for d in dims)


def to_channels_first(
    da: xr.DataArray,
    *,
    spatial_dims: int | None = None,
    vertical_channel: bool = False,
    envelope_channel: bool = False,
    semblance_channel: bool = False,
    change_channels: bool = False,
    every_slice: bool = False,
) -> DataLayout:
    """Lay ``da`` out as (C, *S) float32 for a 2D or 3D design (see the module's table).

    ``spatial_dims`` None picks the natural layout: 3 for seismic, 2 for everything else.
    3 on hyperspectral data treats the band axis as a spatial axis and embeds the labels
    at its middle slice (eq. 3.20). A layout the data cannot take is a DataError.

    ``vertical_channel`` adds the sample time or depth of seismic data as an input channel,
    ``envelope_channel`` its envelope (instantaneous amplitude), ``semblance_channel`` its
    semblance (trace-to-trace coherence); see :mod:`io_adapters.seismic_attributes` for why
    these help a network trained from a few wells.

    ``change_channels`` (two dates only) adds the per-band differences t2 - t1 and their
    magnitude ||t2 - t1|| (:mod:`io_adapters.change_channels`): in 2D after the dates'
    bands; in 3D (time-lapse: bands an axis, dates channels) the channels are t1, t2,
    t2 - t1 and ||t2 - t1|| (repeated along the bands), each band first standardised over
    both dates. ``every_slice`` (3D layouts with a band axis) labels every band slice instead
    of one (eq. 3.20 embeds the labels at the middle slice) and averages the logits over
    the bands at prediction (``averaged_axis``).
    """
    kind = _kind_of_data(da)
    natural = 3 if kind == "seismic" else 2
    d = natural if spatial_dims is None else int(spatial_dims)
    name = da.attrs.get("source_path", "the data")
    possible = {"seismic": (3,), "raster": (2,), "map": (2,)}.get(kind, (2, 3))
    if d not in possible:
        raise DataError(
            f"{name} is {kind} data {dict(da.sizes)}, which a {d}D design cannot take; use a "
            f"{' or '.join(f'{p}D' for p in possible)} design"
        )
    if (vertical_channel or envelope_channel or semblance_channel) and kind != "seismic":
        raise DataError(f"{name} is {kind} data: the vertical-coordinate, envelope and "
                        "semblance channels are for seismic; switch them off")
    if change_channels and kind != "dates":
        raise DataError(f"{name} is {kind} data: the change channels (t2 - t1, ||t2 - t1||) "
                        "are for two dates of one scene; switch them off")
    if every_slice and (d != 3 or kind not in ("dates", "hyperspectral")):
        raise DataError(f"{name}: labels on every band slice need a 3D design over bands "
                        f"(two dates or a hyperspectral cube), not {kind} data in {d}D; "
                        "switch the option off")
    if kind == "seismic" and da.chunks is not None:  # a survey store: read chunk by chunk
        data, names = streamed_channels(da, vertical_channel=vertical_channel,
                                        envelope_channel=envelope_channel,
                                        semblance_channel=semblance_channel)
        dims = ("iline", "xline", "samples")
        return DataLayout(data, (2,), dims, dims, kind, channel_names=names, vertical_axis=2)
    if kind == "seismic":
        dims = ("iline", "xline", "samples")
        volumes = ([da.isel(band=i) for i in range(da.sizes["band"])] if "band" in da.dims
                   else [da])
        cube = _float32(volumes[0].transpose(*dims))
        channels, names = seismic_channels(
            cube, da.coords["samples"].values, da.attrs.get("vertical_unit", "ms"),
            vertical_channel=vertical_channel, envelope_channel=envelope_channel,
            semblance_channel=semblance_channel)
        if len(volumes) > 1:  # the other volumes of the survey follow the first one
            names[0] = str(da.coords["band"].values[0])
            channels[1:1] = [_float32(v.transpose(*dims)) for v in volumes[1:]]
            names[1:1] = [str(b) for b in da.coords["band"].values[1:]]
        # The vertical (time/depth) axis is never flipped: geology has an up and a down.
        return DataLayout(np.stack(channels), (2,), dims, dims, kind, channel_names=names,
                          vertical_axis=2)
    if kind == "map":
        return DataLayout(_float32(da.transpose("y", "x"))[np.newaxis], (), ("y", "x"),
                          ("y", "x"), kind, channel_names=[str(da.name or "value")])
    bands = [str(b) for b in da.coords["band"].values] if "band" in da.coords else [
        str(i + 1) for i in range(da.sizes["band"])]
    if kind == "dates":
        times = [str(t) for t in da.coords["time"].values] if "time" in da.coords else [
            f"t{i}" for i in range(da.sizes["time"])]
        cube = _float32(da.transpose("time", "band", "y", "x"))
        if d == 3:
            if change_channels:
                cube = standardised_per_band(cube)
                difference, magnitude = date_differences(cube)
                cube = np.concatenate([cube, difference[None],
                                       np.broadcast_to(magnitude, difference.shape)[None]])
                times = [*times, DIFFERENCE_CHANNEL, MAGNITUDE_CHANNEL]
            return _band_volume(cube, kind, times, every_slice)
        t, b = cube.shape[:2]
        names = [f"{times[i]} band {bands[j]}" for i in range(t) for j in range(b)]
        flat = cube.reshape(t * b, *cube.shape[2:])
        if change_channels:
            difference, magnitude = date_differences(cube)
            flat = np.concatenate([flat, difference, magnitude[None]])
            names += [f"{DIFFERENCE_CHANNEL} band {band}" for band in bands]
            names.append(MAGNITUDE_CHANNEL)
        return DataLayout(np.ascontiguousarray(flat), (), ("y", "x"), ("y", "x"), kind,
                          channel_names=names)
    cube = _float32(da.transpose("band", "y", "x"))
    if d == 3:
        return _band_volume(cube[np.newaxis], kind, ["spectrum"], every_slice)
    return DataLayout(cube, (), ("y", "x"), ("y", "x"), kind,
                      channel_names=[f"band {b}" for b in bands])


def streamed_channels(
    da: xr.DataArray,
    *,
    vertical_channel: bool = False,
    envelope_channel: bool = False,
    semblance_channel: bool = False,
):
    """The lazy channels-first Dask array (C, iline, xline, samples) of a seismic survey,
    and the channels' names.

    Amplitude and the vertical (time/depth) channel are computed chunk by chunk; the
    envelope and semblance are not (yet), so asking for them is a DataError with the way out.
    """
    import dask.array as dsa

    from io_adapters.seismic_attributes import VERTICAL_CHANNEL
    from io_adapters.zarr_store import default_chunks

    name = da.attrs.get("source_path", "the data")
    if set(map(str, da.dims)) != {"iline", "xline", "samples"}:
        raise DataError(
            f"{name} has dims {tuple(da.dims)}; surveys are read chunk by chunk only as "
            "seismic (iline, xline, samples); load maps and cubes in memory"
        )
    if envelope_channel or semblance_channel:
        raise DataError(
            f"{name} is read chunk by chunk, and the envelope and semblance channels are not "
            "computed that way yet; switch them off (amplitude and the vertical channel "
            "work), or read the SEG-Y in memory"
        )
    da = da.transpose("iline", "xline", "samples")
    amplitude = da.data
    if not isinstance(amplitude, dsa.Array):
        amplitude = dsa.from_array(np.asarray(amplitude), chunks=default_chunks(da.shape))
    channels, names = [amplitude.astype(np.float32)], ["amplitude"]
    if vertical_channel:
        samples = np.asarray(da.coords["samples"].values, dtype=np.float32)
        samples = dsa.from_array(samples, chunks=(amplitude.chunks[2],))
        channels.append(dsa.broadcast_to(samples, amplitude.shape, chunks=amplitude.chunks))
        names.append(f"{VERTICAL_CHANNEL} ({da.attrs.get('vertical_unit', 'ms')})")
    return dsa.stack(channels), names


def _band_volume(cube: np.ndarray, kind: str, names: list[str],
                 every_slice: bool) -> DataLayout:
    """A (C, band, y, x) 3D layout: labels at the middle band slice (eq. 3.20), or on every
    band slice with the logits averaged over the bands."""
    dims = ("band", "y", "x")
    if every_slice:
        return DataLayout(cube, (0,), dims, ("y", "x"), kind, channel_names=names,
                          averaged_axis=0)
    return DataLayout(cube, (0,), dims, ("y", "x"), kind, 0, cube.shape[1] // 2,
                      channel_names=names)


def layout_for_model(da: xr.DataArray, model: Any) -> DataLayout:
    """The layout a trained model expects: its design's dims and the channels it saw."""
    names = model.info.channel_names
    return to_channels_first(da, spatial_dims=model.design.spatial_dims,
                             change_channels=has_change_channels(names),
                             every_slice=getattr(model.info, "averaged_axis", None) is not None,
                             **attributes_of(names))


def _float32(da: xr.DataArray) -> np.ndarray:
    # A raster or cube larger than memory comes Dask-backed (io_adapters.lazy) and is read
    # whole here, deliberately: training and prediction read maps and cubes in memory; only
    # seismic surveys are streamed chunk by chunk (streamed_channels).
    return np.ascontiguousarray(np.asarray(da.values), dtype=np.float32)
