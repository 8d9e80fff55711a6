"""`resdsl serve`: a local page for exploring a network while editing its spec.

`server.py` serves the page (static/: index.html, editor.js, app.js, style.css; no CDN) and a JSON API on
127.0.0.1; `analyze.py` answers each request (check, diagram, model) from the editor's text with the
pipeline and the back ends; `worker.py` runs each answer in a process of its own under a time limit;
`warm.py` loads the pipeline once into the workers' forkserver.
"""
