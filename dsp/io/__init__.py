"""Files in and out: reading and atomically writing audio (:mod:`dsp.io.audio_io`) and lossy
codec round trips (:mod:`dsp.io.codecs`).

Bottom layer: imports numpy/soundfile, ``dsp.errors`` and ``dsp.params`` only - never
``dsp.measure``, ``dsp.process`` or ``dsp.decide`` (checked by ``tests/test_architecture.py``).
"""
