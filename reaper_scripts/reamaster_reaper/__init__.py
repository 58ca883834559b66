# @noindex
"""ReaMaster's REAPER side: the logic behind the actions in ``reaper_scripts/``.

Runs inside REAPER's embedded Python, so it imports only the standard library, python-reapy and
``server.wire.client`` (stdlib + pyzmq) - never numpy or ``dsp``. Every wait on the server happens in
``RPR_defer`` steps (``reapy.defer``) with the client's non-blocking ``poll``.
"""

__version__ = "0.2.0"
