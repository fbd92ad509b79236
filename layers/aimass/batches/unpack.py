"""A batch's input as its workers read it: the uploaded JSONL, or the JSONL inside a gzip file.

Workers read their shards by byte range, which a compressed stream cannot give; so a gzip input is
decompressed once, when the batch is made, into a file of the batch's tenant, and the workers read that.
Decompression is streamed and bounded: it stops as soon as the output passes ``max_file_bytes`` (a few
kilobytes of gzip can expand to gigabytes), and then nothing of it is kept and the batch is refused with a
413 naming the input file. Other archives (zip, tar) hold files with names and paths, which a batch has no
use for and whose paths could point anywhere: they are refused with a 400.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from aimass.batches.runner import reader
from aimass.errors import InvalidInput, PayloadTooLarge
from aimass.files.base import CHUNK_BYTES, FileRecord, FileStore

GZIP = b"\x1f\x8b"
ZIP = b"PK\x03\x04"
TAR_MAGIC_OFFSET = 257
PARAM = "input_file_id"


def batch_input(files: FileStore, source: FileRecord, tenant: str, limit: int) -> FileRecord:
    """The file the batch's workers read: ``source`` itself, or its decompressed copy (``tenant``'s)."""
    opened = files.open(source.tenant, source.id, start=0, end=TAR_MAGIC_OFFSET + 8)
    head = b"".join(opened[1]) if opened is not None else b""
    if head.startswith(ZIP) or head[TAR_MAGIC_OFFSET : TAR_MAGIC_OFFSET + 5] == b"ustar":
        raise InvalidInput(
            f"file {source.id!r} is a zip or tar archive; a batch reads JSONL, plain or gzip-compressed",
            param=PARAM,
        )
    if not head.startswith(GZIP):
        return source
    opened = files.open(source.tenant, source.id)
    if opened is None:
        return source  # deleted meanwhile: the batch fails when it is read
    try:
        return files.put(
            tenant,
            reader(_inflated(opened[1], limit)),
            filename=source.filename.removesuffix(".gz"),
            purpose="batch",
            limit=limit,
        )
    except PayloadTooLarge:
        raise PayloadTooLarge(
            f"file {source.id!r} decompresses to more than {limit} bytes (AIMASS_MAX_FILE_BYTES); split it into "
            "several batches",
            param=PARAM,
        ) from None


def _inflated(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    """The decompressed content of gzip ``chunks``, at most a chunk's worth more than ``limit`` ever held."""
    inflater = zlib.decompressobj(wbits=31)  # gzip framing
    produced = 0
    try:
        for chunk in chunks:
            data = chunk
            while data:
                # max_length bounds what one call may produce: a bomb expands in pieces, never at once.
                out = inflater.decompress(data, CHUNK_BYTES)
                produced += len(out)
                if out:
                    yield out
                if produced > limit:
                    return  # the file store's limit refuses it now
                data = inflater.unconsumed_tail
        tail = inflater.flush()
        if tail:
            yield tail
    except zlib.error as exc:
        raise InvalidInput(f"the input file is not valid gzip: {exc}", param=PARAM) from None
    if not inflater.eof:
        raise InvalidInput("the input file's gzip stream is cut short", param=PARAM)
