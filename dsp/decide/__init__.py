"""Deciding: from measurements and the user's intent to a chain, with the reason for every stage.
The planner (:mod:`dsp.decide.master`), styles and profiles, reference matching, revisions,
album and stem mastering, delivery presets and platform previews, and the codec-safe ceiling.

Top layer: may import ``dsp.measure``, ``dsp.process``, ``dsp.io`` and the base modules
(checked by ``tests/test_architecture.py``).
"""
