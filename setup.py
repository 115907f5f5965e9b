"""Build hook: the wheel carries the kit's copy of the course in `citykit/resources/course/`.

The repository is a course folder (notebooks/, curriculum/, grading/, datasets/ at the top), and
`citykit init` copies a course from the installed kit, so a wheel must carry those files inside
the package. They are copied at build time, not kept twice in git. An editable install reads the
checkout instead (`citykit.paths.kit_course`). Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# One list of the course's files, shared with `citykit init` (citykit/course_folder.py).
COURSE_FILES = [
    line.split()[1]
    for line in (HERE / "citykit" / "resources" / "course_files.txt").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
]


class BuildWithCourse(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "citykit" / "resources" / "course"
        for pattern in COURSE_FILES:
            for source in sorted(HERE.glob(pattern)):
                if ".ipynb_checkpoints" in source.parts:
                    continue
                copy = target / source.relative_to(HERE)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, copy)


setup(cmdclass={"build_py": BuildWithCourse})
