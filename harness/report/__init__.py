"""The platform behaviour report: merge run records, render Markdown, HTML and JSON, diff runs.

Theory of operation
-------------------
Records are the only input.  :func:`~harness.report.build.render_report` merges them strictly
(``merge.py``: every file validated, duplicate runs, mixed schema versions
and conflicting fingerprints rejected with an error naming the file),
builds the render-ready model (``model.py``), renders it with pure
functions (``render_md.py`` for a GitHub job summary, ``render_html.py``
for the full self-contained page with ``timeline.py``'s SVG, and
``Model.to_json()`` for machines and ``diff``), and only then touches the
output directory.

Writing is all-or-nothing (``build.py`` says how): an error anywhere leaves an
existing report byte-for-byte untouched.

Public API (this ``__init__`` imports nothing: the pytest plugin imports
``platform_notes`` in every pytest process, which must not load jinja2 and the
renderers; callers import the module they use)::

    build.render_report(inputs, out_dir) -> {"md": Path, "html": Path, "json": Path}
    build.render_all(model) -> {"md": str, "html": str, "json": str}
    diff.diff(a, b) -> dict;  diff.format_diff(d) -> str
    merge.merge(inputs) -> Model;  render_md.render_markdown(model) -> str
    render_html.render_html(model) -> str
    merge.ReportError (a RecordError: str() starts with the offending file)

Modules:

* ``build``           merge, render all three, write them all-or-nothing (``render_report``)
* ``merge``           strict merging of run records into one model
* ``model``           the merged, render-ready report: columns (runs), rows (checks), cells
* ``render_md``       Markdown, sized for a GitHub job summary
* ``render_html``     the self-contained HTML page (``templates/``)
* ``timeline``        concurrency timelines as small inline SVG images
* ``diff``            compare two runs or two merged reports
* ``platform_notes``  what each OS is documented or measured to do (``data/platform_notes.toml``, package data)
* ``knowledge_page``  that knowledge as ``docs/platform-knowledge.md`` (``python -m harness.report.knowledge_page``)
"""
