"""The cohort hub's systemd unit: `citykit-hub-<cohort>.service`, written by setup into the hub folder.

Install it with `systemctl link <hub>/citykit-hub-<cohort>.service && systemctl enable --now
citykit-hub-<cohort>`. It runs `citykit hub start` in the foreground (JupyterHub, which starts the
proxy, the services and people's servers) and `citykit hub stop` to stop, which stops all of them.
Secrets for single sign-on come from `oidc.env` beside it (0600), never from the unit itself.
`verify` runs `systemd-analyze verify` where it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from citykit.hub.state import HubState


def render(state: HubState) -> str:
    citykit = " ".join(state.module("citykit"))
    where = f"--cohort {state.cohort} --prefix {state.path.parent}"
    return "\n".join([
        "[Unit]",
        f"Description=citykit JupyterHub for the cohort {state.cohort}",
        "Documentation=file://" + str(state.course / "curriculum" / "guides" / "instructor.md"),
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        "User=root",
        f"WorkingDirectory={state.path}",
        f"Environment=PATH={state.bin}:{Path(state.python).parent}:/usr/local/bin:/usr/bin:/bin",
        f"EnvironmentFile=-{state.path / 'oidc.env'}",
        f"ExecStart={citykit} hub start {where}",
        f"ExecStop={citykit} hub stop {where}",
        "KillMode=mixed",
        "TimeoutStopSec=60",
        "Restart=on-failure",
        "RestartSec=5",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])  # fmt: skip


def verify(unit: Path) -> str | None:
    """Problems `systemd-analyze verify` finds in the unit ("" when none); None where it is not installed."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return None
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    if done.returncode == 0:
        return ""
    return " ".join((done.stderr + done.stdout).split()) or f"exit code {done.returncode}"
