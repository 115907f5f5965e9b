"""Notebooks run as production reports.

- `params` — each report's parameters: types, allowed values, validation before any kernel starts;
- `contract` — the production contract: lesson-only cells out, missing tables noted;
- `run` — one report: a warm kernel, papermill, the archive folder and its manifest;
- `html` — the page without code, tables as CSV/XLSX, figures with alt text, PDF by Chromium;
- `batch` — many reports over one parameter, in parallel warm workers (or on Dask);
- `maps` — choropleth maps from a city's boundaries.
"""
