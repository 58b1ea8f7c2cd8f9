"""Reading a build folder back (report.json; graph.json + weights.npz) for inspect, stream and flash: a missing,
corrupt or inconsistent file is one line naming it, never a traceback."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeflow.errors import EdgeflowError

if TYPE_CHECKING:
    from edgeflow.ir.graph import Graph

REPORT_FILE = "report.json"


class BuildFolderError(EdgeflowError):
    """A build folder's file is missing, unreadable or not what `edgeflow build` writes."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise BuildFolderError(f"{path}: cannot read ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise BuildFolderError(f"{path}: corrupt, not valid JSON ({_first_line(e)}); rebuild with "
                               "`edgeflow build`") from None


def read_report(build: str | Path) -> dict[str, Any]:
    """report.json of a build, checked to be an object the report tables can show."""
    from edgeflow.commands.build import render_firmware, render_memory, render_report

    path = Path(build) / REPORT_FILE
    if not path.is_file():
        raise BuildFolderError(f"{build}: not a build directory (no {REPORT_FILE}); run `edgeflow build` first")
    report = _read_json(path)
    if not isinstance(report, dict):
        raise BuildFolderError(f"{path}: corrupt, a JSON {type(report).__name__} instead of the build report object")
    try:  # the tables read every field they show; a wrong type anywhere surfaces here, named after the file
        render_report(report, str(build))
        render_memory(report)
        render_firmware(report)
    except (TypeError, KeyError, AttributeError, ValueError, IndexError) as e:
        raise BuildFolderError(f"{path}: corrupt, unexpected content ({_first_line(e)}); rebuild with "
                               "`edgeflow build`") from None
    return report


def report_target(build: str | Path) -> str | None:
    """The target a build was made for (report.json), None when the folder has no report.json."""
    if not (Path(build) / REPORT_FILE).exists():
        return None
    target = read_report(build).get("target")
    if not isinstance(target, str):
        raise BuildFolderError(f"{Path(build) / REPORT_FILE}: corrupt, no \"target\" string")
    return target


def read_graph(build: str | Path) -> Graph:
    """graph.json + weights.npz of a build as a Graph; each constant's shape checked against graph.json."""
    import numpy as np

    from edgeflow.ir.graph import GRAPH_FILE, WEIGHTS_FILE, Graph

    d = Path(build)
    gpath, wpath = d / GRAPH_FILE, d / WEIGHTS_FILE
    for p in (gpath, wpath):
        if not p.is_file():
            raise BuildFolderError(f"{d}: not a build directory (no {p.name}); run `edgeflow build` first")
    doc = _read_json(gpath)
    try:
        with np.load(wpath, allow_pickle=False) as npz:
            consts = {k: npz[k] for k in npz.files}
    except OSError as e:
        raise BuildFolderError(f"{wpath}: cannot read ({e.strerror or e})") from None
    except (ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise BuildFolderError(f"{wpath}: corrupt, not a readable .npz archive ({_first_line(e)}); rebuild with "
                               "`edgeflow build`") from None
    try:
        graph = Graph.from_json(json.dumps(doc), consts)
        if not graph.inputs or not graph.outputs:
            raise ValueError("no graph inputs or outputs")
        for name in (*graph.inputs, *graph.outputs):
            graph.tensors[name]
    except EdgeflowError as e:
        raise BuildFolderError(f"{gpath}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise BuildFolderError(f"{gpath}: corrupt, not an edgeflow graph ({_first_line(e)}); rebuild with "
                               "`edgeflow build`") from None
    for t in graph.tensors.values():
        if t.data is not None and tuple(t.data.shape) != tuple(t.shape):
            raise BuildFolderError(f"{wpath}: constant of tensor '{t.name}' has shape {list(t.data.shape)}, "
                                   f"{GRAPH_FILE} says {list(t.shape)}; rebuild with `edgeflow build`")
    return graph
