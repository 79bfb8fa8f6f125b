"""Edit any of your prompts, and switch between its versions ("< 2/3 >").

Under every prompt of the version shown: ✏️ Edit opens its text in an editor under it;
sending the edited text keeps the prompt and everything after it as the earlier version
(memory/branches.py) and the reply to the edited prompt follows as a normal turn. Beside an
edited prompt, < n/m > shows which version is on the page and switches to the previous or
next one, with the replies that followed it. Each control names its target (the prompt's
seq, the fork point) and acts only while the conversation's newest message is the newest the
page showed when it was clicked (`state.newest_shown`: a turn's run shows its reply stored
after these controls were drawn), so a click on a page the conversation has moved on from (another
tab, a double click) changes nothing and says why.
"""

from __future__ import annotations

import streamlit as st

from chatbot.turn import TurnRequest
from memory import Conversation, Message, Role
from ui import state
from ui.feedback import act
from ui.frame import services_or_stop  # the process's services (cached), for callbacks
from ui.records import Editing, Place

EDIT_LABEL = "Edit your message"
EDIT_BUTTON = "✏️ Edit"
PREVIOUS, NEXT = "<", ">"


def edit_button(conversation: Conversation, message: Message) -> None:
    """✏️ Edit under a prompt (ui/message_actions.py `ACTIONS`); hidden while its editor is
    open."""
    if message.role is not Role.USER:
        return
    user, cid = conversation.user_id, conversation.conversation_id
    editing = state.editing_of(user, cid)
    if editing is not None and editing.from_seq == message.seq:
        return
    st.button(
        EDIT_BUTTON,
        key=f"edit:{message.seq}",
        type="tertiary",
        on_click=open_editor,
        args=(user, cid, message.seq, message.content),
        help="Edit this message; this version and its replies are kept (< > switches back).",
    )


def open_editor(user_id: str, conversation_id: str, seq: int, text: str) -> None:
    newest = state.newest_shown(user_id, conversation_id)
    state.start_editing(Editing(user_id, conversation_id, seq, text, newest))


def version_switch(conversation: Conversation, message: Message) -> None:
    """< n/m > beside a prompt that starts one of several versions."""
    point = conversation.branch_at(message.seq) if message.role is Role.USER else None
    if point is None:
        return
    user, cid = conversation.user_id, conversation.conversation_id
    st.button(
        PREVIOUS,
        key=f"branch:{point.parent_seq}:previous",
        type="tertiary",
        disabled=point.shown <= 1,
        on_click=switch_to,
        args=(user, cid, point.parent_seq, point.shown - 1),
        help="Show the previous version of this message",
    )
    st.markdown(f"{point.shown}/{point.count}", width="content")
    st.button(
        NEXT,
        key=f"branch:{point.parent_seq}:next",
        type="tertiary",
        disabled=point.shown >= point.count,
        on_click=switch_to,
        args=(user, cid, point.parent_seq, point.shown + 1),
        help="Show the next version of this message",
    )


def switch_to(user_id: str, conversation_id: str, parent: int, version: int) -> None:
    memory = services_or_stop().memory
    newest = state.newest_shown(user_id, conversation_id)
    act(
        Place.PROMPT,
        "Switching to another version",
        lambda: memory.switch_branch(
            user_id, conversation_id, parent, version, expect_last_seq=newest
        ),
    )


def editor(conversation: Conversation, message: Message) -> None:
    """The editor under the prompt whose ✏️ Edit was pressed: its text, Send and Cancel."""
    editing = state.editing_of(conversation.user_id, conversation.conversation_id)
    if editing is None or editing.from_seq != message.seq:
        return
    services = services_or_stop()
    with st.container(border=True):
        st.text_area(
            EDIT_LABEL,
            key=state.EDIT_KEY,
            height=150,
            max_chars=max(services.max_prompt_chars, len(editing.text)),
        )
        left, right = st.columns(2)
        left.button(
            "Send edited message",
            key="send_edit",
            on_click=send_edit,
            args=(conversation.user_id,),
            type="primary",
        )
        right.button("Cancel", key="cancel_edit", on_click=cancel_edit)


def cancel_edit() -> None:
    state.take_editing()


def send_edit(user_id: str) -> None:
    """The edited prompt starts a new version after the messages before it; the version it
    replaces is kept."""
    editing, text = state.take_editing()
    if editing is not None and text.strip():
        state.queue_turn(
            TurnRequest(
                user_id,
                text,
                replace_from=editing.from_seq,
                expect_last_seq=editing.expect_last_seq,
                keep_replaced=True,
            )
        )
