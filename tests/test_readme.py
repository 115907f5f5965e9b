"""The README's commands work from a clean clone: `make demo` (twice: the second run rebuilds nothing)."""

import os
import re
import shlex
import shutil
import site
import subprocess
import sys
import sysconfig

import pytest

from citykit import paths
from citykit.cli import build_parser

README = paths.course_root() / "README.md"


def _code_blocks(markdown: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", markdown, flags=re.S)


def test_quick_start_shows_exactly_the_two_commands_first():
    first_block = _code_blocks(README.read_text())[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]


def test_every_make_target_in_the_readme_exists():
    targets = set(re.findall(r"^([a-z-]+):", (paths.course_root() / "Makefile").read_text(), flags=re.M))
    mentioned = set(re.findall(r"\bmake ([a-z-]+)", README.read_text()))
    assert mentioned and mentioned <= targets, mentioned - targets


def test_every_citykit_command_in_the_readme_parses():
    parser = build_parser()
    lines = [
        line.split(" #")[0].strip()
        for block in _code_blocks(README.read_text())
        for line in block.splitlines()
        if "citykit " in line and "conda" not in line
    ]
    assert lines
    for line in lines:
        for command in line.split("&&"):
            words = command.strip().split()
            if not words or not words[0].endswith("citykit"):
                continue
            parser.parse_args(shlex.split(command.strip())[1:])  # exits 2 on a stale command


@pytest.mark.slow
def test_make_demo_from_a_clean_clone(tmp_path):
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("needs git and make")
    clone = tmp_path / "citykit"
    subprocess.run(["git", "clone", "--quiet", str(paths.course_root()), str(clone)], check=True)
    # A fresh venv that sees this environment's packages, so `make setup` installs only citykit itself.
    subprocess.run([sys.executable, "-m", "venv", str(clone / ".venv")], check=True)
    venv_site = next((clone / ".venv" / "lib").glob("python*/site-packages"))
    (venv_site / "outer.pth").write_text("\n".join([sysconfig.get_paths()["purelib"], *site.getsitepackages()]))
    env = {k: v for k, v in os.environ.items() if k not in ("CITYKIT_HOME", "CITYKIT_COURSE", "VIRTUAL_ENV")}
    # The shared packages' scripts and Jupyter data files (nbconvert templates) live in this prefix.
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env['PATH']}"
    env["JUPYTER_PATH"] = os.path.join(sys.prefix, "share", "jupyter")

    first = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    report = clone / "reports" / "demo" / "04-time-to-close.html"
    html = report.read_text()
    assert "<img" in html and "BEGIN SOLUTION" not in html and "highlight hl-ipython3" not in html
    assert (clone / "grading" / "release" / "04-time-to-close" / "04-time-to-close.ipynb").exists()
    assert "make lab" in first.stdout

    second = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "up to date" in second.stdout and "built riverton" not in second.stdout
