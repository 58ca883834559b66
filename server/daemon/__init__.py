"""The companion server process: the ZeroMQ loop, its queue and worker processes
(:mod:`.loop`), and the jobs the workers run (:mod:`.jobs`). Started by ``reamaster serve`` or
``python -m server.daemon``.

May import :mod:`server.wire`, :mod:`server.service` and ``dsp``; never :mod:`server.cli`
(``__main__`` excepted: it is an entry point). Checked by ``tests/test_architecture.py``.
"""
