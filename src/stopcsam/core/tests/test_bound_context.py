"""A bound field's context is the text every stored ciphertext of it was sealed with: the
quick way of writing it must give exactly what json.dumps gave, for any values."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stopcsam.chat.models import ChatMessage, message_body_context

BODY = ChatMessage._meta.get_field("body")
VALUE = st.one_of(st.integers(), st.text(), st.text(alphabet=st.characters(max_codepoint=127)))


def reference(session_id: object, sender: object, client_id: object) -> str:
    row = [str(session_id), str(sender), str(client_id)]
    return f"chat.message.body{json.dumps(row, ensure_ascii=True)}"


@given(VALUE, VALUE, VALUE)
def test_the_context_is_what_json_wrote_for_any_values(session_id, sender, client_id) -> None:
    found = BODY.bound_context(session_id=session_id, sender=sender, client_id=client_id)  # type: ignore[attr-defined]
    assert found == reference(session_id, sender, client_id)


@pytest.mark.parametrize(
    "client_id", ["abc-DEF_0123456789", 'say "hi"', "back\\slash", "tab\there", "é", "\x7f", ""]
)
def test_the_edges_of_plain_text(client_id: str) -> None:
    found = message_body_context(session_id=12, sender="participant", client_id=client_id)
    assert found == reference(12, "participant", client_id)


def test_the_values_must_name_exactly_the_bound_columns() -> None:
    with pytest.raises(TypeError):
        BODY.bound_context(session_id=1, sender="participant")  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        BODY.bound_context(session_id=1, sender="x", client_id="y", seq=3)  # type: ignore[attr-defined]
