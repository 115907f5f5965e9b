"""Grading a cohort with nbgrader.

- `cohort` — the roster, due dates and limits of a training cohort (`grading/cohorts/NAME.yml`);
- `lint` — submissions compared with the released student version, problems in plain language;
- `workflow` — generate, release, collect, parallel autograde with warm workers, feedback without
  hidden tests, export (nbgrader CSV and Canvas), and the cohort dashboard.
"""
