"""The cohort's `jupyterhub_config.py`, written by `citykit hub setup` from the hub's state.

The file is complete and commented, section by section: where the hub keeps its state, the address
people open (HTTPS with a given certificate, or behind the city's reverse proxy), the accounts and
nbgrader's groups (`nbgrader-<cohort>` learners, `formgrade-<cohort>` instructors), roles (the
instructors reach the cohort's formgrader service and start or stop learners' servers, never open
them), authentication (first passwords, NativeAuthenticator with instructor approval, or the city's
single sign-on through oauthenticator: Azure AD or any OpenID Connect provider), each person's
server (`citykit.hub.spawner.CohortSpawner`), and two services: the cohort's formgrader (a shared
server as `grader-<cohort>`, as nbgrader documents for several graders) and jupyterhub-idle-culler.

`validate(path)` loads the file with traitlets, as JupyterHub does, and builds the authenticator it
names from that configuration, without contacting anything.
"""

from __future__ import annotations

import json
import os
import pprint
from pathlib import Path

from citykit import paths
from citykit.errors import CitykitError
from citykit.grading import config as grading_config
from citykit.hub.state import HubState
from citykit.lessons.lab import COURSE_JUPYTER_CONFIG, HIDE_GLOBS, INSTRUCTOR_ONLY_EXTENSIONS

OIDC_PROVIDERS = {"azuread": "azuread", "generic": "generic-oauth"}  # CITYKIT_HUB_OIDC -> oauthenticator's entry point
OIDC_ENV = "CITYKIT_HUB_OIDC"
KERNEL = "python3"


def _py(value) -> str:
    if isinstance(value, set):  # sorted, so the file is the same on every run
        return "{" + ", ".join(repr(v) for v in sorted(value)) + "}"
    return pprint.pformat(value, width=110, sort_dicts=False)


def role_args(state: HubState) -> dict[str, list[str]]:
    """The arguments each role's server gets beyond JupyterHub's own."""
    kernels = [f"--MappingKernelManager.default_kernel_name={KERNEL}",
               f"--MappingKernelManager.cull_idle_timeout={state.idle_minutes * 60}",
               "--MappingKernelManager.cull_interval=300"]  # fmt: skip
    learner = [
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.contents_manager_class=citykit.lessons.lab.WorkspaceContentsManager",
        "--ContentsManager.allow_hidden=False",
        f"--ContentsManager.hide_globs={json.dumps(HIDE_GLOBS)}",
        *(f"--ServerApp.jpserver_extensions={name}=False" for name in INSTRUCTOR_ONLY_EXTENSIONS),
        *kernels,
    ]
    # the terminal's shell is not a login shell: /etc/profile would replace the PATH that finds the hub's citykit
    terminal = json.dumps({"shell_command": ["/bin/bash"]})
    instructor = ["--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=False",
                  f"--ServerApp.terminado_settings={terminal}", *kernels]  # fmt: skip
    return {"learner": learner, "instructor": instructor}


def role_environment(state: HubState) -> dict[str, dict[str, str]]:
    path = os.pathsep.join([str(state.bin), str(Path(state.python).parent), "/usr/local/bin", "/usr/bin", "/bin"])
    threads = str(max(1, int(state.cpus)))
    common = {"PATH": path, "CITYKIT_HOME": str(state.data), "CITYKIT_DUCKDB_THREADS": threads}
    return {
        "learner": {**common, "CITYKIT_COURSE": str(state.public)},
        "instructor": {**common, "CITYKIT_COURSE": str(state.course)},
    }


def kit_jupyter_config() -> Path:
    return paths.resource(COURSE_JUPYTER_CONFIG)


def formgrader_service(state: HubState) -> dict:
    """nbgrader's formgrader for several graders: a shared server run as the grader account, named
    after the course, reachable by the `formgrade-<cohort>` group (nbgrader 0.9's documented setup)."""
    env = role_environment(state)["instructor"]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(state.jupyter / "grader"), str(kit_jupyter_config())])
    return {
        "name": state.cohort,
        "display": True,
        "oauth_no_confirm": True,
        "url": f"http://127.0.0.1:{state.service_port}",
        "user": state.grader,
        "cwd": str(state.course / "grading"),  # formgrader reads the course's nbgrader_config.py from here
        "command": [
            "/bin/sh",
            "-c",
            'umask 002 && exec "$0" "$@"',
            *state.module("jupyterhub.singleuser"),
            f"--ServerApp.root_dir={state.course}",
            "--ServerApp.default_url=/formgrader",
            "--ServerApp.jpserver_extensions=nbgrader.server_extensions.assignment_list=False",
        ],
        "environment": env,
    }


def culler_service(state: HubState) -> dict:
    return {
        "name": "idle-culler",
        "command": [
            state.python,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={state.idle_minutes * 60}",
            "--cull-every=300",
        ],
    }


