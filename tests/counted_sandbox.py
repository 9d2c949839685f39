"""A real sandbox backend that notes each start: its phase label and the stdout it returned."""

from __future__ import annotations

from dataclasses import dataclass, field

from prism.sandbox.spec import RunResult, RunSpec, Sandbox


@dataclass
class Counted:
    """The real backend, counting its starts (declares what bubblewrap declares)."""

    inner: Sandbox
    labels: list[str] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)
    name: str = "bubblewrap"
    accepts_stdin: bool = True
    live_stdout: bool = True

    def run(self, spec: RunSpec) -> RunResult:
        self.labels.append(spec.labels["prism.phase"])
        result = self.inner.run(spec)
        self.stdout.append(result.stdout)
        return result
