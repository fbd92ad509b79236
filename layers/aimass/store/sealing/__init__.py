"""Envelope encryption of model versions: each version's files sealed under its own data key, the key wrapped.

``seal.seal_version`` turns a built version folder into a sealed copy: a fresh random 256-bit data key, every
file encrypted with AES-256-GCM under its own random 12-byte nonce (``cipher``), and the data key wrapped by a
``keys.KeyProvider`` (a local master key file, or a KMS key). The store then holds and transfers only
ciphertexts, and ``unseal.EnvelopeUnsealer``, the store's ``Unsealer``, unwraps a version's data key once, keeps
it in memory, and decrypts each file as the store reads it: a plaintext model is never written anywhere.

A ciphertext is bound to its model's name and its file path by AES-GCM's associated data, and to its version
by the data key, which every sealing draws afresh: a file moved to another path, or copied in from another
version, fails authentication. The version number itself is left out of the associated data because
publishing gives the sealed folder its number after sealing.

Refusals (``ModelLoadError``) name one of three reasons: **tampered** (a ciphertext fails authentication, or
decrypts to other bytes than the manifest lists), **wrong key** (the key at hand is not the one the version
was sealed under, or does not unwrap its data key), **no key** (this process has no provider of the kind the
version needs).

Every module here imports the cipher library: a serving process imports them only when it first opens an
encrypted version (``aimass.serving.boot``).
"""