def roles(state: HubState) -> list[dict]:
    learners, instructors = state.learner_group, state.grader_group
    instructor_scopes = ["admin-ui", f"list:users!group={learners}", f"read:users!group={learners}",
                         f"admin:servers!group={learners}", "list:services", f"read:services!service={state.cohort}"]  # fmt: skip
    if state.auth == "native":
        instructor_scopes.append("admin:users")  # approving sign-ups at /hub/authorize
    return [
        {"name": f"formgrader-{state.cohort}", "description": "open the cohort's formgrader",
         "scopes": [f"access:services!service={state.cohort}"], "groups": [instructors]},
        {"name": f"instructor-{state.cohort}", "description": "see and start or stop learners' servers (never open them)",
         "scopes": instructor_scopes, "groups": [instructors]},
        {"name": "idle-culler", "description": "stop idle servers",
         "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"], "services": ["idle-culler"]},
    ]  # fmt: skip


def auth_block(state: HubState) -> list[str]:
    accounts = sorted(state.accounts)
    if state.auth in ("firstuse", "native"):
        lines = [
            'c.JupyterHub.authenticator_class = "citykit.hub.auth.CohortAuthenticator"',
            f"c.CohortAuthenticator.state_file = {str(state.path / 'hub.json')!r}",
            f"c.CohortAuthenticator.first_passwords_file = {str(state.path / 'first-passwords.json')!r}",
            "c.CohortAuthenticator.minimum_password_length = 10",
            "c.CohortAuthenticator.check_common_password = True",
            "c.CohortAuthenticator.allowed_failed_logins = 5  # then 10 minutes before the next try",
            "c.CohortAuthenticator.seconds_before_next_try = 600",
            "c.CohortAuthenticator.open_signup = False",
        ]
        if state.auth == "firstuse":
            return [
                "# First passwords: everyone signs in with the password in first-passwords.csv (root only; hand",
                "# them out), then chooses their own at /hub/change-password. No sign-up page.",
                *lines,
                "c.CohortAuthenticator.enable_signup = False",
                f"c.Authenticator.allowed_users = {_py(set(accounts))}",
            ]
        return [
            "# NativeAuthenticator with approval: instructors sign in with their first password; learners sign",
            "# up at /hub/signup with their account name (accounts.csv) and an instructor approves each at",
            "# /hub/authorize. Sign-up is open to the cohort's account names only (CohortAuthenticator).",
            *lines,
            "c.CohortAuthenticator.enable_signup = True",
            "c.Authenticator.allow_all = True  # the authenticator admits only approved accounts of the cohort",
        ]
    emails = {m.email.lower(): m.account for m in state.members if m.email}
    callback = (state.public_url.rstrip("/") or "https://HUB-ADDRESS") + "/hub/oauth_callback"
    return [
        "# The city's single sign-on (OpenID Connect through oauthenticator). Nothing secret is in this file:",
        "# put the app registration's values in oidc.env (0600, read by the systemd unit):",
        "#   OAUTH_CLIENT_ID=...  OAUTH_CLIENT_SECRET=...  AAD_TENANT_ID=...       (Azure AD / Entra ID)",
        "#   CITYKIT_HUB_OIDC=generic  OIDC_AUTHORIZE_URL=...  OIDC_TOKEN_URL=...  OIDC_USERDATA_URL=...",
        "#                                                                       (any other OIDC provider)",
        "# Register the redirect URI below with the provider. People are matched to their accounts by the",
        "# e-mail in the roster (the provider's preferred_username claim, lower case); nobody else gets in.",
        "import os  # noqa: E402",
        f"c.JupyterHub.authenticator_class = {_py(OIDC_PROVIDERS)}[os.environ.get({OIDC_ENV!r}, 'azuread')]",
        f"c.OAuthenticator.oauth_callback_url = os.environ.get('OAUTH_CALLBACK_URL', {callback!r})",
        'c.OAuthenticator.scope = ["openid", "email", "profile"]',
        'c.OAuthenticator.username_claim = "preferred_username"',
        "c.AzureAdOAuthenticator.tenant_id = os.environ.get('AAD_TENANT_ID', 'TENANT-ID')",
        "c.GenericOAuthenticator.authorize_url = os.environ.get('OIDC_AUTHORIZE_URL', 'https://sso.example.city/authorize')",
        "c.GenericOAuthenticator.token_url = os.environ.get('OIDC_TOKEN_URL', 'https://sso.example.city/token')",
        "c.GenericOAuthenticator.userdata_url = os.environ.get('OIDC_USERDATA_URL', 'https://sso.example.city/userinfo')",
        f"c.Authenticator.username_map = {_py(emails)}",
        f"c.Authenticator.allowed_users = {_py(set(accounts))}",
    ]  # fmt: skip


