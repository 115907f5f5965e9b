"""`citykit demo`: what a new user runs first, inside a course folder.

Builds the synthetic city (a no-op when current), generates the student version of module 04 and
runs it as a report, then says where each output is. `make demo` calls the same command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from citykit import paths

DEMO_MODULE = "time-to-close"


def run_demo(*, scale: str = "default", out: Path | None = None, say: Callable[[str], None] = print) -> Path:
    """Build, generate and run; returns the report's HTML page."""
    from citykit.data.generate import build
    from citykit.grading.assignments import generate
    from citykit.reports.run import run_report

    root = paths.course_root()
    out = Path(out) if out is not None else root / "reports" / "demo"
    say("1/3 building the synthetic city (a minute or two the first time; nothing is rebuilt when current)")
    say(str(build(seed=311, scale=scale)))
    say(f"2/3 generating the student version of {DEMO_MODULE}")
    released = generate(DEMO_MODULE)
    say(f"3/3 running {DEMO_MODULE} as a report")
    result = run_report(DEMO_MODULE, {}, out=out)
    say("")
    say("Done. Outputs:")
    say(
        f"  published data     {paths.citykit_home() / 'published' / 'riverton'}   (raw export, with fake personal data: {paths.citykit_home() / 'raw'})"
    )
    say(
        f"  student version    {released[0] if released else root / 'grading' / 'release'}   (module 04; all: citykit grade generate)"
    )
    say(f"  report             {result.html}")
    say("Open JupyterLab on the released course with:  citykit lab   (in a clone of the repository: make lab)")
    return result.html
