"""`reamaster reaper install|uninstall|index`: glue to install/reaper_install.py (a source checkout)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _ri():
    path = Path(__file__).resolve().parent.parent / "install" / "reaper_install.py"
    spec = importlib.util.spec_from_file_location("reaper_install", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def add_reaper_parser(subparsers) -> None:
    p = subparsers.add_parser("reaper", help="install the REAPER actions, or build the ReaPack index")
    p.add_argument("what", choices=["install", "uninstall", "index"])
    p.add_argument("--resource-path", default=None, help="REAPER's resource folder (default: per OS)")
    p.add_argument("--set-python", action="store_true",
                   help="install: also point REAPER's Python settings in reaper.ini at this interpreter "
                        "(backed up to reaper.ini.reamaster-backup; uninstall restores it)")
    p.add_argument("-o", "--output", default="index.xml", help="index: where to write index.xml")
    p.set_defaults(func=cmd_reaper)


def cmd_reaper(args) -> int:
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
