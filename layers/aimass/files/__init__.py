"""Files a tenant uploads for later work (OpenAI's Files API): one interface, a local and an S3 backend."""
