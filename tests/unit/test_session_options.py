"""How sessions are made: their threads sleep between operators unless the settings let them spin (a decoder's)."""

from __future__ import annotations

from aimass.serving.session import SessionFactory
from aimass.settings import Settings


def test_threads_sleep_between_operators_by_default() -> None:
    options = SessionFactory(Settings()).options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_decoder_may_let_them_spin() -> None:
    options = SessionFactory(Settings(intra_op_spinning=True)).options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
