"""Serving: the runtime interface every domain implements, the registry of loaded models and its hot updater,
inference sessions, request validation and batching, and the start of a serving process."""
