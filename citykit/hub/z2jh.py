"""Past one machine: the cohort on Kubernetes with Zero to JupyterHub (z2jh), in config.

`citykit hub setup` writes `<hub>/kubernetes/`:

- `values.yaml` for the `jupyterhub` Helm chart: the cohort's accounts, groups and roles
  (`hub.config`, `hub.loadRoles`, `hub.extraConfig`), the servers' image, limits and profiles
  (`singleuser.image`, `.memory`, `.cpu`, `.profileList`), each server's storage plus the shared
  ReadWriteMany volume for nbgrader's exchange (`singleuser.storage`), the learners' nbgrader and
  lab settings (`singleuser.extraFiles`), HTTPS (`proxy.https`) and the idle culler (`cull`);
- `Dockerfile` (and a copy of `environment.yml`): the servers' image, built from the same
  environment as a laptop install, with citykit's wheel and the learners' read-only course view;
- `volumes.yaml`: the two ReadWriteMany claims, the exchange and the instructors' course folder.

The chart cannot be fetched here; `tests/hub/test_z2jh.py` checks the file against the keys z2jh's
own `values.yaml` defines.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from citykit import __version__, paths
from citykit.hub.config import OIDC_PROVIDERS, roles
from citykit.hub.state import HubState

MOUNT = "/srv/citykit"
EXCHANGE_MOUNT = "/srv/nbgrader/exchange"


def _gigabytes(mb: int) -> str:
    return f"{mb / 1024:g}G"


def values(state: HubState, *, host: str = "hub.example.city", registry: str = "registry.example.city") -> dict:
    accounts = sorted(state.accounts)
    ids = {m.account: m.student_id for m in state.learners}
    instructors = [m.account for m in state.instructors]
    course_claim, exchange_claim = f"citykit-{state.cohort}-course", f"citykit-{state.cohort}-exchange"
    hook = "\n".join([
        "# citykit: nbgrader's groups, each learner's roster id, and the course volume for instructors only",
        f"ROSTER_IDS = {ids!r}",
        f"INSTRUCTORS = {instructors!r}",
        f"c.JupyterHub.load_groups = {{{state.learner_group!r}: {{'users': list(ROSTER_IDS)}}, "
        f"{state.grader_group!r}: {{'users': INSTRUCTORS}}}}",
        "",
        "def citykit_pre_spawn(spawner):",
        "    name = spawner.user.name",
        "    spawner.environment['CITYKIT_STUDENT_ID'] = ROSTER_IDS.get(name, name)",
        "    if name in INSTRUCTORS:",
        f"        spawner.volumes = [*spawner.volumes, {{'name': 'course', 'persistentVolumeClaim': {{'claimName': {course_claim!r}}}}}]",
        f"        spawner.volume_mounts = [*spawner.volume_mounts, {{'name': 'course', 'mountPath': '{MOUNT}/course'}}]",
        f"        spawner.environment['CITYKIT_COURSE'] = '{MOUNT}/course'",
        "",
        "c.KubeSpawner.pre_spawn_hook = citykit_pre_spawn",
        "",
    ])  # fmt: skip
    nbgrader_config = "\n".join(
        [
            "# nbgrader settings of the cohort's servers (mounted by z2jh's singleuser.extraFiles)",
            "import os",
            "c = get_config()  # noqa: F821",
            f"c.CourseDirectory.course_id = {state.cohort!r}",
            "c.CourseDirectory.student_id = os.environ.get('CITYKIT_STUDENT_ID', '*')",
            f"c.Exchange.root = {EXCHANGE_MOUNT!r}",
            "",
        ]
    )
    memory, cpus = state.memory_mb, float(state.cpus)
    limits = {"mem_limit": _gigabytes(memory), "mem_guarantee": _gigabytes(memory // 2),
              "cpu_limit": cpus, "cpu_guarantee": round(cpus / 4, 2)}  # fmt: skip
    return {
        "hub": {
            "config": {
                "JupyterHub": {"authenticator_class": OIDC_PROVIDERS["azuread"]},
                "OAuthenticator": {
                    "oauth_callback_url": f"https://{host}/hub/oauth_callback",
                    "scope": ["openid", "email", "profile"],
                    "username_claim": "preferred_username",
                    "client_id": "SET-IN-A-SECRET",
                    "client_secret": "SET-IN-A-SECRET",
                },
                "AzureAdOAuthenticator": {"tenant_id": "TENANT-ID"},
                "Authenticator": {
                    "allowed_users": accounts,
                    "username_map": {m.email.lower(): m.account for m in state.members if m.email},
                },
            },
            "loadRoles": {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in roles(state)},
            "extraConfig": {"citykit-cohort": hook},
        },
        "singleuser": {
            "image": {"name": f"{registry}/citykit-{state.cohort}", "tag": __version__},
            "cmd": "jupyterhub-singleuser",
            "defaultUrl": "/lab",
            "memory": {"limit": limits["mem_limit"], "guarantee": limits["mem_guarantee"]},
            "cpu": {"limit": limits["cpu_limit"], "guarantee": limits["cpu_guarantee"]},
            "storage": {
                "type": "dynamic",
                "capacity": "2Gi",
                "extraVolumes": [{"name": "nbgrader-exchange", "persistentVolumeClaim": {"claimName": exchange_claim}}],
                "extraVolumeMounts": [{"name": "nbgrader-exchange", "mountPath": EXCHANGE_MOUNT}],
            },
            "extraEnv": {
                "CITYKIT_COURSE": f"{MOUNT}/public",
                "CITYKIT_HOME": f"{MOUNT}/data",
                "CITYKIT_DUCKDB_THREADS": "1",
            },
            "extraFiles": {
                "nbgrader-config": {"mountPath": "/etc/jupyter/nbgrader_config.py", "stringData": nbgrader_config},
                "lab-page-config": {
                    "mountPath": "/etc/jupyter/labconfig/page_config.json",
                    "data": {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}},
                },
            },
            "profileList": [
                {
                    "display_name": "Learner",
                    "description": f"{_gigabytes(memory)} memory, {cpus:g} CPU",
                    "default": True,
                    "kubespawner_override": limits,
                },
                {
                    "display_name": "Instructor (formgrade group only)",
                    "description": "the course volume is mounted for instructors only (hub.extraConfig)",
                    "kubespawner_override": {**limits, "mem_limit": _gigabytes(memory * 2), "cpu_limit": cpus * 2},
                },
            ],
        },
        "proxy": {
            "service": {"type": "LoadBalancer"},
            "https": {
                "enabled": True,
                "type": "letsencrypt",
                "hosts": [host],
                "letsencrypt": {"contactEmail": f"it@{host.split('.', 1)[-1]}"},
            },
        },
        "cull": {"enabled": True, "users": False, "timeout": state.idle_minutes * 60, "every": 300},
    }


def volumes(state: HubState) -> list[dict]:
    def claim(name: str, size: str) -> dict:
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": size}}}}  # fmt: skip

    return [claim(f"citykit-{state.cohort}-exchange", "5Gi"), claim(f"citykit-{state.cohort}-course", "10Gi")]


def dockerfile() -> str:
    return "\n".join([
        "# The image of the cohort's servers on Kubernetes (build context: the hub folder's parent of kubernetes/,",
        "# i.e. `docker build -f kubernetes/Dockerfile .` in the hub folder, with citykit's wheel in kubernetes/dist/).",
        "FROM quay.io/jupyter/minimal-notebook:python-3.11",
        "COPY kubernetes/environment.yml /tmp/environment.yml",
        "RUN mamba env update --name base --file /tmp/environment.yml && mamba clean --all --yes",
        "COPY kubernetes/dist/ /tmp/dist/",
        "RUN pip install --no-cache-dir --no-deps /tmp/dist/citykit-*.whl && rm -rf /tmp/dist",
        "# the learners' read-only view of the course and the published (anonymized) data; never the raw exports",
        f"COPY public/ {MOUNT}/public/",
        f"COPY data/published/ {MOUNT}/data/published/",
        "",
    ])  # fmt: skip


def write(state: HubState) -> Path:
    """Write kubernetes/values.yaml, volumes.yaml, Dockerfile and environment.yml; return the folder."""
    folder = state.path / "kubernetes"
    folder.mkdir(exist_ok=True)
    header = (f"# Zero to JupyterHub values for the citykit cohort {state.cohort} (written by `citykit hub setup`).\n"
              "# helm upgrade --install citykit jupyterhub/jupyterhub --values values.yaml; see grading/README.md,\n"
              "# 'Past one machine'. Put the client secret in a Kubernetes secret, never in this file.\n")  # fmt: skip
    (folder / "values.yaml").write_text(header + yaml.safe_dump(values(state), sort_keys=False, allow_unicode=True))
    (folder / "volumes.yaml").write_text(yaml.safe_dump_all(volumes(state), sort_keys=False))
    (folder / "Dockerfile").write_text(dockerfile())
    for source in (paths.kit_course() / "environment.yml", Path(state.source_course or ".") / "environment.yml"):
        if source.is_file():
            shutil.copyfile(source, folder / "environment.yml")
            break
    else:  # an installed citykit without the checkout's file: the same dependencies, from its own metadata
        (folder / "environment.yml").write_text(environment_yml())
    (state.path / ".dockerignore").write_text(DOCKERIGNORE)
    return folder


# The build context is the hub folder: send the daemon only what the Dockerfile copies (never the
# first passwords, JupyterHub's database and cookie secret, oidc.env or the course with its gradebook).
DOCKERIGNORE = """# written by `citykit hub setup`: the image's build context is only what kubernetes/Dockerfile copies
*
!kubernetes/environment.yml
!kubernetes/dist/
!public/
!data/published/
"""


def environment_yml() -> str:
    """A conda environment with citykit's own dependencies (no extras), when no environment.yml ships."""
    from importlib.metadata import PackageNotFoundError, requires  # lazy: only when no environment.yml is found

    try:
        needs = [r for r in requires("citykit") or [] if "extra ==" not in r]
    except PackageNotFoundError:
        needs = []
    body = {"name": "citykit", "channels": ["conda-forge"],
            "dependencies": ["python=3.11", "pip", {"pip": [r.split(";")[0].strip() for r in needs]}]}  # fmt: skip
    return "# citykit's dependencies (written by `citykit hub setup` from the installed package)\n" + yaml.safe_dump(
        body, sort_keys=False
    )
