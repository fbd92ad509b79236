"""The builder lives in ``aimass_tools.events``, where ``aimass new-domain`` uses it too; tests import it from here
or from there alike."""

from aimass_tools.events import Event, authorizer_request, http_api_v2, rest_v1

__all__ = ["Event", "authorizer_request", "http_api_v2", "rest_v1"]
