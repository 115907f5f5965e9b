"""nbgrader configuration for the citykit course (read by `citykit.grading` and by `nbgrader` run here).

Every folder is relative to the course root (the repository): lessons are authored once in
`notebooks/NN-slug/`, and everything nbgrader generates lives under `grading/` (git-ignored).
The active cohort (`grading/cohorts/NAME.yml`, written by `citykit grade setup`) sets the gradebook
URL, the timeouts, the late-submission policy and restores deleted cells; see `citykit.cohort`.
`citykit.grading` points the same settings at a copy of the course elsewhere (tests).
"""

from pathlib import Path

from citykit.grading.cohort import apply_to_config

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

REPO = Path(__file__).resolve().parent.parent

c.CourseDirectory.course_id = "citykit"
c.CourseDirectory.source_directory = "notebooks"
c.CourseDirectory.release_directory = "grading/release"
c.CourseDirectory.submitted_directory = "grading/submitted"
c.CourseDirectory.autograded_directory = "grading/autograded"
c.CourseDirectory.feedback_directory = "grading/feedback"
c.CourseDirectory.solution_directory = "grading/solution"
c.CourseDirectory.source_with_tests_directory = "grading/source_with_tests"

# Root, gradebook (SQLite at grading/gradebook.db unless the cohort names a database), exchange,
# both timeouts, the pinned kernel, restored missing cells and the late policy.
apply_to_config(c, REPO)

# LMS downloads (`citykit grade collect --zips FOLDER`, or `nbgrader zip_collect`): files as Canvas,
# Moodle or Blackboard name them, matched to the roster's LMS ids or student ids; a file no learner
# matches is reported and left out (see citykit.grading.lms). Each file keeps its zip entry's time.
c.ZipCollectApp.collect_directory_structure = "grading/downloaded/{assignment_id}/{collect_step}"
c.ZipCollectApp.collector_plugin = "citykit.grading.lms.RosterCollector"
c.ZipCollectApp.extractor_plugin = "citykit.grading.lms.TimedExtractor"

# Student versions: the standard stubs, and no outputs from the authoring run.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
