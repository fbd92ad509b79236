"""A sealed file's format: AES-256-GCM, the ciphertext then its 16-byte tag, bound to its model and path."""

from __future__ import annotations

import json

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


def associated_data(name: str, path: str) -> bytes:
    """What a ciphertext is bound to besides its data key: its model's name and its path in the version."""
    # JSON keeps the parts apart however they are spelled.
    return json.dumps(["aimass-sealed-v1", name, path]).encode()


# The streaming Cipher API rather than AESGCM's one-shot calls, which refuse inputs over 2 GiB; the layout
# (ciphertext, then the 16-byte tag) is the same.
def encrypt(key: bytes, nonce: bytes, plain: bytes, aad: bytes) -> tuple[bytes, bytes]:
    encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    body = encryptor.update(plain)
    encryptor.finalize()
    return body, encryptor.tag


def decrypt(key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < TAG_BYTES:
        raise InvalidTag
    view = memoryview(sealed)
    decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, bytes(view[-TAG_BYTES:]))).decryptor()
    decryptor.authenticate_additional_data(aad)
    plain = decryptor.update(view[:-TAG_BYTES])
    decryptor.finalize()  # raises InvalidTag: no byte is returned unless the whole file is authentic
    return plain
