"""What a client needs to talk to the companion server, and all that REAPER's Python loads:
the signed wire protocol (:mod:`.protocol`), the connection file (:mod:`.connection`) and the
client (:mod:`.client`).

Standard library and pyzmq only - never numpy, ``dsp`` or the rest of ``server`` (checked by
``tests/test_architecture.py``), so it runs inside REAPER's embedded Python.
"""
