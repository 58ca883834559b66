"""The mastering service shared by the command line and the server's workers: the decision path
and file writing (:mod:`.mastering`, :mod:`.stems`), the report (:mod:`.report`) and the revision
session (:mod:`.session`).

May import ``dsp`` and :mod:`server.wire`; never :mod:`server.daemon` or :mod:`server.cli`
(checked by ``tests/test_architecture.py``). :mod:`.session`'s document builder stays standard
library only at import time, because the REAPER side uses it.
"""
