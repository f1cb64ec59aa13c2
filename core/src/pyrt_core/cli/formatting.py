"""``--format`` for the listing commands (ps, images, and later volume ls, network ls):
docker's conventions in one place, so each command only says what its rows are.

- no ``--format`` or ``table``: the command's own table (printed without this module);
- ``json``: one JSON object per row and line, docker's field names;
- ``table TEMPLATE``: a header row and aligned columns (``table {{.ID}}\\t{{.Names}}``);
- any other text: a Go template run once per row (``{{.ID}} {{.Names}}``).

The template engine (:mod:`pyrt_core.cli.gotemplate`) is imported only when a template
is given, so ``pyrt ps`` imports neither it nor ``json``.
"""
from __future__ import annotations

import sys


def add_format_flag(p, what: str = "rows") -> None:
    p.add_argument("--format", default=None, metavar="FORMAT",
                   help=f"'table' (default), 'table TEMPLATE', 'json' (one object per line) or a "
                        f"Go template over the {what} (e.g. '{{{{.ID}}}}')")


def is_default(fmt: str | None) -> bool:
    """Whether ``fmt`` asks for the command's own table."""
    return fmt is None or fmt.strip() == "table" or fmt == ""


def check(fmt: str | None) -> None:
    """Parse ``fmt`` before any work is done: a bad template is one line and exit 125."""
    if is_default(fmt) or fmt == "json":
        return
    from . import gotemplate

    gotemplate.parse(gotemplate.row_template(fmt)[0])


def print_rows(fmt: str, rows: list, headers: dict | None = None, out=None) -> None:
    """Print ``rows`` (dicts of docker's fields) for a ``--format`` that is not the default."""
    out = out or sys.stdout
    if fmt == "json":
        import json

        for r in rows:
            out.write(json.dumps(_plain(r), ensure_ascii=False, separators=(",", ":"),
                                 sort_keys=True) + "\n")
        return
    from .gotemplate import render_rows

    for line in render_rows(fmt, rows, headers):
        out.write(line + "\n")


def _plain(row: dict) -> dict:
    """A row without its methods (docker's ``{{.Label "k"}}`` is no JSON field)."""
    return {k: v for k, v in row.items() if not callable(v)}


def print_objects(fmt: str | None, objects: list, out=None) -> None:
    """``inspect``: the objects as an indented JSON array, or ``-f`` run over each of them
    (one line each, as docker prints them)."""
    out = out or sys.stdout
    if not fmt:
        from ..jsonlean import dumps_indented  # json.dumps's text without importing json

        out.write(dumps_indented(objects, 4, ensure_ascii=False) + "\n")
        return
    from . import gotemplate

    tmpl = gotemplate.parse(fmt)  # as docker: no \\t expansion for inspect
    for obj in objects:
        out.write(tmpl.execute(obj) + "\n")
