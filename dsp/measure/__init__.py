"""Measuring a signal: loudness (BS.1770 / EBU R128), true peak, third-octave spectrum, resonances,
and the one-call :func:`dsp.measure.analysis.analyze` that gathers what the planner reads.

Bottom layer: imports numpy/scipy/numba, ``dsp.errors`` and ``dsp.params`` only - never
``dsp.io``, ``dsp.process`` or ``dsp.decide`` (checked by ``tests/test_architecture.py``).
"""
