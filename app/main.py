"""The fhn app: ``streamlit run app/main.py`` (``make run`` / ``python -m app.launch``).

A multipage app: :data:`PAGES` lists the pages by section; every page shares the
project panel in the sidebar (:func:`app.ui.sidebar`). To add a page, put its script in
``app/screens/`` and add an ``st.Page`` to a section here. (Not ``app/pages/``: that
folder name turns on Streamlit's legacy page discovery for deep links.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# streamlit runs this file as a script: make the repository importable as a package root
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from app import ui  # noqa: E402


def _icon():
    """Three strata in the demo's class colours, drawn here: a :material: page icon is
    fetched from fonts.gstatic.com by the browser, and the app must work offline."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    for i, colour in enumerate(("#f2c14e", "#e4632d", "#4c78a8")):
        draw.rounded_rectangle((2, 3 + 9 * i, 29, 10 + 9 * i), radius=2, fill=colour)
    return img


st.set_page_config(page_title="fhn", page_icon=_icon(), layout="wide")

LABEL_PAGE = st.Page("screens/label.py", title="View & label", icon=":material/brush:",
                     url_path="label")


def _home() -> None:
    """The root URL opens View & label at its own URL, so that every page (this one too)
    answers at ``/<page>``: the default page of ``st.navigation`` has no URL of its own."""
    st.switch_page(LABEL_PAGE, query_params=dict(st.query_params))


PAGES: dict[str, list[st.Page]] = {
    "": [st.Page(_home, title="fhn", url_path="home", default=True, visibility="hidden")],
    "Project": [
        st.Page("screens/data.py", title="Project & data", icon=":material/folder_open:",
                url_path="data"),
    ],
    "Interpret": [
        LABEL_PAGE,
        st.Page("screens/wells.py", title="Wells & validation", icon=":material/straighten:",
                url_path="wells"),
    ],
    "Model": [
        st.Page("screens/train.py", title="Train", icon=":material/model_training:",
                url_path="train"),
        st.Page("screens/results.py", title="Results", icon=":material/insights:",
                url_path="results"),
        st.Page("screens/view3d.py", title="3D view", icon=":material/view_in_ar:",
                url_path="view3d"),
        st.Page("screens/export.py", title="Export", icon=":material/ios_share:",
                url_path="export"),
    ],
}

page = st.navigation(PAGES)
ui.sidebar(ui.current_project())
try:
    page.run()
except ui.user_errors() as err:  # a bad file or value the page did not catch itself
    ui.show_error(err)
