"""Processing: the processors (pure ``process(x, sample_rate, params, state=None) -> (y, state)``
functions with frozen parameter dataclasses, shaped like REAPER's ReaEQ, ReaComp, ReaXcomp and
ReaLimit) and the chain (:mod:`dsp.process.chain`), a JSON document rendered block by block.

Middle layer: may import ``dsp.measure`` (the limiter's true-peak detector), ``dsp.errors`` and
``dsp.params`` - never ``dsp.io`` or ``dsp.decide`` (checked by ``tests/test_architecture.py``).
"""
