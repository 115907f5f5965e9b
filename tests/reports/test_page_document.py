"""The report page without nbconvert's BeautifulSoup pass (issue 21) is the same document: the report
exporter skips HTMLExporter's post-render parse (alt text for images without any, tabindex="0" on
inputs and outputs) and adds those attributes with two regular expressions. Each page is rendered both ways, with
nbconvert's own `HTMLExporter.from_notebook_node` on the same exporter and with the report's, and both
are parsed with BeautifulSoup: the same elements in the same order, the same attributes, the same text.
Real pages come from reports run on the small city (figures, tables, the equity tables); a made-up
notebook covers the outputs they lack (stream, error, SVG, an image without alt in HTML, LaTeX)."""

from __future__ import annotations

import nbformat
import pytest
from bs4 import BeautifulSoup
from nbconvert import HTMLExporter
from nbconvert.exporters import html as nbconvert_html
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from citykit.reports import html as report_html
from citykit.reports.run import run_report

REPORTS = {"12-service-performance": {"neighborhood": "Ashgrove"}, "13-equity-report": {}}
NO_ALT = "No description has been provided for this image"  # nbconvert's HTMLExporter (7.x)


@pytest.fixture(scope="module")
def executed(riverton_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("page-document")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITYKIT_HOME", str(riverton_small))
        runs = {name: run_report(name, params, out / name) for name, params in REPORTS.items()}
    return {name: nbformat.read(result.notebook, as_version=4) for name, result in runs.items()}


def both_ways(nb, monkeypatch) -> tuple[str, str]:
    """(nbconvert's page, the report's page) for one notebook, as render_html writes it."""
    exporter = report_html._exporter()
    args = (nb, "A report", "**Parameters:** none", True, "report.xlsx")
    with monkeypatch.context() as mp:
        mp.setattr(exporter, "from_notebook_node",
                   lambda nb, resources=None, **kw: HTMLExporter.from_notebook_node(exporter, nb, resources, **kw))  # fmt: skip
        stock = report_html.render_html(*args)
    with monkeypatch.context() as mp:

        def no_soup(*args, **kwargs):
            raise AssertionError("the report's export parsed the page with BeautifulSoup")

        mp.setattr(nbconvert_html, "BeautifulSoup", no_soup)
        fast = report_html.render_html(*args)
    return stock, fast


def document(page: str) -> list[tuple]:
    """Every node in document order: elements with their attributes as sets, text nodes as they are."""
    nodes = []
    for node in BeautifulSoup(page, "html.parser").descendants:
        if node.name is None:
            nodes.append(("text", type(node).__name__, str(node)))
        else:
            attrs = {k: frozenset(v) if isinstance(v, list) else v for k, v in node.attrs.items()}
            nodes.append(("element", node.name, frozenset(attrs.items()), len(list(node.parents))))
    return nodes


def assert_same_document(stock: str, fast: str) -> None:
    want, got = document(stock), document(fast)
    for i, (a, b) in enumerate(zip(want, got, strict=False)):
        assert a == b, f"node {i} differs:\n nbconvert: {str(a)[:300]}\n report:    {str(b)[:300]}"
    assert len(want) == len(got)


def focusable(page: str) -> list[str]:
    soup = BeautifulSoup(page, "html.parser")
    return [d.get("tabindex") for d in soup.select(".jp-Notebook div.jp-OutputArea-output, .jp-Notebook div.jp-Cell-inputWrapper")]  # fmt: skip


@pytest.mark.parametrize("name", REPORTS)
def test_a_report_page_is_the_document_nbconvert_makes(name, executed, monkeypatch):
    stock, fast = both_ways(executed[name], monkeypatch)
    assert_same_document(stock, fast)
    soup = BeautifulSoup(fast, "html.parser")
    assert soup.find_all("img") and soup.find_all("table")  # figures and tables are on the page
    assert all(img.get("alt") and img["alt"] != NO_ALT for img in soup.find_all("img"))  # the kernel's alt text
    assert len(focusable(fast)) >= 10 and set(focusable(fast)) == {"0"}


def made_up_notebook():
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'
    cell = new_code_cell("print(1)", execution_count=1, outputs=[
        new_output("stream", name="stdout", text="one & <two>\n"),
        new_output("stream", name="stderr", text="a warning\n"),
        new_output("display_data", data={"image/svg+xml": svg, "text/plain": "<Figure>"}),
        new_output("display_data", data={"text/html": '<p>Logo: <img src="logo.png"> and <img src="b.png" alt="">'
                                                      '</p><div class="jp-OutputArea-output">inner</div>'}),
        new_output("display_data", data={"image/png": png}),
        new_output("execute_result", data={"text/plain": "42"}, execution_count=1),
        new_output("display_data", data={"text/latex": "$x^2$"}),
        new_output("display_data", data={"text/markdown": "**bold** text"}),
        new_output("error", ename="ValueError", evalue="bad", traceback=["ValueError: bad"]),
    ])  # fmt: skip
    return new_notebook(cells=[new_markdown_cell("# Title\n\nSome *text*."), cell, new_markdown_cell("## After")],
                        metadata={"language_info": {"name": "python"}})  # fmt: skip


def test_every_kind_of_output_gets_its_tabindex_and_alt(monkeypatch):
    stock, fast = both_ways(made_up_notebook(), monkeypatch)
    assert_same_document(stock, fast)
    soup = BeautifulSoup(fast, "html.parser")
    alts = [img.get("alt") for img in soup.find_all("img")]
    assert alts.count(NO_ALT) == 2 and "" in alts and "Chart: Title" in alts  # svg, logo.png; b.png keeps ""
    assert set(focusable(fast)) == {"0"} and len(focusable(fast)) == 12
