"""nbgrader's collect step for a cohort on a hub: a submission counts only when its owner is the
account of the roster id it is filed under.

nbgrader names a submission `<student_id>+<assignment>+<time>+<random>` with the id the learner's
own settings give, and its collect only *warns* when the folder's owner differs. On a hub every
learner's server sets their id, but a learner can edit their own settings, so anyone could submit
under someone else's id. `OwnerCheckedCollect` (named in the course's `nbgrader_config.py` by
`citykit hub setup`) keeps, per roster id, the newest submission made by that id's account
(`accounts`: roster id -> account) and leaves the others out with an error in nbgrader's log and a
`REFUSED` line on standard error (the instructor's terminal: `citykit grade collect` keeps nbgrader's
log to itself). An id
with no account on the list (an instructor's test submission) is collected as nbgrader would.
"""

from __future__ import annotations

import glob
import os
import pwd
import sys

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default.collect import ExchangeCollect, groupby
from traitlets import Dict, Unicode


def owner(path: str) -> str:
    try:
        return pwd.getpwuid(os.stat(path).st_uid).pw_name
    except (KeyError, OSError):
        return "(unknown)"


class OwnerCheckedCollect(ExchangeCollect):
    accounts = Dict(Unicode(), default_value={}, help="roster id -> the account whose submissions count for it").tag(
        config=True
    )

    def init_src(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        student_id = self.coursedir.student_id if self.coursedir.student_id else "*"
        pattern = os.path.join(self.inbound_path, f"{student_id}+{self.coursedir.assignment_id}+*")
        records = []
        self.refused = []
        for path in glob.glob(pattern):
            record = self._path_to_record(path)
            expected = self.accounts.get(record["username"])
            made_by = owner(path)
            if expected is not None and made_by != expected:
                self.refused.append((record["filename"], made_by))
                self.log.error(
                    "Not collected: %s is filed under %s but was made by the account %s, not %s",
                    record["filename"], record["username"], made_by, expected,
                )  # fmt: skip
                # also straight to the instructor's terminal: `citykit grade collect` keeps nbgrader's log to itself
                print(f"collect: REFUSED a submission of {self.coursedir.assignment_id} filed under {record['username']} "
                      f"but made by the account {made_by}, not {expected} ({record['filename']})", file=sys.stderr)  # fmt: skip
                continue
            records.append(record)
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
            try:
                self.duedate = gradebook.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                self.duedate = None
        self.src_records = []
        for group in groupby(records, lambda item: item["username"]).values():
            newest_first = self._sort_by_timestamp(group)
            if self.duedate is not None and self.before_duedate:
                on_time = [r for r in newest_first if r["timestamp"] <= self.duedate]
                newest_first = on_time or newest_first
            self.src_records.append(newest_first[0])
