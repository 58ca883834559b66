"""``reamaster profile build DIR -o my.json`` and ``reamaster profile list``."""

from __future__ import annotations

import argparse

from dsp.decide import profiles

from .common import check_destinations


def run(args: argparse.Namespace) -> int:
    if args.profile_command == "list":
        for name in profiles.builtin_names():
            p = profiles.load_builtin(name)
            print(f"{name:12} {p.n_tracks:3d} tracks  {p.source}")
        return 0
    check_destinations([args.output], inputs=[], force=args.force)
    prof = profiles.build_profile_from_folder(args.folder, name=args.name)
    profiles.save_profile(prof, args.output, force=args.force)
    print(f"profile {prof.name!r} from {prof.n_tracks} tracks -> {args.output} "
          f"(LRA {prof.lra_lu:.1f} LU, PLR {prof.plr_db:.1f} dB)")
    return 0
