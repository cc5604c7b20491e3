"""A progress display for engine builds, fed by TensorRT's ``IProgressMonitor`` callbacks.

TensorRT reports nested phases ("Building engine" > "Computing profile costs" > "Timing tactics" ...) with
step counts. On a terminal we redraw one status line (the innermost phase and its step); in a log (not a
terminal) we print each top- or second-level phase once when it starts, so CI logs stay short.
"""

from __future__ import annotations

import sys
import time
from types import ModuleType
from typing import Any, TextIO


def make_progress_monitor(trt: ModuleType, stream: TextIO | None = None, interactive: bool | None = None) -> Any:
    """An ``IProgressMonitor`` of ``trt`` (tensorrt or tensorrt_rtx) writing to ``stream`` (stderr)."""

    class ProgressMonitor(trt.IProgressMonitor):  # type: ignore[name-defined, misc]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.stream = stream or sys.stderr
            self.interactive = self.stream.isatty() if interactive is None else interactive
            self.phases: dict[str, list[Any]] = {}  # name -> [parent, steps, done]
            self.order: list[str] = []
            self.started = time.perf_counter()
            self.seen: list[str] = []  # phase names in start order (what tests and logs can check)
            self._width = 0

        def _depth(self, name: str) -> int:
            depth, parent = 0, self.phases[name][0]
            while parent in self.phases:
                depth, parent = depth + 1, self.phases[parent][0]
            return depth

        def _draw(self) -> None:
            if not self.order:
                line = ""
            else:
                parts = []
                for name in self.order:
                    _, steps, done = self.phases[name]
                    parts.append(f"{name} {done}/{steps}" if steps else name)
                line = f"[{time.perf_counter() - self.started:6.1f}s] " + " > ".join(parts)
            pad = max(self._width - len(line), 0)
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()
            self._width = len(line)

        # TensorRT calls these from its build thread; they must not raise.
        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self.phases[phase_name] = [parent_phase, int(num_steps), 0]
            self.order.append(phase_name)
            self.seen.append(phase_name)
            if self.interactive:
                self._draw()
            elif self._depth(phase_name) <= 1:
                indent = "  " * self._depth(phase_name)
                elapsed = time.perf_counter() - self.started
                self.stream.write(f"[{elapsed:6.1f}s] {indent}{phase_name}\n")
                self.stream.flush()

        def step_complete(self, phase_name: str, step: int) -> bool:
            if phase_name in self.phases:
                self.phases[phase_name][2] = int(step) + 1
            if self.interactive:
                self._draw()
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            self.phases.pop(phase_name, None)
            if phase_name in self.order:
                self.order.remove(phase_name)
            if self.interactive:
                self._draw()
                if not self.order:
                    self.stream.write("\r" + " " * self._width + "\r")
                    self.stream.flush()
                    self._width = 0

    return ProgressMonitor()
