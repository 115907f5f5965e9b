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


# ------------------------------------------------------------------ issue 16: every bad input is one line


@pytest.mark.parametrize(
    "argv, says",
    [
        (["report", "run", "time-to-close", "-p", "neighborhood=Oak", "-p", "neighborhood=Elm"], "given twice"),
        (
            ["report", "batch", "time-to-close", "--over", "neighborhood", "-p", "neighborhood=Ashgrove"],
            "both batched over (--over) and fixed",
        ),
    ],
)
def test_conflicting_parameters_are_one_line(argv, says, capsys, tmp_path):
    """QA walk: a repeated -p, and -p of the --over parameter, silently picked one value."""
    assert says in one_line_error([*argv, "--out", str(tmp_path / "r")], capsys)
    assert not (tmp_path / "r").exists()


def one_line_error(argv: list[str], capsys) -> str:
    """The CLI in-process: exit 2 (argparse's SystemExit or a CitykitError), one stderr line, no traceback."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


NUMERIC = [
    (["report", "run", "time-to-close", "--timeout", "-5"], "--timeout: must be a number of seconds above 0, not '-5'"),
    (["report", "run", "time-to-close", "--timeout", "0"], "--timeout: must be a number of seconds above 0, not '0'"),
    (["report", "run", "time-to-close", "--timeout", "nan"], "--timeout: must be a number of seconds above 0"),
    (["report", "run", "time-to-close", "--timeout", "inf"], "--timeout: must be a number of seconds above 0"),
    (["report", "batch", "time-to-close", "--over", "period", "--workers", "-3"],
     "--workers: must be a whole number of 1 or more, not '-3'"),
    (["report", "batch", "time-to-close", "--over", "period", "--workers", "0"], "--workers: must be a whole number"),
    (["report", "batch", "time-to-close", "--over", "period", "--workers", "1.5"], "--workers: must be a whole number"),
    (["report", "batch", "time-to-close", "--over", "period", "--timeout", "-5"], "--timeout: must be a number"),
    (["grade", "autograde", "sums", "--workers", "0"], "--workers: must be a whole number of 1 or more"),
    (["grade", "setup", "--cohort", "c", "--roster", "r.csv", "--cell-timeout", "0"], "--cell-timeout: must be"),
    (["grade", "setup", "--cohort", "c", "--roster", "r.csv", "--workers", "-1"], "--workers: must be a whole number of 0"),
    (["grade", "dashboard", "--need-help-below", "2"], "--need-help-below: must be a share from 0 to 1"),
    (["lab", "--port", "70000"], "--port: must be a port number from 1 to 65535"),
]  # fmt: skip
NAMES = [
    (["data", "import", "auto", "export.csv", "--name", ""], "--name: a dataset name is lower-case letters"),
    (["data", "import", "auto", "export.csv", "--name", "  "], "not '  '"),
    (["data", "import-population", "pop.csv", "--name", ""], "--name: a dataset name"),
    (["data", "publish", "riverton", "--to-env", "X", "--as", ""], "--as: a dataset name"),
    (["report", "run", "time-to-close", "-p", "=x"], "expected KEY=VALUE, got '=x'"),
]
PERIODS = [
    ("period=9999-12", "period '9999-12': year 9999 is outside 1900–2100"),
    ("period=2025-06-30/2025-01-01", "the end 2025-01-01 is before the start 2025-06-30"),
    ("period=2025-13", "month 13 does not exist"),
    ("period=2025-02-30/2025-03-31", "2025-02-30 is not a date"),
]


@pytest.mark.parametrize("argv, says", NUMERIC + NAMES)
def test_bad_options_are_refused_by_argparse_on_one_line(argv, says, capsys):
    assert says in one_line_error(argv, capsys)


@pytest.mark.parametrize("parameter, says", PERIODS)
def test_bad_periods_say_what_is_wrong(parameter, says, capsys, riverton):
    assert says in one_line_error(["report", "run", "time-to-close", "-p", parameter], capsys)


def test_user_input_is_quoted_short_and_escaped(capsys, riverton):
    long = one_line_error(["report", "run", "time-to-close", "-p", "neighborhood=" + "x" * 100_000], capsys)
    assert "(100,000 characters)" in long and len(long) < 2_000  # 200 characters of it, not the whole value
    escaped = one_line_error(["report", "run", "time-to-close", "-p", "neighborhood=\x1b[31mred\x1b[0m\nnext"], capsys)
    assert "\x1b" not in escaped and "'\\x1b[31mred\\x1b[0m\\nnext'" in escaped
    module = one_line_error(["report", "run", "\x1b]0;owned\x07" + "m" * 500], capsys)
    assert "\x1b" not in module and "\x07" not in module and "(510 characters)" in module


def test_a_file_that_is_not_a_notebook_is_one_line(tmp_path, capsys):
    text = tmp_path / "notes.ipynb"
    text.write_text("these are notes, not JSON", encoding="utf-8")
    other = tmp_path / "other.ipynb"
    other.write_text('{"cells": "no"}', encoding="utf-8")
    for path in (text, other):
        for command in ("run", "params"):
            line = one_line_error(["report", command, str(path)], capsys)
            assert f"'{path}' is not a Jupyter notebook" in line


def test_loading_no_columns_is_bad_input(riverton):
    import citykit
    from citykit.errors import CitykitError

    with pytest.raises(CitykitError, match=r"columns=\[\] asks for no column"):
        citykit.load("service_requests", columns=[])


def test_a_password_in_a_bad_value_is_never_printed(capsys, riverton):
    line = one_line_error(
        ["report", "run", "time-to-close", "-p", "neighborhood=postgresql://alice:secret@h/db"], capsys
    )
    assert "secret" not in line and "postgresql://***@h/db" in line


def test_a_wrong_course_folder_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CITYKIT_COURSE", str(tmp_path))
    assert "is not a course folder" in one_line_error(["course", "list"], capsys)


def test_a_page_written_outside_the_archive_warns_when_the_archive_holds_releases(tmp_path, monkeypatch, capsys):
    # privacy walk F8: the page said it, the command did not
    import json

    from citykit.reports import run as report_run_module
    from citykit.reports.run import RunResult

    def fake_run(name, parameters, out=None, pdf=False, timeout=None):
        out.mkdir(parents=True, exist_ok=True)
        ledger = {"archive_not_audited": int(name == "equity-report") * 19}
        (out / "manifest.json").write_text(json.dumps({"ledger": ledger}), encoding="utf-8")
        return RunResult(name, tmp_path / "x.ipynb", out, out / "x.ipynb", out / "x.html")

    monkeypatch.setattr(report_run_module, "run_report", fake_run)
    assert main(["report", "run", "equity-report", "--out", str(tmp_path / "elsewhere")]) == 0
    assert "NOT audited against the 19 earlier releases" in capsys.readouterr().err
    assert main(["report", "run", "service-performance", "--out", str(tmp_path / "inside")]) == 0
    assert "NOT audited" not in capsys.readouterr().err


def test_report_help_explains_p_and_params_wraps_at_80_columns(riverton, capsys, monkeypatch):
    """Walk of issue 21: `-p` had no help text, and at 80 columns `report params` cut the allowed
    values ("2025-01-01/2…")."""
    for command in ("run", "batch"):
        with pytest.raises(SystemExit):
            main(["report", command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "-p KEY=VALUE, --parameter KEY=VALUE KEY=VALUE, a report parameter (repeatable)" in text
        assert "`citykit report params REPORT` lists them" in text
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["report", "params", "service-performance"]) == 0
    out = capsys.readouterr().out
    lines = [line.split("│") for line in out.splitlines() if line.startswith("│")]
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    allowed = "".join(cells[4].strip() for cells in lines)  # the column as written, its pieces joined
    assert "2025-01-01/2025-06-30" in allowed
