"""Transcripts mask secrets on the way in, whatever the router echoes back."""

from __future__ import annotations

from router_drivers import RouterTimeout, Secret
from router_drivers.transcript import MASK, Masker, Transcript


def test_secret_echoed_by_the_router_is_masked_in_what_was_seen() -> None:
    t = Transcript(Masker([Secret("hunter2")]))
    t.sent(MASK)
    t.seen("Password: hunter2\r\nWelcome\r\n")
    assert "hunter2" not in t.text()
    assert "< Password: ********" in t.text()


def test_longer_secret_is_masked_whole_when_it_contains_a_shorter_one() -> None:
    mask = Masker([Secret("abc"), Secret("abcdef")])
    assert mask("x abcdef y abc") == f"x {MASK} y {MASK}"


def test_no_secret_means_nothing_is_masked() -> None:
    assert Masker([None])("plain text") == "plain text"


def test_error_message_shows_the_tail_of_what_was_read() -> None:
    err = RouterTimeout("save", "the router stopped answering", "x" * 1000 + "LAST LINE")
    assert str(err).endswith("LAST LINE")
    assert "last text from the router (secrets masked)" in str(err)
    assert len(str(err)) < 600
