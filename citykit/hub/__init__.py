"""A cohort on one shared server: JupyterHub with nbgrader, set up from the roster (`citykit hub`).

One folder per cohort, `/srv/citykit-hub/<cohort>/` (`--prefix` chooses the parent), holds
everything the hub needs: `jupyterhub_config.py`, the state file `hub.json` (roster ids mapped to
system accounts), the course folder instructors grade in (`course/`), the published data
(`data/`), the learners' read-only view of the curriculum (`public/`), nbgrader's exchange
(`exchange/`), per-role Jupyter settings (`jupyter/`), the systemd unit and a Zero to JupyterHub
`kubernetes/values.yaml` for the day the cohort outgrows one machine.

Modules, one concern each (each imports only those above it in this list):

- `accounts` — the hub roster (learners and instructors), roster ids to system user names, and
  the system accounts and groups (`useradd`, `groupadd`, `userdel`);
- `state` — the cohort's hub folder and its state file: `HubState`, `load_state`, `hub_dir`;
- `limits` — per-user memory, CPU and process limits with cgroups, where the system lets root make them;
- `exchange` — nbgrader's exchange for the cohort (folders, owners, modes), the course's and each
  learner's nbgrader settings; `collect` is the collect step that checks who made each submission;
- `spawner` — `CohortSpawner`: each server as its own account, with its role's settings and limits;
- `auth` — `CohortAuthenticator`: NativeAuthenticator with first passwords and roster-only sign-up;
- `config` — the generated `jupyterhub_config.py` (accounts, groups, roles, authentication,
  services: the cohort's formgrader and the idle culler) and its validation;
- `systemd` — the unit file and `systemd-analyze verify`;
- `z2jh` — Zero to JupyterHub `values.yaml`, the image's Dockerfile and the exchange's volume claim;
- `helper` — the grading helper instructors run through sudo (autograde sandboxed as root, on root's
  copy of the course's code) and the hub's `citykit` for their terminals, which uses it;
- `service` — start (foreground, with a pid file), stop and status of a cohort's hub;
- `lifecycle` — `setup`, `add_learner` and `teardown`, which the command line calls.
"""
