"""LMS downloads matched to the roster: nbgrader's zip collector with citykit's two plugins.

Learning platforms rename what learners upload, and none of them uses the course's student ids:

| platform | a downloaded file | matched by |
|---|---|---|
| Canvas | `gonzalezmaria_50001_9001001_04-time-to-close.ipynb` (`_late_` after the name when late; `-1`, `-2` after the file name for resubmissions) | `canvas_id` (50001) |
| Moodle | `María González_70001_assignsubmission_file_04-time-to-close.ipynb` | `moodle_id` (70001) |
| Blackboard | `Time to close_mgonzalez_attempt_2026-03-06-17-02-11_04-time-to-close.ipynb` | `blackboard_id` (mgonzalez) |
| any | `maria_g_04-time-to-close.ipynb` (what `citykit grade submit --lms` writes) | `student_id` |

A file is matched by an LMS id of the roster first, then by a roster `student_id` at the start of its
name or just before the notebook's name (longest id first, so ids with `_` work). A file that matches no learner is reported by name and
not collected: it is never filed under an id made up from its name. Each file's time is the zip entry's
time (in the cohort's time zone; a loose file's modification time), or Blackboard's attempt time; a
Canvas `_late_` marker makes it at least one second after the due date. nbgrader's collector keeps the
newest file per learner (a resubmission's `-N` breaks ties) and writes it, with `timestamp.txt`, under
`grading/submitted/<student_id>/<assignment>/`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from nbgrader.plugins.zipcollect import ExtractorPlugin, FileNameCollectorPlugin

from citykit.grading.cohort import Learner, load_cohort, zone

RESUBMISSION = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)$")
BLACKBOARD_TIME = re.compile(r"_attempt_(\d{4})-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)_")


@dataclass(frozen=True)
class Match:
    student_id: str
    notebook: str  # the assignment's notebook this file is (resubmission suffix removed)
    by: str  # which id matched: canvas_id, moodle_id, blackboard_id, student_id
    late: bool = False  # the LMS marked it late
    attempt: int = 0  # the resubmission number (Canvas's -N)
    time: dt.datetime | None = None  # a time written in the name (Blackboard)


def match_file(name: str, learners: list[Learner], notebooks: list[str], tz: dt.tzinfo = dt.UTC) -> Match | None:
    """Which learner and which of the assignment's `notebooks` (file names) a downloaded file is."""
    stem = Path(name).stem
    if Path(name).suffix != ".ipynb":
        return None
    wanted = {Path(n).stem for n in notebooks}
    found = None
    for candidate in wanted:  # the original file name ends the LMS's name: `..._04-time-to-close(-N)`
        tail = re.search(rf"(?:^|_){re.escape(candidate)}(?:-(\d+))?$", stem)
        if tail:
            found = (candidate, int(tail.group(1) or 0), stem[: tail.start()])
            break
    if found is None:
        return None
    notebook, attempt, head = found
    tokens = head.split("_")
    late = "late" in tokens[1:2]  # Canvas: `name_late_userid_submissionid_`
    when = None
    stamp = BLACKBOARD_TIME.search(stem + "_")
    if stamp:
        when = dt.datetime(*map(int, stamp.groups()), tzinfo=tz)
    for key in ("canvas_id", "moodle_id", "blackboard_id"):
        ids = {getattr(learner, key): learner for learner in learners if getattr(learner, key)}
        for token in tokens:
            if token in ids:
                return Match(ids[token].student_id, f"{notebook}.ipynb", key, late, attempt, when)
    for learner in sorted(learners, key=lambda x: -len(x.student_id)):
        sid = learner.student_id
        if head == sid or head.startswith(sid + "_") or head.endswith("_" + sid):  # `grade submit --lms` names
            return Match(learner.student_id, f"{notebook}.ipynb", "student_id", late, attempt, when)
    return None


