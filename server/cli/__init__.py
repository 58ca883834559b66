"""The ``reamaster`` command line: :mod:`.parser` declares every command's arguments,
:mod:`.main` parses and runs one command module (``analyze``, ``master``, ``remote`` - master
through the server -, ``revise``, ``album``, ``stems``, ``profile``, ``demo``, ``serve``,
``reaper``), imported only when it runs. :mod:`.common` holds what commands share.

May import ``dsp``, :mod:`server.service`, :mod:`server.wire` and :mod:`server.daemon`; nothing
imports this package but the entry point (checked by ``tests/test_architecture.py``).
"""
