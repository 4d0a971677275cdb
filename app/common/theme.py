"""Light or dark, as the system says: on a dark colour scheme (Qt 6.5+
``QStyleHints.colorScheme``) the app uses the Fusion style with a dark palette, and it
follows the system when the scheme changes while it runs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory


def dark_palette() -> QPalette:
    """A dark palette for the Fusion style (readable text, visible disabled state). Fusion
    outlines check boxes and fields in the window colour darkened, so fields (Base) are a
    little lighter than the window: the outline stays visible."""
    palette = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    colors = {
        role.Window: QColor(40, 40, 43),
        role.WindowText: QColor(230, 230, 230),
        role.Base: QColor(54, 54, 58),
        role.AlternateBase: QColor(62, 62, 66),
        role.ToolTipBase: QColor(60, 60, 64),
        role.ToolTipText: QColor(230, 230, 230),
        role.PlaceholderText: QColor(140, 140, 140),
        role.Text: QColor(230, 230, 230),
        role.Button: QColor(58, 58, 62),
        role.ButtonText: QColor(230, 230, 230),
        role.BrightText: QColor(255, 90, 90),
        role.Light: QColor(75, 75, 80),
        role.Midlight: QColor(62, 62, 66),
        role.Mid: QColor(40, 40, 43),
        role.Dark: QColor(25, 25, 27),
        role.Shadow: QColor(0, 0, 0),
        role.Highlight: QColor(42, 130, 218),
        role.HighlightedText: QColor(255, 255, 255),
        role.Link: QColor(90, 160, 255),
        role.LinkVisited: QColor(170, 130, 255),
    }
    for color_role, color in colors.items():
        palette.setColor(color_role, color)
    for color_role in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(group.Disabled, color_role, QColor(125, 125, 125))
    palette.setColor(group.Disabled, role.Highlight, QColor(80, 80, 80))
    return palette


def is_dark_scheme(app: QGuiApplication) -> bool:
    """Whether the system asks for a dark colour scheme."""
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


class ColorSchemeFollower:
    """Applies the palette the system's colour scheme asks for, now and on every change.
    On a light (or unknown) scheme it restores the style and palette the app started with."""

    def __init__(self, app: QApplication) -> None:
        self._app = app
        self._light_style = app.style().name()
        self._light_palette = QPalette(app.palette())
        self.dark = False
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: self.apply())
        self.apply()

    def apply(self, *, dark: bool | None = None) -> None:
        """Use the dark palette when ``dark`` (default: when the system scheme is dark)."""
        dark = is_dark_scheme(self._app) if dark is None else dark
        if dark == self.dark:
            return
        self.dark = dark
        if dark:
            self._app.setStyle(QStyleFactory.create("Fusion"))
            self._app.setPalette(dark_palette())
        else:
            self._app.setStyle(QStyleFactory.create(self._light_style) or QStyleFactory.create("Fusion"))
            self._app.setPalette(self._light_palette)


def follow_color_scheme(app: QApplication) -> ColorSchemeFollower:
    """Start following the system's colour scheme (keep the returned object alive)."""
    return ColorSchemeFollower(app)


__all__ = ["ColorSchemeFollower", "dark_palette", "follow_color_scheme", "is_dark_scheme"]
