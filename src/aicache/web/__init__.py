"""The web side: the operator's dashboard and the developer's local page.

Both are small FastAPI applications (FastAPI and uvicorn come with Flower)
over the same functions the command line calls: the registry's books, the
node book and the local store's operations. Pages are static HTML that read
a versioned JSON API; charts use uPlot, vendored under ``static/`` with its
licence, so nothing is built with Node.
"""
