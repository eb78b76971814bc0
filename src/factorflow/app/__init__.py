"""`factorflow app`: a local web app (Gradio Blocks, offline) around the library.

Modules: `server` (settings, offline Gradio import, launch), `layout` (the page), `run` (the run
handler, no Gradio), `validate` (uploads -> frames or a one-line error), `sources` (shipped
models, run folders, bundled example clips), `plot` (mouth opening over time), `benchmark`
(`evaluate` on a few pairs). Only `server` and `layout` import Gradio (the `app` extra), lazily.
"""
