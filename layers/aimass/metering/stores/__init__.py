"""The metering stores, one backend per module: API keys and usage records with their quota counters, each on
SQLite locally (``keys_sqlite``, ``usage_sqlite``, sharing the database of ``sqlite``) and on DynamoDB on AWS
(``keys_dynamodb``, ``usage_dynamodb``), and ``usage_off`` for ``metering=off``. ``base`` holds what the
backends share (errors, stored formats); ``factory`` opens the ones the settings name. The interfaces are
``aimass.metering.keys.KeyStore`` and ``aimass.metering.usage.UsageStore`` and ``QuotaCounter``.
"""
