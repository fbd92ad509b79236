"""The model store: the interface serving reads and the operator writes (``base``), its local-directory and S3
backends (``local``, ``s3``, with ``cache`` the S3 backend's download cache), the factory that picks one from the
settings, and what a stored version is made of: its manifest, its aliases and the sealing of encrypted files
(``sealing/``: key providers, sealing a version, unsealing in memory)."""
