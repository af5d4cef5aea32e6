"""The generation task: next-token prediction on tokenized jets, everything specific to it.

- :mod:`~hepscale.tasks.generation.spec`: :data:`SPEC`, the task's spec;
- :mod:`~hepscale.tasks.generation.trainer`: the trainer's task (GPT on the token dataset);
- :mod:`~hepscale.tasks.generation.study`, :mod:`~hepscale.tasks.generation.plan`,
  :mod:`~hepscale.tasks.generation.prepare`: the study's sections and checks, its plan, and the
  tokens and SWD reference it prepares from the jets;
- :mod:`~hepscale.tasks.generation.evaluate`, :mod:`~hepscale.tasks.generation.resolution`: the SWD
  of a run's samples against real jets at the model's resolution;
- :mod:`~hepscale.tasks.generation.results`, :mod:`~hepscale.tasks.generation.cli`: the summary
  and figures of a study, and what ``hepscale evaluate`` prints.
"""

from __future__ import annotations

from hepscale.tasks.generation.spec import SPEC

__all__ = ["SPEC"]
