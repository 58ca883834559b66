"""ReaMaster's companion server, its client and the ``reamaster`` command line, in four rooms:

* :mod:`server.wire` - protocol, connection file and client (stdlib + pyzmq; what REAPER loads);
* :mod:`server.service` - the mastering service shared by the command line and the workers;
* :mod:`server.daemon` - the server loop and the jobs its workers run;
* :mod:`server.cli` - the ``reamaster`` command line, one module per command.

Imports flow cli -> daemon -> service -> wire (and everything may use ``dsp``); nothing flows back.
"""
