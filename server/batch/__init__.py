"""Catalog mastering on Dask (``reamaster batch``): thousands of tracks, one decision path.

What it is: the orchestration of many masters - a source listing (folder tree, glob, CSV/Parquet
manifest), the tasks the Dask workers run (scan and hash, master one track, or an album in two
phases: analyse map, decide reduce, render map), a ledger (one row per track; per-track record
files written atomically by the workers, compacted by the client into ``ledger.parquet``) and the
catalog report. Every master goes through :mod:`server.service.mastering` (single tracks) and
:mod:`dsp.decide.album` (albums), so a batch output is sample-identical to ``reamaster master`` /
``reamaster album`` for the same file and options.

What it may import: ``dsp``, ``server.service``, ``dask``/``distributed``, ``pyarrow`` and the
standard library. Not ``server.cli`` nor ``server.daemon`` (the command line builds the options and
calls :func:`server.batch.run.run_batch`). Audio never travels through the scheduler or the client:
tasks carry paths and small dicts; workers read and write the files themselves.
"""
