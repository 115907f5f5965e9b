"""The lesson tests' report: how many mistakes and alternatives each module's catalogue holds, and how
long its harness run took (tests/lessons/test_mistakes.py records them; xdist carries them back)."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    rows = [
        value
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", "") == "call"
        for name, value in getattr(report, "user_properties", [])
        if name == "mistake_catalogue"
    ]
    if not rows:
        return
    terminalreporter.section("mistake catalogues")
    for row in sorted(rows, key=lambda r: r["module"]):
        terminalreporter.write_line(
            f"{row['module']}: {row['mistakes']} mistakes, {row['alternatives']} alternatives, "
            f"checked in {row['seconds']:.0f} s (one kernel)"
        )
    terminalreporter.write_line(
        f"total: {sum(r['mistakes'] for r in rows)} mistakes, {sum(r['alternatives'] for r in rows)} alternatives"
    )
