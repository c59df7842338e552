"""Offline training of SafeServe's model artefacts from registry packages and team-written seed data.

Imports torch and scikit-learn lazily per trainer; nothing here imports Ray.
"""
