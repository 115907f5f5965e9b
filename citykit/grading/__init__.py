"""Grading a cohort with nbgrader.

Modules depend one way: `cohort` <- `config` <- the rest (`lint`, `limits`, `sandbox`, `answer_files`
<- `scoring` <- `autograde`, ...).

- `cohort` — the roster, due dates and limits of a training cohort (`grading/cohorts/NAME.yml`):
  `read_roster`, `setup_cohort`, `load_cohort`, `apply_to_config`;
- `config` — the course as nbgrader sees it: `load_config`, `course_root_of`, `assignment_id`,
  `submitted_students`, `nbgrader_api`, `grader_env`, `check_result`;
- `assignments` — `generate`, `setup`, `release`, `exchange_submit`, `submit`, `collect`,
  `collect_zips`, `validate`, `score`;
- `lint` — submissions compared with the released student version, problems in plain language:
  `lint_notebook`, `lint_assignment` (and `DeduplicateCells`, the preprocessor grading uses);
- `limits` — kernels under the cohort's memory and CPU-time limits (where the OS has them):
  `limited_kernels`, `kernel_dir`, `run_limited_kernel`, `cohort_limits`, `limits_enforced`;
- `sandbox` — where a learner's notebook runs while graded: `Policy` (what this system enforces),
  `Run` (one learner's folders, cgroups and spec), the kernel launcher, `container_command`;
- `answer_files` — answers out of the sandbox as data (parquet, JSON, npy; charts and citykit's
  results as their data; never pickle): `export` (in the kernel), `read_answers`, `read_value`;
- `scoring` — every test run apart from learner code: `declared_answers` (course.yml `answers:`),
  `plan_for`, `Scorer`, and `TwoPhaseExecute`, nbgrader's Execute step in two phases (the course's
  configuration puts it in place of nbgrader's own, so formgrader and plain nbgrader use it too);
- `autograde` — one learner (`autograde`) or a cohort in parallel with warm workers and one
  gradebook writer (`autograde_cohort` -> `CohortGrades`);
- `feedback` — HTML feedback without hidden tests: `feedback`, `strip_hidden_tests`;
- `safe_feedback` — `SafeFeedback`, the step the course's configuration adds to every feedback page
  nbgrader renders (formgrader's button too): hidden tests out, a learner's HTML inert;
- `export` — nbgrader's grades CSV and Canvas's gradebook import: `export`, `canvas_gradebook`;
- `dashboard` — the cohort dashboard notebook run as a report: `dashboard`.
"""
