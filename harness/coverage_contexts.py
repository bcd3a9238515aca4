"""A coverage.py plugin loaded *inside the gateway process* when the harness measures a Python
gateway (`harness run --gateway-coverage`): what runs is labelled with the lane and claim the
harness is judging at that moment, so the source matrix can say which claims reach which modules.

The harness writes the label to a file and sends SIGUSR1; the handler switches coverage's context
to it (Coverage.switch_context: everything measured from then on, in every thread, carries it) and
acknowledges by writing the label to `<file>.ack`. (A `dynamic_context` switcher would not do: its
context ends when the frame that started it returns, which in an event loop is at once.)
Configured by coverage's rcfile: `plugins = harness.coverage_contexts` and a section
`[harness.coverage_contexts]` with `context_file = PATH`.
"""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import coverage


def _switcher(path: Path):
    def switch(signum: int, frame: Any) -> None:
        try:
            label = path.read_text().strip()
        except OSError:
            return
        cov = coverage.Coverage.current()
        if cov is not None and label:
            cov.switch_context(label)
        Path(str(path) + ".ack").write_text(label)
    return switch


def coverage_init(reg: Any, options: dict[str, str]) -> None:
    signal.signal(signal.SIGUSR1, _switcher(Path(options["context_file"])))
