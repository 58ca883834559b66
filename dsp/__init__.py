"""ReaMaster's signal processing and mastering decisions (no network, no REAPER).

Conventions used everywhere in this package:

* **Array layout**: audio is a 2-D ``numpy`` array of shape ``(channels, samples)``
  (channels first, samples last, C-contiguous). Mono is ``(1, n)``. Whole tracks are
  kept as ``float32``; processors compute blocks in ``float64``.
* **Sample rate** is always passed explicitly as ``sample_rate`` (Hz, int), right after
  the signal; every other option is keyword-only.
* **Units are in names**: ``gain_db``, ``freq_hz``, ``attack_ms``, ``ceiling_dbtp``,
  ``loudness_lufs``, ``bw_oct``.
* **Processors** are pure functions ``process(x, sample_rate, params, state=None)
  -> (y, state)`` with a frozen parameter dataclass; ``state`` carries filter memory
  between blocks so block-wise processing equals whole-signal processing.
* **Errors** derive from :class:`dsp.errors.ReaMasterError` and carry a stable ``code``.

The package follows the data, bottom to top:

* ``dsp.errors``, ``dsp.params``, ``dsp.streams`` - the base: the exception hierarchy, parameter
  checks, and running a stream of blocks a few blocks ahead on the second core;
* ``dsp.io`` - reading and writing files; ``dsp.measure`` - measuring a signal;
* ``dsp.process`` - the processors and the chain that renders them (may use ``measure``);
* ``dsp.decide`` - the mastering decisions (may use all of the above);
* ``dsp.demo`` - the built-in demo mix (base only).

A module imports only from its own layer or those below it; ``tests/test_architecture.py``
checks this. Submodules are imported lazily by their users; ``import dsp`` stays cheap.
"""

__version__ = "0.1.0"
