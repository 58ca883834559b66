"""``reamaster reaper install|uninstall|index|doctor``: glue to ``install/reaper_install.py`` (a source
checkout) and ``install/reaper_doctor.py``."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load(name: str) -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "install" / f"{name}.py"
    have = sys.modules.get(name)
    if have is not None and Path(getattr(have, "__file__", "") or ".").resolve() == path:
        return have
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, mod)
    spec.loader.exec_module(mod)
    return mod


def run(args: argparse.Namespace) -> int:
    ri = _load("reaper_install")
    res = Path(args.resource_path) if args.resource_path else ri.resource_path()
    try:
        if args.what == "index":
            base = args.base_url or ri.git_base_url()
            if not base:
                print("reamaster: no --base-url given and no git remote 'origin' to derive one from", file=sys.stderr)
                return 2
            Path(args.output).write_text(ri.reapack_index(base), encoding="utf-8")
            print(f"wrote {args.output} (files under {base})")
        elif args.what == "install":
            dest = ri.install(res, force=args.force)
            print(f"installed the ReaMaster actions in {dest} (restart REAPER to see them)")
            print(ri.set_python(res, force=args.force) if args.set_python else ri.python_advice(res))
            print("check it with: reamaster reaper doctor" + (f" --resource-path {res}" if args.resource_path else ""))
        elif args.what == "uninstall":
            done = ri.uninstall(res, force=args.force)
            print(f"removed the ReaMaster actions from {res}")
            for d in done:
                print(f"reaper.ini {d}")
        else:
            doctor = _load("reaper_doctor")
            ok, lines = doctor.check(res)
            print("\n".join(lines))
            return 0 if ok else 1
    except ri.InstallError as exc:
        print(f"reamaster: {exc}", file=sys.stderr)
        return 2
    return 0
