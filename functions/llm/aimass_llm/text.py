"""Tokens back to text as they are generated, holding back what may be the start of a stop sequence.

Decoding token by token is wrong for byte-level tokenizers: one character may span several tokens, and a
token's spelling depends on its neighbours (a leading space). So each step decodes a short window of recent
tokens and releases only what the newest one added, and nothing while the window ends inside a character
(the tokenizer then writes U+FFFD). Stop sequences are matched on the text, not the tokens: a sequence may
span tokens, and the text after it is never released.
"""

from __future__ import annotations

from tokenizers import Tokenizer

INCOMPLETE = "\ufffd"


class TextStream:
    def __init__(self, tokenizer: Tokenizer, stop: tuple[str, ...]) -> None:
        self._tokenizer = tokenizer
        self._stop = tuple(s for s in stop if s)
        self._ids: list[int] = []
        self._prefix = 0  # the window's first token
        self._read = 0  # tokens whose text is already in self._text
        self._text = ""  # every character decoded so far, released or held
        self._released = 0
        self.stopped = False  # a stop sequence was written

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=True)

    def push(self, token: int) -> str:
        """Add a generated token; the text it releases (empty while held). After a stop sequence, nothing."""
        if self.stopped:
            return ""
        self._ids.append(token)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        # Nothing new yet (part of a character, or a special token that writes no text): the window keeps its
        # start, so the next token is decoded beside what precedes it (its leading space included).
        if after.endswith(INCOMPLETE) or len(after) <= len(before):
            return ""
        self._text += after[len(before) :]
        self._prefix, self._read = self._read, len(self._ids)
        return self._release()

    def _release(self) -> str:
        found = [at for at in (self._text.find(s, max(0, self._released - len(s))) for s in self._stop) if at >= 0]
        if found:
            self.stopped = True
            end = min(found)
        else:
            end = len(self._text) - self._held()
        out = self._text[self._released : max(end, self._released)]
        self._released = max(end, self._released)
        return out

    def _held(self) -> int:
        """Characters at the end that are the start of some stop sequence."""
        longest = 0
        for stop in self._stop:
            for size in range(min(len(stop) - 1, len(self._text)), longest, -1):
                if self._text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def flush(self) -> str:
        """The held text, at the end of a choice that met no stop sequence."""
        if self.stopped:
            return ""
        out = self._text[self._released :]
        self._released = len(self._text)
        return out
