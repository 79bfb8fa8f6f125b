"""The page's memory between script runs: the only module that touches `st.session_state` and
`st.query_params`, each through a typed accessor.

Everything a user owns lives in Redis; what is here is UI state only: which conversation the
URL opens (`?c=<id>`, `&m=<seq>` for a search hit, `?user=` for the demo picker), an unsent
draft, the turn a callback asked for, the last failure, a question waiting for its yes, and
what each widget shows (set from what Redis holds on every run, so two tabs never disagree for
long). Records name their user, so nothing of one demo user's page shows after a switch.

The package `ui/state/` is the only place that touches them: one module per part of the
page state, re-exported here so sections use `from ui import state`.
"""

from __future__ import annotations

from ui.state.base import (
    EDIT_KEY,
    PROMPT_KEY,
    count_value,
    record_of,
    show_value,
    take_flag,
    widget_key,
    widget_value,
)
from ui.state.questions import (
    ask,
    confirmation_of,
    editing_of,
    import_round,
    leave_note,
    next_import_round,
    report,
    start_editing,
    take_editing,
    take_note,
    take_report,
)
from ui.state.recall import (
    backlog_seen,
    forget_request_note,
    keep_request_note,
    leave_memory_note,
    remembering_now,
    request_note_of,
    start_remembering,
    stop_remembering,
    take_memory_note,
)
from ui.state.turn import (
    draft_of,
    drop_draft,
    first_reread_for,
    keep_draft,
    mark_saved_after_all,
    model_failure_of,
    newest_shown,
    queue_turn,
    saved_after_all_now,
    set_model_failure,
    show_newest,
    take_turn,
    typed_prompt,
    waiting_turn,
)
from ui.state.url import (
    close_sidebar_now,
    drop_url_message,
    forget_found,
    found_message,
    name_conversation,
    name_user,
    open_conversation,
    open_found,
    remember_found,
    scroll_to_found_now,
    start_fresh,
    url_conversation,
    url_message,
    url_user,
    user_switched,
)

__all__ = [
    "EDIT_KEY",
    "PROMPT_KEY",
    "ask",
    "backlog_seen",
    "close_sidebar_now",
    "confirmation_of",
    "count_value",
    "draft_of",
    "drop_draft",
    "drop_url_message",
    "editing_of",
    "first_reread_for",
    "forget_found",
    "forget_request_note",
    "found_message",
    "import_round",
    "keep_draft",
    "keep_request_note",
    "leave_memory_note",
    "leave_note",
    "mark_saved_after_all",
    "model_failure_of",
    "name_conversation",
    "name_user",
    "newest_shown",
    "next_import_round",
    "open_conversation",
    "open_found",
    "queue_turn",
    "record_of",
    "remember_found",
    "remembering_now",
    "report",
    "request_note_of",
    "saved_after_all_now",
    "scroll_to_found_now",
    "set_model_failure",
    "show_newest",
    "show_value",
    "start_editing",
    "start_fresh",
    "start_remembering",
    "stop_remembering",
    "take_editing",
    "take_flag",
    "take_memory_note",
    "take_note",
    "take_report",
    "take_turn",
    "typed_prompt",
    "url_conversation",
    "url_message",
    "url_user",
    "user_switched",
    "waiting_turn",
    "widget_key",
    "widget_value",
]
