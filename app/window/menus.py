"""The window's menus and toolbar, laid out from named actions (the actions themselves
belong to the window and to the parts that act: labelling, canvas, fine-tune, COCO)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu

#: Short toolbar texts (menus keep the full ones): the whole toolbar fits 1366 px.
TOOLBAR_TEXTS = {
    "open_images": "Open",
    "open_folder": "Folder",
    "open_model": "Model",
    "save": "Save",
    "previous": "Previous",
    "next": "Next",
    "create": "Box",
    "zoom_fit": "Fit",
    "zoom_1to1": "1:1",
    "zoom_in": "Zoom In",
    "zoom_out": "Zoom Out",
    "detect": "Detect",
    "auto_detect": "Auto-detect",
    "about_model": "About Model",
}

#: Toolbar order; None is a separator.
TOOLBAR = (
    "open_images",
    "open_folder",
    "open_model",
    "save",
    None,
    "previous",
    "next",
    None,
    "create",
    None,
    "zoom_fit",
    "zoom_1to1",
    "zoom_in",
    "zoom_out",
    None,
    "detect",
    "auto_detect",
    "about_model",
)


def _add(menu: QMenu, actions: Mapping[str, QAction], names: Iterable[str | None]) -> None:
    for name in names:
        menu.addSeparator() if name is None else menu.addAction(actions[name])


def build_menus(
    window: QMainWindow,
    actions: Mapping[str, QAction],
    *,
    recent: QMenu,
    format_actions: Sequence[QAction],
    export_actions: Sequence[QAction],
    edit_actions: Sequence[QAction],
    docks: Sequence[QDockWidget],
) -> None:
    """File, Edit, View, Detect, Model and Help menus, and the main toolbar, of ``window``."""
    menu = window.menuBar()
    file_menu = menu.addMenu("&File")
    _add(file_menu, actions, ("open_images", "open_folder", "open_model"))
    file_menu.addMenu(recent)
    _add(file_menu, actions, (None, "save", "change_save_dir"))
    file_menu.addMenu("Label &Format").addActions(list(format_actions))
    file_menu.addAction(actions["autosave"])
    file_menu.addMenu("&Export Labelled Set As").addActions(list(export_actions))
    _add(file_menu, actions, (None, "quit"))

    edit_menu = menu.addMenu("&Edit")
    _add(edit_menu, actions, ("undo", "redo", None))
    edit_menu.addActions(list(edit_actions))
    _add(edit_menu, actions, ("accept_all", "verify"))

    view_menu = menu.addMenu("&View")
    _add(view_menu, actions, ("next", "previous", None, "zoom_fit", "zoom_1to1", "zoom_in", "zoom_out", None))
    for dock in docks:
        view_menu.addAction(dock.toggleViewAction())

    _add(menu.addMenu("&Detect"), actions, ("detect", "auto_detect"))
    _add(menu.addMenu("&Model"), actions, ("coco_model", "finetune"))
    _add(menu.addMenu("&Help"), actions, ("shortcuts", "about_model"))

    for name, text in TOOLBAR_TEXTS.items():
        action = actions[name]
        if not action.toolTip() or action.toolTip() == action.iconText():
            action.setToolTip(action.text().replace("&", "").rstrip("…"))
        action.setIconText(text)
    toolbar = window.addToolBar("Main")
    toolbar.setObjectName("MainToolBar")
    for name in TOOLBAR:
        toolbar.addSeparator() if name is None else toolbar.addAction(actions[name])


__all__ = ["TOOLBAR", "TOOLBAR_TEXTS", "build_menus"]
