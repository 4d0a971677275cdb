"""Predefined class lists, as LabelImg reads them: ``classes.txt`` or
``predefined_classes.txt`` (one class name per line) in an image folder or its label folder.

The names feed the class picker (in file order, before any other class); a broken file is
reported with its name and the problem, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: File names looked for, in order of preference.
CLASS_LIST_NAMES = ("predefined_classes.txt", "classes.txt")
#: A class list larger than this is not a class list (a stray log or data file).
MAX_CLASS_LIST_BYTES = 1 << 20


@dataclass(frozen=True)
class ClassList:
    """The classes found (file order, no duplicates), the files they came from, and one
    message per file that could not be read."""

    names: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)


def read_class_list(path: str | Path) -> list[str]:
    """Class names of ``path``, one per line (surrounding spaces and empty lines dropped,
    first occurrence kept). Raises ``ValueError`` naming the file and the problem."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CLASS_LIST_BYTES:
            raise ValueError(f"{path}: not a class list ({size:,} bytes; one class name per line expected)")
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text at byte {exc.start}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if "\x00" in text:
        raise ValueError(f"{path}: binary data, not a class list")
    names = [line.strip() for line in text.splitlines()]
    return list(dict.fromkeys(name for name in names if name))


def find_class_lists(folders: Iterable[str | Path]) -> ClassList:
    """Read the class lists of ``folders`` (an image folder, its label folder, ...): every
    file of :data:`CLASS_LIST_NAMES` that exists, names merged in order."""
    names: dict[str, None] = {}
    files: list[Path] = []
    problems: list[str] = []
    for folder in dict.fromkeys(Path(f) for f in folders):
        for file_name in CLASS_LIST_NAMES:
            path = folder / file_name
            if not path.is_file():
                continue
            try:
                names.update(dict.fromkeys(read_class_list(path)))
            except ValueError as exc:
                problems.append(str(exc))
                continue
            files.append(path)
    return ClassList(tuple(names), tuple(files), tuple(problems))


__all__ = ["CLASS_LIST_NAMES", "ClassList", "find_class_lists", "read_class_list"]
