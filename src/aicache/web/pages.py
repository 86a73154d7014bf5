"""The HTML of each page: a shell with navigation; its script draws it from the API."""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse


def page(title: str, page_id: str, nav: dict[str, str], script: str, *, live: bool) -> HTMLResponse:
    """A page named ``page_id`` whose ``script`` (under /static) fills ``<main>``.

    ``nav`` maps each page's path to its name; ``live`` pages poll for changes.
    """
    here = ' class="here"'
    links = "".join(
        f'<a href="{escape(path)}"{here if path == "/" + page_id else ""}>{escape(name)}</a>'
        for path, name in nav.items()
    )
    body = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="/static/uPlot.min.css">
<link rel="stylesheet" href="/static/style.css">
</head>
<body data-page="{escape(page_id)}" data-live="{int(live)}">
<header><strong>{escape(title)}</strong><nav>{links}</nav>
<span id="status" aria-live="polite"></span></header>
<main id="main"><p class="muted">Loading…</p></main>
<script src="/static/uPlot.iife.min.js"></script>
<script src="/static/common.js"></script>
<script src="/static/{escape(script)}"></script>
</body>
</html>
"""
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})
