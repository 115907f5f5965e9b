"""Errors that the command line turns into one clear line and an exit code."""

from __future__ import annotations


class CitykitError(Exception):
    """Bad usage or bad input: the CLI prints the message and exits 2."""

    exit_code = 2


class WorkFailed(CitykitError):
    """The work itself failed (a report cell raised, a quality gate failed): exit 1."""

    exit_code = 1
