# @description ReaMaster: Master mix (one click)
# @version 0.1.0
# @author ReaMaster
# @about
#   Renders the mix (time selection or whole project), masters it on the ReaMaster server with the last-used settings and inserts the master as a new muted track named "ReaMaster master", under one undo point.
#   Needs the ReaMaster companion (`reamaster reaper install`); see reaper_scripts/README.md.
# @provides
#   [nomain] reamaster_bootstrap.py
#   [nomain] reamaster_reaper/*.py
import os
import sys

try:
    _here = os.path.dirname(os.path.abspath(__file__))
except NameError:  # older REAPER hosts do not set __file__
    _here = os.path.join(RPR_GetResourcePath(), "Scripts", "ReaMaster")  # noqa: F821
if _here not in sys.path:
    sys.path.insert(0, _here)
import reamaster_bootstrap  # noqa: E402

reamaster_bootstrap.run("master_one_click")
