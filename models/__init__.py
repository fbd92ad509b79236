"""Model builds: one folder per served model (``<domain>/<model>/build.py``) and the build kit they share.

A regular package so that ``models.buildkit`` and ``models.<domain>.<model>.*`` resolve to these files even
where an installed distribution ships a top-level ``models`` of its own.
"""
