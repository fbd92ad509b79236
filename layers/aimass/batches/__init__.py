"""Batches: OpenAI's Batch API over every model route, run in shards by workers (locally or on AWS Batch)."""
