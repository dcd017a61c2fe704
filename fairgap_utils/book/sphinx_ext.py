"""The book's Sphinx extension (named under `sphinx.extra_extensions` in _config.yml).

- Serves the explorers' JavaScript from the book itself: the folder of `explorer.bundle_path()`
  joins `html_static_path`, so `_static/fairgap-vega.js` is copied with the other static files
  (pages that show an explorer load it on demand; the others never do).
- Keeps pages free of console errors that the theme stack would otherwise log on every page:
  a script registered twice (sphinx-thebe's inline configuration, added once as filename None
  and once as '', declares `const THEBE_JS_URL` twice), and pydata-sphinx-theme's colour mode,
  empty unless `default_mode` is in the page context ("Got invalid theme mode").
"""
from __future__ import annotations


def _add_bundle(app, config) -> None:
    from .explorer import bundle_path  # lazy: the explorers (altair) only when sphinx builds the HTML
    config.html_static_path = [*config.html_static_path, str(bundle_path().parent)]
    config.html_context = {"default_mode": "auto", **config.html_context}


def _unique_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for js in context.get("script_files", []):
        key = (str(getattr(js, "filename", js) or ""), getattr(js, "priority", 0),
               tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app) -> dict:
    app.connect("config-inited", _add_bundle)
    app.connect("html-page-context", _unique_scripts)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
