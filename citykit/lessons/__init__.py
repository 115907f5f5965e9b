"""The course as learners meet it.

- `course` — the course model (`curriculum/course.yml`): modules in order, objectives, parameters;
  `load_course()`, `find_module()`, and the data dictionary generated from the data package;
- `check` — the helpers behind visible tests (`citykit.check` in notebooks): advice that names the
  likely mistake;
- `lab` — JupyterLab for learners on the released course, and for instructors with formgrader.
"""
