"""Lambda entrypoint of the API key authorizer: API Gateway REQUEST authorizer events in, policies out.

The key store and its cache live for the container's life; nothing else is imported.
"""

from aimass.metering.authorizer import lambda_authorizer

handler = lambda_authorizer()
