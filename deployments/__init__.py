"""Thin Ray Serve wrappers around the pure logic in `classifiers/`: model loading, batching, live reconfigure.

The classes here are plain Python classes; `serve_app.builder` applies `serve.deployment` to them.
"""