class TimedExtractor(ExtractorPlugin):
    """nbgrader's extractor, keeping each file's time: a zip entry's time (in the cohort's time zone)
    or a loose file's modification time becomes the extracted file's modification time."""

    tz: dt.tzinfo = dt.UTC

    def extract(self, archive_path: str, extracted_path: str) -> None:
        super().extract(archive_path, extracted_path)
        for root, _, files in os.walk(archive_path):
            target = Path(extracted_path) / Path(root).relative_to(archive_path)
            for file in files:
                source = Path(root) / file
                if source.suffix in self.zip_ext and zipfile.is_zipfile(source):
                    with zipfile.ZipFile(source) as archive:
                        for entry in archive.infolist():
                            extracted = target / source.stem / entry.filename
                            if extracted.is_file():
                                moment = dt.datetime(*entry.date_time, tzinfo=self.tz).timestamp()
                                os.utime(extracted, (moment, moment))
                elif (target / file).is_file():
                    stat = source.stat()
                    os.utime(target / file, (stat.st_atime, stat.st_mtime))


class RosterCollector(FileNameCollectorPlugin):
    """nbgrader's file-name collector, matching names to the roster (`match_file`) instead of a regexp.

    Set `learners`, `notebooks`, `due` and `tz` before use; `unmatched` lists the files no learner
    matched, `matched` what each matched file became."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.learners: list[Learner] = []
        self.notebooks: list[str] = []
        self.due: dt.datetime | None = None
        self.tz: dt.tzinfo = dt.UTC
        self.unmatched: list[str] = []
        self.matched: dict[str, Match] = {}
        self.times: dict[str, str] = {}  # file name -> the submission time given to nbgrader (UTC)

    def _configure_from_cohort(self) -> None:
        """Run by plain `nbgrader zip_collect` (grading/nbgrader_config.py names this plugin): the
        roster, due date and time zone of the active cohort."""
        coursedir = self.parent.coursedir
        root = Path(coursedir.root)
        cohort = load_cohort(course_root=root)
        release = Path(coursedir.format_path(coursedir.release_directory, ".", coursedir.assignment_id))
        self.learners, self.notebooks = list(cohort.learners), [p.name for p in release.glob("*.ipynb")]
        self.tz = zone(cohort.timezone)
        due = cohort.due.get(coursedir.assignment_id)
        self.due = dt.datetime.fromisoformat(due) if due else None

    def collect(self, submitted_file: str) -> dict | None:
        if not self.learners:
            self._configure_from_cohort()
        name = Path(submitted_file).name
        found = match_file(name, self.learners, self.notebooks, self.tz)
        if found is None:
            if Path(name).suffix == ".ipynb" or not name.startswith("."):
                self.unmatched.append(name)
            return None
        moment = found.time or dt.datetime.fromtimestamp(Path(submitted_file).stat().st_mtime, dt.UTC)
        if found.late and self.due is not None and moment <= self.due:
            moment = self.due + dt.timedelta(seconds=1)  # the LMS says late: at least just after the due date
        moment = moment.astimezone(dt.UTC) + dt.timedelta(microseconds=found.attempt)  # -N: newer on a tie
        self.matched[name] = found
        self.times[name] = moment.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        return {"student_id": found.student_id, "file_id": found.notebook, "timestamp": self.times[name]}

    def kept(self) -> dict[tuple[str, str], tuple[str, list[str]]]:
        """(student_id, notebook) matched by more than one file -> (the file nbgrader keeps: the
        newest, the later one on a tie, as its collector does; the others, not used)."""
        files: dict[tuple[str, str], list[str]] = {}
        for name, found in self.matched.items():  # in the order nbgrader saw them
            files.setdefault((found.student_id, found.notebook), []).append(name)
        out = {}
        for key, names in files.items():
            if len(names) > 1:
                newest = names[0]
                for name in names[1:]:
                    if self.times[name] >= self.times[newest]:
                        newest = name
                out[key] = (newest, [n for n in names if n != newest])
        return out
