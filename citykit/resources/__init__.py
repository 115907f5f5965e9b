"""Files that ship inside the package: mappings, report templates, lab settings and, in a wheel,
the kit's copy of the course (`course/`, copied in at build time by setup.py)."""
