"""Notebooks run as production reports.

- `params` — each report's parameters: types, allowed values, validation before any kernel starts;
- `contract` — the production contract: lesson-only cells out, missing tables noted;
- `figures` — what notebooks call in the report kernel: `describe_figure`, `publish_table`;
- `kernel` — the warm report kernel: start, reset, run with papermill, kill at a timeout;
- `html` — the page without code, tables as CSV/XLSX, figures with alt text, PDF by Chromium;
- `run` — one report: validated parameters, the kernel, the archive folder and its manifest;
- `batch` — many reports over one parameter, in parallel warm workers (or on Dask);
- `maps` — choropleth maps from a city's boundaries.

Each imports only those above it in this list (and `maps` none of them).
"""
