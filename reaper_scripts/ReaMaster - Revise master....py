# @description ReaMaster: Revise master...
# @version 0.1.0
# @author ReaMaster
# @about
#   Asks what to change in words (e.g. "brighter, quieter"), revises the last ReaMaster master of this project on the server and inserts the new version as a new muted track "ReaMaster master vN" (one undo point; earlier masters stay).
#   Needs the ReaMaster companion (`reamaster reaper install`); see reaper_scripts/README.md.
import os
import sys

try:
    _here = os.path.dirname(os.path.abspath(__file__))
except NameError:  # older REAPER hosts do not set __file__
    _here = os.path.join(RPR_GetResourcePath(), "Scripts", "ReaMaster")  # noqa: F821
if _here not in sys.path:
    sys.path.insert(0, _here)
import reamaster_bootstrap  # noqa: E402

reamaster_bootstrap.run("revise_master")
