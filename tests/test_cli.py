"""The command line: bad usage or bad input gives exit 2 and one clear line, never a traceback."""

import subprocess
import sys

import pytest

from citykit.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "citykit", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("data", "course", "lab", "grade", "report"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "args, says",
    [
        (["data", "check", "gotham"], "unknown dataset 'gotham'"),
        (["report", "run", "no-such-module"], "unknown module 'no-such-module'"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, says):
    result = run(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_bad_usage_exits_2():
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "run", "time-to-close", "-p", "no-equals-sign"])
    assert exit_info.value.code == 2
