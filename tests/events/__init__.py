"""API Gateway events for the tests, generated rather than recorded.

Every ``*.json`` here is written by ``python -m tests.events`` through the builder in ``aimass_tools.events``,
shaped as API Gateway sends them to Lambda: HTTP API (payload 2.0) events, REST API proxy (payload 1.0) events
and a REST ``REQUEST`` authorizer event. What each client sent is in the table of ``tests/events/specs.py``, or,
for a domain that ``aimass new-domain`` scaffolded, in its requests file ``requests/<domain>.json``. The bodies'
media (audio, images) are in ``media/``. ``tests/unit/test_events.py`` fails when a file differs from what the
builder writes, so change the table or the requests file (or the builder) and regenerate; never edit an event
by hand.
"""
