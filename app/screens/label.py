"""View & label: slice through the data, paint labels on it, undo; every edit saved at once."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from app import ui, viewer, views
from app.labelling import TOOLS, canvas_to_cells, strokes_from_canvas, strokes_on_section
from io_adapters.label_geometry import slice_to_volume_index

try:  # a components-v2 package: importable only inside a running streamlit script
    from streamlit_drawable_canvas import st_canvas
except Exception:  # noqa: BLE001 - any failure means: no painting canvas, show the image
    st_canvas = None

# One set of controls, the app's (tools, Undo): the canvas component draws its own toolbar
# (upload, undo, redo, trash) inside its shadow root and offers no option to leave it out,
# so a style put into that root hides it.
HIDE_CANVAS_TOOLBAR = """<script>
(() => {
  const css = ".dc-toolbar{display:none !important}";
  const hide = () => document.querySelectorAll("*").forEach((el) => {
    const root = el.shadowRoot;
    if (root && root.querySelector(".dc-toolbar") && !root.querySelector("style[data-fhn]")) {
      const style = document.createElement("style");
      style.dataset.fhn = "1";
      style.textContent = css;
      root.appendChild(style);
    }
  });
  if (!window.fhnCanvasToolbarHidden) {
    // a new canvas (each stroke re-keys it) builds its toolbar inside its shadow root,
    // where no observer of the page sees it: look again a few times a second
    window.fhnCanvasToolbarHidden = window.setInterval(hide, 250);
  }
  hide();
})();
</script>"""
# tests (and scripts) put canvas json_data here, in pixels of the section (without the axes)
INJECT_KEY = "fhn_canvas_inject"
NONCE_KEY = "fhn_canvas_nonce"
FLASH_KEY = "fhn_label_flash"
INSPECT_KEY = "fhn_inspect_cell"
TOOL_TITLES = {"brush": "Brush", "line": "Line", "point": "Point", "eraser": "Eraser",
               "inspect": "Inspect"}
TOOL_ICONS = {"brush": ":material/brush:", "line": ":material/timeline:",
              "point": ":material/adjust:", "eraser": ":material/ink_eraser:",
              "inspect": ":material/my_location:"}

project, grid, editor = ui.open_label_editor()

# the first well's position makes the first inline/crossline shown a telling one
defaults = {}
if editor.wells and views.is_volume(grid):
    defaults = {"inline": editor.wells[0].position[0], "crossline": editor.wells[0].position[1]}

settings = views.default_settings(grid)
head, display_col = st.columns([8, 1], vertical_alignment="bottom")
with head:
    view = viewer.view_controls(grid, defaults=defaults, project=project)
    viewer.layer_controls(grid, settings)
with display_col:
    viewer.display_popover(grid, settings)

canvas_col, side = st.columns([3, 1.35], gap="medium")

with side:
    tool_name = st.pills(
        "Tool", list(TOOLS), format_func=lambda t: f"{TOOL_ICONS[t]} {TOOL_TITLES[t]}",
        key="fhn_tool", default="brush", required=True, width="stretch", wrap=True,
    ) or "brush"
    tool = TOOLS[tool_name]
    radius = st.slider("Brush radius (cells)", 0, 12, 1, key="fhn_radius",
                       disabled=not tool.paints,
                       help="0 paints single cells; the radius is in cells of the data grid")
    names = editor.labels.class_names
    if names:
        class_id = st.radio("Class", range(len(names)), format_func=names.__getitem__,
                            key="fhn_class") or 0
        class_id = min(int(class_id), len(names) - 1)
    else:
        class_id = -1
        st.warning("No classes yet: add one in the class table below.")

positions = viewer.section_positions(grid, defaults=defaults)
clips = viewer.clip_ranges(grid, settings, ui.data_signature(project))


def render() -> tuple:
    return views.render_section(
        grid, view, settings, clips, labels=editor.labels.labels, colours=editor.colours,
        split=editor.labels.split, wells=editor.wells, positions=positions,
        cursor=(st.session_state.get(INSPECT_KEY) or None) if tool.name == "inspect" else None,
    )


image, size = render()
colourbar = views.data_colourbar(grid, settings, clips)


def apply_drawing(json_data: dict | None, offset: tuple[int, int] = (0, 0), tool=tool,
                  class_id=class_id, radius=radius, view=view, size=size) -> None:
    """Put what was drawn on the canvas into the labels (saved), or read the cell.

    ``offset`` (left, top): where the section starts on the canvas (the axes' margins)."""
    strokes = strokes_on_section(strokes_from_canvas(json_data), offset, size)
    if not strokes:
        return
    st.session_state[NONCE_KEY] = st.session_state.get(NONCE_KEY, 0) + 1
    if tool.name == "inspect":
        cell = canvas_to_cells(strokes[-1], size, view, editor.shape)[0]
        if view.axis is not None:
            cell = np.array([c[0] for c in slice_to_volume_index(editor.shape, view.axis,
                                                                 view.index, [cell])])
        st.session_state[INSPECT_KEY] = [int(c) for c in cell]
        return
    try:
        n = editor.paint(strokes, view, size, tool, class_id, radius)
    except ui.user_errors() as err:
        st.session_state[FLASH_KEY] = ("error", str(err))
        return
    what = "Erased" if tool.erases else f"Painted {editor.labels.class_names[class_id]} on"
    where = "the map" if view.axis is None else f"{view.title.lower()} {view.index}"
    st.session_state[FLASH_KEY] = ("ok", f"{what} {n:,} cells of {where} — saved" if n
                                   else "Nothing changed (those cells had that label already)")


injected = st.session_state.pop(INJECT_KEY, None)
if injected is not None:
    apply_drawing(injected)
    image, size = render()
framed = views.frame_section(image, grid, view, colourbar)

with canvas_col:
    nonce = st.session_state.get(NONCE_KEY, 0)
    canvas_key = f"fhn-canvas-{view.kind}-{view.index}-{tool.name}-{nonce}"
    scale = size[0] / views.section_shape(editor.shape, view)[1]
    colour = editor.colours[class_id] if class_id >= 0 else "#000000"
    r, g, b = views.hex_to_rgb(colour)
    stroke = "rgba(255, 255, 255, 0.85)" if tool.erases else f"rgba({r}, {g}, {b}, 0.75)"

    def on_draw(key: str = canvas_key, offset: tuple[int, int] = framed.offset) -> None:
        # one canvas (key) carries one drawing: later events of it (the canvas reporting its
        # background fit, a repeated send) must not paint it twice
        done = st.session_state.setdefault("fhn_canvas_done", set())
        if key in done:
            return
        value = st.session_state.get(key) or {}
        drawing = value.get("drawing") if isinstance(value, dict) else None
        raw = (drawing or {}).get("raw") if isinstance(drawing, dict) else None
        if strokes_from_canvas(raw):
            done.add(key)
        apply_drawing(raw, offset)

    if st_canvas is not None:
        st.html(HIDE_CANVAS_TOOLBAR, unsafe_allow_javascript=True)
        st_canvas(
            background_image=Image.fromarray(framed.image),
            width=framed.image.shape[1],
            height=framed.image.shape[0],
            drawing_mode=tool.canvas_mode,
            stroke_width=max(2, int(round((2 * radius + 1) * scale))) if tool.paints else 2,
            stroke_color=stroke if tool.paints else "rgba(0, 0, 0, 0.9)",
            fill_color=stroke,
            point_display_radius=max(2, int(round((radius + 0.5) * scale))),
            update_streamlit=True,
            key=canvas_key,
            on_change=on_draw,
        )
    else:
        ui.image(framed.image, width=framed.image.shape[1])
        st.caption("The painting canvas (streamlit-drawable-canvas) is not available here; "
                   "the section is shown without painting.")
    flash = st.session_state.get(FLASH_KEY)
    if flash:
        (st.error if flash[0] == "error" else st.caption)(flash[1])
    if editor.labels.split is not None:
        st.caption("Validation labels (held back from training) are drawn fainter; set the "
                   "split on **Wells & validation**.")

with side:
    undo_col, total_col = st.columns(2, vertical_alignment="center")
    if undo_col.button("Undo", icon=":material/undo:", disabled=not editor.can_undo(),
                       width="stretch", key="fhn_undo"):
        restored = editor.undo()
        st.session_state[NONCE_KEY] = st.session_state.get(NONCE_KEY, 0) + 1
        st.session_state[FLASH_KEY] = ("ok", f"Undid the last edit ({restored:,} cells) — saved")
        st.rerun()
    total_col.metric("Labelled cells", f"{editor.total():,}")
    st.markdown(ui.class_legend_html(editor.counts_table()), unsafe_allow_html=True)

    cell = st.session_state.get(INSPECT_KEY)
    if cell is not None and len(cell) == len(editor.shape) and all(
            0 <= c < n for c, n in zip(cell, editor.shape, strict=True)):
        st.markdown("**Under the cursor**")
        readout = views.cell_readout(grid, cell, editor.labels.labels,
                                     editor.labels.class_names, band=settings.band,
                                     time=settings.time)
        st.markdown(ui.readout_html(readout), unsafe_allow_html=True)
    elif tool.name == "inspect":
        st.caption("Click on the section to read the value and coordinates there.")

    with st.expander("Class table", icon=":material/palette:", expanded=not names,
                     key="fhn-class-table"):
        ui.class_table(editor)
