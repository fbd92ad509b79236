"""API Gateway events for the tests, generated rather than recorded.

Every ``*.json`` here is written by ``python -m tests.events`` from the table in ``tests/events/specs.py``
through the builder in ``tests/events/build.py``, shaped as API Gateway sends them to Lambda: HTTP API
(payload 2.0) events, REST API proxy (payload 1.0) events and a REST ``REQUEST`` authorizer event. The
bodies' media (audio, images) are in ``media/``. ``tests/unit/test_events.py`` fails when a file differs from
what the builder writes, so change the table (or the builder) and regenerate; never edit a file by hand.
"""
