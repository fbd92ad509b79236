"""Pay-per-use: tenants and API keys, a usage record per request, quotas and rate limits, usage reports.

Built into the shared core so that every domain, present and future, is metered without code of its own:
the HTTP layer authenticates and meters every model route; a domain runtime only reports its billable
units (``Prediction.usage`` / ``TaskResult.usage``, named by ``ModelRuntime.billing_unit``).

Each store has two backends behind one interface, one module each in ``aimass.metering.stores``: SQLite
locally (one file in the local state folder) and DynamoDB on AWS (conditional writes), opened from the
settings by ``stores.key_factory.open_key_store`` and ``stores.usage_factory.open_usage`` (the app's composition root
calls both).
"""