def render(state: HubState) -> str:
    """The text of the cohort's jupyterhub_config.py."""
    scheme = "https" if state.ssl_cert else "http"
    ip = state.ip if ":" not in state.ip else f"[{state.ip}]"
    learners = [m.account for m in state.learners]
    instructors = [m.account for m in state.instructors]
    lines = [
        f"# JupyterHub for the citykit cohort {state.cohort!r}, written by `citykit hub setup` from {state.path / 'hub.json'}.",
        "# Run it with `citykit hub start --cohort ...` (or the systemd unit beside this file). Change the roster",
        "# or the options and run setup again rather than editing this file: setup rewrites it.",
        "c = get_config()  # noqa: F821",
        "",
        "# --- where the hub keeps its state (this folder)",
        f"c.JupyterHub.db_url = {'sqlite:///' + str(state.path / 'jupyterhub.sqlite')!r}",
        f"c.JupyterHub.cookie_secret_file = {str(state.path / 'jupyterhub_cookie_secret')!r}",
        f"c.JupyterHub.pid_file = {str(state.pid_file)!r}",
        "c.JupyterHub.cleanup_servers = True  # stopping the hub stops everyone's server",
        "",
        "# --- the address people open; the proxy's API and the hub itself stay on loopback",
        f"c.JupyterHub.bind_url = {f'{scheme}://{ip}:{state.port}/'!r}",
    ]
    if state.ssl_cert:
        lines += [f"c.JupyterHub.ssl_cert = {state.ssl_cert!r}", f"c.JupyterHub.ssl_key = {state.ssl_key!r}"]
    else:
        lines += ["# No certificate given: serve it to others only behind the city's HTTPS reverse proxy (see the",
                  "# instructor guide), or run setup again with --ssl-cert and --ssl-key."]  # fmt: skip
    lines += [
        f"c.ConfigurableHTTPProxy.command = [{state.proxy_command!r}]",
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{state.proxy_api_port}'",
        f"c.ConfigurableHTTPProxy.pid_file = {str(state.proxy_pid_file)!r}",
        "c.JupyterHub.hub_ip = '127.0.0.1'",
        f"c.JupyterHub.hub_port = {state.hub_port}",
        "",
        "# --- the cohort's accounts and nbgrader's groups (course id = cohort)",
        f"c.JupyterHub.load_groups = {_py({state.learner_group: {'users': learners}, state.grader_group: {'users': instructors}})}",
        f"c.JupyterHub.load_roles = {_py(roles(state))}",
        "",
        f"# --- sign-in: {state.auth}",
        *auth_block(state),
        "",
        "# --- each person's server, as their own system account (file permissions keep learners apart)",
        'c.JupyterHub.spawner_class = "citykit.hub.spawner.CohortSpawner"',
        f"c.Spawner.cmd = {state.module('jupyterhub.singleuser')!r}",
        'c.Spawner.default_url = "/lab"',
        'c.Spawner.notebook_dir = "~"',
        "c.Spawner.start_timeout = 120",
        "c.Spawner.http_timeout = 90",
        "c.CohortSpawner.interrupt_timeout = 2  # then TERM: Jupyter's graceful stop (kernels shut down)",
        "# Limits per person (the server and all it starts). LocalProcessSpawner itself enforces none of these;",
        "# CohortSpawner does, with cgroups, when the hub runs as root on Linux with writable cgroups (the hub's",
        "# log and `citykit hub status` say when it cannot).",
        f"c.Spawner.mem_limit = '{state.memory_mb}M'",
        f"c.Spawner.cpu_limit = {float(state.cpus)!r}",
        f"c.CohortSpawner.processes = {state.processes}",
        f"c.CohortSpawner.state_file = {str(state.path / 'hub.json')!r}",
        f"c.CohortSpawner.config_root = {str(state.jupyter)!r}",
        f"c.CohortSpawner.kit_config = {str(kit_jupyter_config())!r}",
        f"c.CohortSpawner.role_args = {_py(role_args(state))}",
        f"c.CohortSpawner.role_environment = {_py(role_environment(state))}",
        "",
        "# --- services: the cohort's formgrader (instructors: /services/<cohort>/formgrader) and the idle culler",
        f"c.JupyterHub.services = {_py([formgrader_service(state), culler_service(state)])}",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def load(path: Path, environment: dict[str, str] | None = None):
    """The file's traitlets configuration, loaded as JupyterHub loads it."""
    from traitlets.config.loader import PyFileConfigLoader

    with grading_config.environment(environment or {}):
        try:
            return PyFileConfigLoader(Path(path).name, path=str(Path(path).parent)).load_config()
        except Exception as error:
            raise CitykitError(f"{path} does not load: {type(error).__name__}: {error}") from None


def authenticator_class(config):
    from jupyterhub.app import JupyterHub  # lazy: JupyterHub's app, only to validate a config

    app = JupyterHub(config=config)
    return app.authenticator_class


def validate(path: Path, environment: dict[str, str] | None = None):
    """Load the file and build the authenticator it names with its configuration (traitlets checks
    every value it is given); return the authenticator. Contacts nothing."""
    config = load(path, environment)
    with grading_config.environment(environment or {}):
        cls = authenticator_class(config)
        if cls.__module__.startswith("citykit.hub.auth"):
            return cls  # NativeAuthenticator needs the hub's database: the class and its traits are checked by loading
        try:
            authenticator = cls(config=config)
            for name in authenticator.traits(
                config=True
            ):  # every setting resolved (and checked) now, with this environment
                getattr(authenticator, name)
        except Exception as error:
            raise CitykitError(f"{path}: {cls.__name__} rejects its settings: {error}") from None
        return authenticator
