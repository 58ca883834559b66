# @description ReaMaster: Preview master (loudest 30 s)
# @version 0.2.0
# @author ReaMaster
# @noindex
# @about
#   Masters only the loudest 30 s (the chain decided from the whole mix) in a second or two and inserts it where it lies; A-B compare then plays it at the mix's loudness.
#   Needs the ReaMaster companion (`reamaster reaper install`); see reaper_scripts/README.md.
import os
import sys

try:
    _here = os.path.dirname(os.path.abspath(__file__))
except NameError:  # REAPER does not set __file__: the installer's folder, else where ReaPack put it
    import glob
    _s = os.path.join(RPR_GetResourcePath(), "Scripts")  # noqa: F821
    _here = next((os.path.dirname(p) for p in [os.path.join(_s, "ReaMaster", "reamaster_bootstrap.py")]
                  + sorted(glob.glob(os.path.join(_s, "*", "*", "reamaster_bootstrap.py"))) if os.path.isfile(p)),
                 os.path.join(_s, "ReaMaster"))
if _here not in sys.path:
    sys.path.insert(0, _here)
import reamaster_bootstrap  # noqa: E402

reamaster_bootstrap.run("preview_master")
