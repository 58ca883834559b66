"""``reamaster reaper install|uninstall|index``: glue to ``install/reaper_install.py`` (a source checkout)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from types import ModuleType


def _ri() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "install" / "reaper_install.py"
    spec = importlib.util.spec_from_file_location("reaper_install", path)
    assert spec is not None and spec.loader is not None, path
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(args: argparse.Namespace) -> int:
    ri = _ri()
    res = Path(args.resource_path) if args.resource_path else ri.resource_path()
    if args.what == "index":
        Path(args.output).write_text(ri.reapack_index(), encoding="utf-8")
        print(f"wrote {args.output}")
    elif args.what == "install":
        dest = ri.install(res)
        print(f"installed the ReaMaster actions in {dest} (restart REAPER to see them)")
        print(ri.set_python(res) if args.set_python else ri.python_advice(res))
    else:
        ri.uninstall(res)
        print(f"removed the ReaMaster actions from {res}")
        if ri.restore_ini(res):
            print(f"restored {res / 'reaper.ini'} from {ri.BACKUP}")
    return 0
