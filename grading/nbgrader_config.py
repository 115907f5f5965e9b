"""nbgrader configuration for the citykit course (read by `citykit.grading` and by `nbgrader` run here).

Every folder is relative to the course root (the repository): lessons are authored once in
`notebooks/NN-slug/`, and everything nbgrader generates lives under `grading/` (git-ignored).
`citykit.grading` overrides `CourseDirectory.root` and `db_url` to grade a copy elsewhere (tests).
"""

from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

REPO = Path(__file__).resolve().parent.parent

c.CourseDirectory.course_id = "citykit"
c.CourseDirectory.root = str(REPO)
c.CourseDirectory.source_directory = "notebooks"
c.CourseDirectory.release_directory = "grading/release"
c.CourseDirectory.submitted_directory = "grading/submitted"
c.CourseDirectory.autograded_directory = "grading/autograded"
c.CourseDirectory.feedback_directory = "grading/feedback"
c.CourseDirectory.solution_directory = "grading/solution"
c.CourseDirectory.source_with_tests_directory = "grading/source_with_tests"
c.CourseDirectory.db_url = f"sqlite:///{REPO / 'grading' / 'gradebook.db'}"
c.Exchange.root = str(REPO / "grading" / "exchange")

# Execution: one pinned kernel, bounded time per cell, no silent hangs.
c.Execute.kernel_name = "python3"
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
c.ExecutePreprocessor.kernel_name = "python3"
c.ExecutePreprocessor.timeout = 120

# Student versions: the standard stubs, and no outputs from the authoring run.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
