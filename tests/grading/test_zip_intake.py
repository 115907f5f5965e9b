"""Issue 16: an LMS download folder is extracted with limits. A `.zip` that is not a zip, a zip bomb,
an entry that leaves its folder, too many files or archives nested too deep end in one line
(exit 2 from the CLI) and nothing outside the extraction folder is written."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from notebook_helpers import nbg

from citykit.cli import main
from citykit.errors import CitykitError
from citykit.grading import lms
from citykit.grading.assignments import Collected, generate, setup
from citykit.grading.lms import TimedExtractor


def extract(tmp_path: Path, make) -> Path:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    make(downloads)
    TimedExtractor().extract(str(downloads), str(tmp_path / "extracted"))
    return tmp_path / "extracted"


def refused(tmp_path: Path, make, says: str) -> None:
    before = set(os.listdir(tmp_path.parent))
    with pytest.raises(CitykitError) as error:
        extract(tmp_path, make)
    assert says in str(error.value) and "\n" not in str(error.value)
    assert set(os.listdir(tmp_path.parent)) == before  # nothing written beside the test's folder
    assert not list(tmp_path.rglob("evil*")) and not list(tmp_path.parent.glob("evil*"))
    assert not Path("/etc/evil").exists() and not Path("C:\\evil.ipynb").exists()


def zip_with(entries: dict[str, bytes]):
    def make(folder: Path) -> None:
        with zipfile.ZipFile(folder / "submissions.zip", "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries.items():
                archive.writestr(zipfile.ZipInfo(name, date_time=(2030, 3, 5, 10, 0, 0)), data)

    return make


def test_a_zip_of_notebooks_and_a_nested_zip_are_extracted_as_nbgrader_lays_them_out(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("ada_01-sums.ipynb", "{}")
    out = extract(tmp_path, zip_with({"maria_g_01-sums.ipynb": b"{}", "more/inner.zip": inner.getvalue()}))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.ipynb")) == [
        "submissions/maria_g_01-sums.ipynb",
        "submissions/more/inner/ada_01-sums.ipynb",
    ]


def test_a_file_named_zip_that_is_not_one_is_refused(tmp_path):
    refused(tmp_path, lambda f: (f / "canvas.zip").write_text("<html>login expired</html>"),
            "'canvas.zip' in the download folder is not a zip archive")  # fmt: skip


def test_a_50_mb_zip_bomb_is_refused_before_it_is_written(tmp_path):
    def bomb(folder: Path) -> None:
        with (
            zipfile.ZipFile(folder / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive,
            archive.open("maria_g_01-sums.ipynb", "w") as entry,
        ):
            for _ in range(50):
                entry.write(bytes(1 << 20))  # 50 MB of zeros: about 50 kB compressed

    refused(tmp_path, bomb, "would expand")
    assert sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".zip") < 1 << 20


def test_sizes_an_archive_states_falsely_are_counted_as_written(tmp_path, monkeypatch):
    monkeypatch.setattr(lms, "MAX_TOTAL_BYTES", 3 * 1024)
    noise = os.urandom(2 * 1024)  # does not compress: the ratio check cannot catch it, the total cap does
    refused(tmp_path, zip_with({"a.ipynb": noise, "b.ipynb": noise}), "expands to more than")


@pytest.mark.parametrize(
    "name", ["../../evil.ipynb", "/etc/evil", "C:\\evil.ipynb", "a\\..\\..\\evil.ipynb", "a/../../evil"]
)
def test_an_entry_leaving_its_folder_is_refused(tmp_path, name):
    refused(tmp_path, zip_with({name: b"{}"}), "a path outside its folder")


def test_too_many_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(lms, "MAX_FILES", 5)
    refused(tmp_path, zip_with({f"{n}.ipynb": b"{}" for n in range(6)}), "more than 5 files")


def test_a_zip_with_more_entries_than_a_submission_has_is_refused(tmp_path):
    """QA walk: a zip of 20,000 entries was accepted (under the whole folder's MAX_FILES)."""
    refused(tmp_path, zip_with({f"f{n}.txt": b"" for n in range(2_001)}), "holds 2,001 entries, above the 2,000")


def test_a_summary_of_many_unmatched_files_stays_short():
    """QA walk: 20,000 unmatched names were printed on one 229 KB line."""
    names = [f"f{n}.txt" for n in range(20_000)]
    summary = Collected("04-time-to-close", unmatched=names, kept={"ada": ("a.ipynb", names)}).summary()
    assert len(summary) < 2_000 and summary.count("and 19,980 more") == 2 and "f19.txt" in summary


def test_archives_nested_too_deep_are_refused(tmp_path):
    data = b"{}"
    for depth in range(5):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("inner.zip" if depth else "x.ipynb", data)
        data = buffer.getvalue()
    refused(tmp_path, zip_with({"outer.zip": data}), "nested more than 3 deep")


def test_a_tar_with_a_link_is_refused(tmp_path):
    def make(folder: Path) -> None:
        with tarfile.open(folder / "subs.tar.gz", "w:gz") as archive:
            link = tarfile.TarInfo("evil")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(link)

    refused(tmp_path, make, "a link or device")


@pytest.mark.slow
def test_grade_collect_with_a_bad_zip_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    root = tmp_path / "course"
    (root / "notebooks" / "01-sums").mkdir(parents=True)
    cells = [new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", metadata=nbg("x", solution=True)),
             new_code_cell("assert x == 1", metadata=nbg("x-test", grade=True, locked=True, points=1))]  # fmt: skip
    nbformat.write(new_notebook(cells=cells), root / "notebooks" / "01-sums" / "01-sums.ipynb")
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,first_name,last_name\nada,Ada,Lovelace\n", encoding="utf-8")
    setup("spring", roster, course_root=root, due={"sums": "2030-03-06T17:00"})
    generate("sums", course_root=root)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "submissions.zip").write_bytes(b"PK\x03\x04 truncated download")
    (root / "curriculum").mkdir()
    (root / "curriculum" / "course.yml").write_text("modules: []\n", encoding="utf-8")  # a course folder for the CLI
    monkeypatch.setenv("CITYKIT_COURSE", str(root))
    code = main(["grade", "collect", "sums", "--zips", str(downloads)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "'submissions.zip' in the download folder is not a zip archive" in err
    assert not (root / "grading" / "submitted").exists() or not any((root / "grading" / "submitted").iterdir())
