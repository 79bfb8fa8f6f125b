"""Streamlit UI: a multi-user chatbot whose every message lives in Redis.

UI only: storage is memory/, the model and identity are chatbot/. `st.session_state` holds
UI state (which page of history is open, an unsent draft, a turn waiting to run, the last
error); everything a user owns lives in Redis, so any app instance can serve any user, and
every widget is set from what Redis holds on every run (two tabs never disagree for long).
The open conversation is named by the URL (`?c=<id>`), so reload and back/forward keep it.

The page reads top to bottom: `main()` at the end renders the prompt box, the sidebar sections
(one function each), the conversation and the turn a callback asked for. Widget callbacks are
module-level functions that get what they need through `args=`. One rule for every setting:
it is saved the moment it changes; a change that would delete messages asks first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from itertools import chain
from typing import NoReturn

import streamlit as st
import streamlit.components.v1 as components
from dotenv import load_dotenv
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.scriptrunner import get_script_run_ctx

from chatbot.config import ConfigError, Environment
from chatbot.context_chart import context_chart
from chatbot.conversation_list import (
    NEW_CHAT,
    activity_line,
    awaits_title,
    entry_label,
    listed,
    plain,
    plural,
    title_after_first_reply,
    title_of,
)
from chatbot.identity import (
    DEMO_WARNING,
    EASYAUTH_LOGIN_URL,
    EASYAUTH_LOGOUT_URL,
    AuthMode,
    Identity,
    check_platform_authentication,
    check_trusted_headers,
    demo_identity,
    identity_from_easyauth,
    identity_from_oidc,
)
from chatbot.llm import TOO_LONG, ModelError, Provider
from chatbot.presets import Preset
from chatbot.prompt_echo import install_prompt_echo
from chatbot.rendering import (
    format_duration,
    request_line,
    show_reply,
    stream_reply,
    totals_line,
    usage_line,
)
from chatbot.services import Services, build_services, is_local_demo
from chatbot.session import (
    Confirmation,
    Destructive,
    Draft,
    Editing,
    FoundMessage,
    ModelFailure,
    Turn,
)
from chatbot.telemetry import configure_telemetry
from chatbot.your_data import (
    FOUND_HERE,
    SCROLL_TO_FOUND,
    download_buttons,
    erased_note,
    found_seq,
    hit_line,
    import_note,
    import_upload_file,
    inert,
    messages_to_reach,
    stored_amounts,
)
from memory import (
    MAX_WINDOW,
    ChatMemory,
    ChatMemoryError,
    ContextWindow,
    Conversation,
    ConversationInfo,
    IndexUnavailable,
    InvalidInput,
    Message,
    Role,
    StorageUnavailable,
    WriteOutcomeUnknown,
    check_conversation_id,
    new_conversation_id,
    new_message_id,
)
from memory.limits import LimitExceeded, Reservation
from memory.portable import MAX_IMPORT_BYTES

SLIDER_MAX_MESSAGES = 50  # the history slider's top; memory itself accepts up to MAX_WINDOW
PAGE_STEP = 50  # messages shown at first, and added by each "Show earlier messages"
EDIT_KEY = "edit_text"  # the editor of the last prompt (one per session; `Editing` names whose)
LIST_STEP = 20  # conversations listed at first, and added by each "Show more"
# An over-long prompt is kept whole to edit when it is at most this many times the limit; a
# longer one keeps only what could be sent (a session never holds megabytes of draft).
DRAFT_KEEP_FACTOR = 2
CUSTOM = "__custom__"
KEEP_FOREVER = 0
RETENTION_CHOICES = [
    5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, KEEP_FOREVER,
]  # fmt: skip
EXAMPLE_PROMPTS = (
    "Explain in two sentences what you will remember about this chat.",
    "Give me three tips for naming variables.",
    "What was the first thing I asked you?",
)
STOPPED = "You stopped the reply; nothing of it was saved."
# Runs in a component's iframe (same origin): closes the sidebar overlay on a phone-sized window.
CLOSE_SIDEBAR_ON_PHONE = """<script>
const app = window.parent;
if (app.innerWidth <= 768) {
  app.document.querySelector("[data-testid='stSidebarCollapseButton'] button")?.click();
}
</script>"""

load_dotenv(override=False)
st.set_page_config(page_title="Redis chat memory", page_icon="💬", layout="wide")


@st.cache_resource(show_spinner="Connecting to Redis…")
def get_services() -> Services:
    configure_telemetry(Environment.current())
    return build_services(Environment.current())


def widget_key(name: str, identity: Identity) -> str:
    """Per-user widget keys, so switching user re-reads that user's settings from Redis."""
    return f"{name}:{hashlib.sha256(identity.user_id.encode()).hexdigest()[:12]}"


def draft_of(user_id: str, conversation_id: str | None = None) -> Draft | None:
    """The user's unsent prompt; with `conversation_id`, only if it was typed there."""
    draft = st.session_state.get("draft")
    if not isinstance(draft, Draft) or draft.user_id != user_id:
        return None
    if conversation_id is not None and draft.conversation_id not in ("", conversation_id):
        return None
    return draft


def model_failure_of(user_id: str) -> ModelFailure | None:
    failure = st.session_state.get("model_error")
    return failure if isinstance(failure, ModelFailure) and failure.user_id == user_id else None


def confirmation_of(
    user_id: str, action: Destructive, conversation_id: str | None = None
) -> Confirmation | None:
    asked = st.session_state.get("confirm")
    if (
        isinstance(asked, Confirmation)
        and asked.user_id == user_id
        and asked.action is action
        and asked.conversation_id == conversation_id
    ):
        return asked
    return None


def editing_of(user_id: str, conversation_id: str) -> Editing | None:
    editing = st.session_state.get("editing")
    if (
        isinstance(editing, Editing)
        and editing.user_id == user_id
        and editing.conversation_id == conversation_id
    ):
        return editing
    return None


def turn_waiting() -> Turn | None:
    turn = st.session_state.get("turn")
    return turn if isinstance(turn, Turn) else None


# --- pages that stop the script ----------------------------------------------------------------


def storage_unavailable(error: Exception, details: bool) -> NoReturn:
    """Storage refused the page's read; the error itself (hosts, paths) only where allowed."""
    st.error(
        "⚠️ Storage unavailable, retrying on your next action." + (f" ({error})" if details else "")
    )
    st.button("Retry now", key="retry_storage")
    st.stop()


def sign_in_required(
    title: str, text: str, login: bool = False, login_url: str | None = None
) -> NoReturn:
    st.title(title)
    st.write(text)
    if login:
        st.button("Sign in", on_click=st.login, type="primary")
    if login_url:
        st.link_button("Sign in", login_url, type="primary")
    st.stop()


def configuration_error(error: ConfigError) -> NoReturn:
    st.error(f"Configuration error: {error}")
    st.stop()


# --- identity ----------------------------------------------------------------------------------


def user_switched() -> None:
    st.session_state["close_sidebar"] = True
    st.query_params.pop("c", None)  # another user's conversation is not theirs to open


def current_identity(services: Services, busy: bool) -> Identity:
    auth = services.auth
    if auth.mode is AuthMode.DEMO:
        wanted = st.query_params.get("user")
        user = st.sidebar.selectbox(
            "User",
            auth.demo_users,
            index=auth.demo_users.index(wanted) if wanted in auth.demo_users else 0,
            key="demo_user",
            on_change=user_switched,
            disabled=busy,
        )
        if st.query_params.get("user") != user:
            st.query_params["user"] = user
        st.warning(DEMO_WARNING, icon="⚠️")
        return demo_identity(user)
    try:
        check_platform_authentication(auth)
        check_trusted_headers(auth.mode, st.get_option("server.trustedUserHeaders"))
    except ConfigError as error:
        configuration_error(error)
    claims = st.user.to_dict()
    if auth.mode is AuthMode.OIDC:
        identity = identity_from_oidc(claims, auth)
        if identity is None:
            sign_in_required(
                "💬 Sign in to chat", "Your conversation is private to your account.", login=True
            )
    else:
        identity = identity_from_easyauth(claims, auth)
        if identity is None:
            sign_in_required(
                "🔒 Sign-in required",
                "This app only serves signed-in users, and no identity came with your request. "
                "Sign in through the site's login page and reload.",
                login_url=EASYAUTH_LOGIN_URL,
            )
    st.sidebar.text(f"Signed in as {identity.display_name}")
    st.sidebar.caption(f"User id: `{identity.user_id}`")
    if auth.mode is AuthMode.OIDC:
        st.sidebar.button("Sign out", on_click=st.logout)
    else:
        st.sidebar.link_button("Sign out", EASYAUTH_LOGOUT_URL)
    return identity


# --- callbacks (each runs before the script run its widget set off) ----------------------------


def act(place: str, action: str, write: Callable[[], object]) -> bool:
    """Run a write; a storage failure becomes a message shown at `place` (a sidebar section,
    or "prompt" next to the prompt box). True when the write went through."""
    try:
        write()
    except StorageUnavailable as error:
        st.session_state[f"error:{place}"] = f"{action} failed: storage unavailable ({error})."
    except ChatMemoryError as error:
        st.session_state[f"error:{place}"] = f"{action} failed: {error}"
    else:
        return True
    return False


def queue_prompt(user_id: str) -> None:
    """The prompt box's on_submit: the prompt runs as a turn, with the inputs disabled."""
    prompt = st.session_state.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        st.session_state["turn"] = Turn(user_id, prompt)


def queue_turn(user_id: str, prompt: str | None, replace_from: int | None = None) -> None:
    st.session_state["turn"] = Turn(user_id, prompt, replace_from=replace_from)


def save_window_size(memory: ChatMemory, user_id: str, key: str) -> None:
    size = int(st.session_state[key])
    act("context", "Saving the history length", lambda: memory.set_window_size(user_id, size))


def save_summary_setting(services: Services, user_id: str, key: str) -> None:
    enabled = bool(st.session_state[key])
    act(
        "context",
        "Saving the summary setting",
        lambda: services.context.summaries.set_enabled(user_id, enabled),
    )


def choose_preset(
    memory: ChatMemory, user_id: str, key: str, presets: dict[str, Preset], editing_key: str
) -> None:
    choice = st.session_state[key]
    if choice == CUSTOM:
        st.session_state[editing_key] = True  # the box opens holding the instruction in force
        return
    st.session_state.pop(editing_key, None)
    preset = presets[choice]
    if act(
        "instruction",
        "Changing the instruction",
        lambda: memory.set_system_instruction(user_id, preset.text, preset=preset.id),
    ):
        st.toast(f"Instruction: {preset.title}")


def save_custom_instruction(memory: ChatMemory, user_id: str, key: str) -> None:
    text = str(st.session_state.get(key, ""))
    if not text.strip():
        st.session_state["error:instruction"] = "A custom instruction cannot be empty."
        return
    if act(
        "instruction",
        "Saving the instruction",
        lambda: memory.set_system_instruction(user_id, text),
    ):
        st.toast("Custom instruction saved")


def choose_retention(
    memory: ChatMemory, user_id: str, key: str, ttl: int | None, stored: int
) -> None:
    """Save at once, unless the new time to live deletes messages sooner: then ask first."""
    chosen = int(st.session_state[key]) or None
    shorter = chosen is not None and (ttl is None or chosen < ttl)
    if shorter and stored:
        st.session_state["confirm"] = Confirmation(user_id, Destructive.RETENTION, chosen)
    else:
        apply_retention(memory, user_id, chosen)


def apply_retention(memory: ChatMemory, user_id: str, ttl: int | None) -> None:
    st.session_state.pop("confirm", None)
    if act("retention", "Applying retention", lambda: memory.set_retention(user_id, ttl)):
        label = "kept forever" if ttl is None else f"kept {format_duration(ttl)}"
        st.toast(f"Your messages are now {label}.")


def ask(confirmation: Confirmation | None) -> None:
    """Show (or, with None, dismiss) the confirmation of a destructive action."""
    st.session_state["confirm"] = confirmation


def confirm(
    question: str,
    yes: tuple[str, Callable[..., None], tuple[object, ...]],
    name: str,
    busy: bool,
) -> None:
    """A destructive action's question in the sidebar, with its Yes (label, callback and
    arguments) and Cancel; Yes is disabled while a reply streams."""
    label, on_yes, args = yes
    st.sidebar.warning(question)
    left, right = st.sidebar.columns(2)
    left.button(label, on_click=on_yes, args=args, type="primary", disabled=busy)
    right.button("Cancel", key=f"cancel_{name}", on_click=ask, args=(None,))


def clear_history(services: Services, user_id: str, conversation_id: str) -> None:
    st.session_state.pop("confirm", None)

    def clear() -> None:
        services.memory.clear(user_id, conversation_id)
        services.context.summaries.clear(user_id, conversation_id)

    if act("history", "Clearing the conversation", clear):
        st.toast("The conversation was cleared.")


def clear_all_history(services: Services, identity: Identity) -> None:
    st.session_state.pop("confirm", None)

    def clear_all() -> None:
        services.memory.clear_all()
        services.context.summaries.clear_all()

    if identity.is_admin and act("history", "Clearing all history", clear_all):
        st.toast("All history was cleared.")


def open_conversation(conversation_id: str) -> None:
    """Switch conversation: the URL names it (a browser history entry, so Back returns)."""
    st.query_params["c"] = conversation_id
    st.session_state["close_sidebar"] = True  # on a phone, the chat it opened is under it
    # the failure explained the conversation left; back there, "no reply stored" + Retry show
    for record in ("confirm", "editing", "model_error"):
        st.session_state.pop(record, None)


def start_new_chat() -> None:
    """A fresh id in the URL; nothing is stored until its first prompt."""
    open_conversation(new_conversation_id())


def save_title(memory: ChatMemory, user_id: str, conversation_id: str, key: str) -> None:
    title = str(st.session_state.get(key, ""))
    if act(
        "conversations",
        "Renaming the conversation",
        lambda: memory.rename_conversation(user_id, conversation_id, title),
    ):
        st.toast("Conversation renamed.")


def pin_conversation(memory: ChatMemory, user_id: str, conversation_id: str, pin: bool) -> None:
    act(
        "conversations",
        "Pinning the conversation" if pin else "Unpinning the conversation",
        lambda: memory.pin_conversation(user_id, conversation_id, pin),
    )


def delete_conversation(services: Services, user_id: str, info: ConversationInfo) -> None:
    """Delete the open conversation, then open the most recent one left (or a New chat)."""
    st.session_state.pop("confirm", None)
    memory = services.memory
    if not act(
        "conversations",
        "Deleting the conversation",
        lambda: memory.delete_conversation(user_id, info.id),
    ):
        return
    st.toast(f"Deleted “{plain(title_of(info))}”.")
    try:
        remaining = memory.most_recent_conversation(user_id)
    except ChatMemoryError:
        remaining = None
    open_conversation(remaining or new_conversation_id())


def show_more_conversations(key: str, limit: int) -> None:
    st.session_state[key] = min(limit + LIST_STEP, MAX_WINDOW)


def start_edit(editing: Editing) -> None:
    st.session_state["editing"] = editing
    st.session_state[EDIT_KEY] = editing.text


def cancel_edit() -> None:
    st.session_state.pop("editing", None)


def send_edit(user_id: str, key: str) -> None:
    """The edited prompt replaces the last prompt and its reply."""
    editing = st.session_state.pop("editing", None)
    text = str(st.session_state.get(key, ""))
    if isinstance(editing, Editing) and text.strip():
        st.session_state["turn"] = Turn(user_id, text, replace_from=editing.from_seq)


def show_earlier(key: str, page_size: int) -> None:
    st.session_state[key] = page_size + PAGE_STEP


def edit_draft(user_id: str, key: str) -> None:
    """An edited draft is a new message (a new id); an unchanged one keeps its id."""
    text = str(st.session_state[key])
    draft = draft_of(user_id)
    if draft is None or draft.text != text:
        where = draft.conversation_id if draft else ""
        st.session_state["draft"] = Draft(user_id, text, conversation_id=where)


def send_draft(user_id: str, key: str) -> None:
    text = str(st.session_state[key])
    draft = draft_of(user_id)
    st.session_state.pop("draft", None)
    same = draft is not None and draft.text == text
    st.session_state["turn"] = Turn(user_id, text, draft.message_id if same and draft else None)


def discard_draft() -> None:
    st.session_state.pop("draft", None)


# --- sidebar sections --------------------------------------------------------------------------


def section_error(place: str, where: DeltaGenerator = st.sidebar) -> None:
    """A failed action's message, shown at the top of the section whose control failed (on a
    phone the sidebar covers the page, so an error elsewhere would be hidden, and one below a
    tall control may fall under the screen's edge)."""
    error = st.session_state.pop(f"error:{place}", None)
    if error:
        where.error(error)


@st.fragment
def context_section(
    services: Services, identity: Identity, conversation: Conversation, busy: bool
) -> None:
    """A fragment (called inside the sidebar): moving the slider reruns only this section,
    since only the token count and the chart depend on it."""
    run = get_script_run_ctx()
    if run is not None and run.fragment_ids_this_run:  # a rerun of this section alone
        conversation = services.memory.conversation(
            identity.user_id, conversation.conversation_id, page_size=0
        )
    st.subheader("Context")
    section_error("context", st.container())
    key = widget_key("window", identity)
    st.session_state[key] = conversation.window_size  # what Redis holds, on every run
    st.slider(
        "Length of chat history",
        min_value=min(1, conversation.window_size),
        max_value=max(SLIDER_MAX_MESSAGES, conversation.window_size),
        key=key,
        help="The model gets the system instruction plus the last N messages.",
        on_change=save_window_size,
        args=(services.memory, identity.user_id, key),
        disabled=busy,
    )
    context = services.context
    summary_state = context.summaries.state(identity.user_id, conversation.conversation_id)
    request = context.plan(conversation.window, summary_state)
    st.metric(
        "Chat history tokens",
        f"{'≈ ' if context.estimated else ''}{request.token_count:,}",
        help=(
            "Prompt tokens of the system instruction (and summary) plus the last N stored "
            "messages that fit the model: what a retry would send now. Hover the bar for each "
            "message."
            + (
                " ≈ estimated: the model's tokenizer is unknown (set LLM_TOKENIZER)."
                if context.estimated
                else ""
            )
        ),
    )
    budget = context.budget.prompt_limit
    st.caption(request_line(request))
    st.caption(
        f"{request.token_count:,} of the {budget:,} tokens a request may use "
        f"({request.token_count / budget:.0%})."
    )
    st.vega_lite_chart(
        *context_chart(request, conversation.window.system, budget),
        width="stretch",
    )
    summary_key = widget_key("summary", identity)
    st.session_state[summary_key] = summary_state.enabled  # what Redis holds, on every run
    st.toggle(
        "Rolling summary",
        key=summary_key,
        help="Fold messages that leave the window into a summary sent after the instruction.",
        on_change=save_summary_setting,
        args=(services, identity.user_id, summary_key),
        disabled=busy,
    )
    if summary_state.enabled and summary_state.checkpoint:
        checkpoint = summary_state.checkpoint
        author = "extracted offline, no model" if checkpoint.extractive else checkpoint.model
        st.caption(
            f"Summary of messages up to #{checkpoint.covers_seq}: "
            f"{checkpoint.token_count:,} tokens, written by {author}."
        )


def preset_label(presets: dict[str, Preset], option: str) -> str:
    return "Custom…" if option == CUSTOM else presets[option].title


def instruction_section(
    services: Services, identity: Identity, conversation: Conversation, busy: bool
) -> None:
    bar = st.sidebar
    bar.subheader("System instruction")
    section_error("instruction")
    memory, presets, user = services.memory, services.presets, identity.user_id
    current = conversation.window.system
    options = [*presets, CUSTOM]
    preset_key = widget_key("preset", identity)
    custom_key = widget_key("custom_instruction", identity)
    editing_key = widget_key("editing_custom", identity)
    in_force = current.preset if current.preset in presets else CUSTOM
    st.session_state[preset_key] = CUSTOM if st.session_state.get(editing_key) else in_force
    bar.selectbox(
        "Preset",
        options,
        key=preset_key,
        format_func=lambda option: preset_label(presets, option),
        on_change=choose_preset,
        args=(memory, user, preset_key, presets, editing_key),
        disabled=busy,
    )
    if st.session_state[preset_key] == CUSTOM:
        st.session_state[custom_key] = current.text
        bar.text_area(
            "Custom instruction",
            key=custom_key,
            max_chars=max(services.max_prompt_chars, len(current.text)),
            on_change=save_custom_instruction,
            args=(memory, user, custom_key),
            disabled=busy,
            help="Saved as soon as you leave the box (or press Ctrl+Enter).",
        )
    bar.caption("In force now:")
    bar.text(current.text)


def retention_label(seconds: int) -> str:
    return "Keep forever" if seconds == KEEP_FOREVER else format_duration(seconds)


def expiry_status(memory: ChatMemory, user_id: str, conversation_id: str, shown: int) -> None:
    """Re-read on a timer (a fragment): the countdown moves, and the page reruns once messages
    have expired (or arrived from another tab), so what is on screen is what Redis holds."""
    try:
        now = memory.conversation(user_id, conversation_id, window_size=0, page_size=0)
    except ChatMemoryError as error:
        st.caption(f"Retention status unavailable: {error}")
        return
    if now.total_messages != shown:
        st.rerun(scope="app")
    ttl, oldest = now.retention.ttl_seconds, now.retention.oldest_expires_in
    if ttl is None:
        return
    remaining = (
        f"oldest message expires in {format_duration(round(oldest))}"
        if oldest is not None
        else "no messages stored"
    )
    st.caption(f"Policy: {format_duration(ttl)} per message; {remaining}.")


def retention_section(
    services: Services, identity: Identity, conversation: Conversation, busy: bool
) -> None:
    bar = st.sidebar
    bar.subheader("Retention")
    section_error("retention")
    memory, user = services.memory, identity.user_id
    key = widget_key("ttl", identity)
    ttl = conversation.ttl_seconds
    choices = [*sorted({*RETENTION_CHOICES[:-1], ttl or 5}), KEEP_FOREVER]
    st.session_state[key] = ttl or KEEP_FOREVER
    bar.select_slider(
        "Time to live of chat entries",
        options=choices,
        format_func=retention_label,
        key=key,
        on_change=choose_retention,
        args=(memory, user, key, ttl, conversation.total_messages),
        disabled=busy,
        help="Saved at once; a shorter time that would delete your messages asks first.",
    )
    asked = confirmation_of(user, Destructive.RETENTION)
    if asked is not None and asked.ttl_seconds is not None:
        duration = format_duration(asked.ttl_seconds)
        confirm(
            f"Keep messages {duration}? Your {plural(conversation.total_messages, 'message')} "
            f"stored now will be deleted in {duration}.",
            ("Apply retention", apply_retention, (memory, user, asked.ttl_seconds)),
            "retention",
            busy,
        )
    if ttl is None:
        bar.caption("Policy: keep forever.")
        return
    with bar:
        st.fragment(run_every=1)(expiry_status)(
            memory, user, conversation.conversation_id, conversation.total_messages
        )


def usage_section(services: Services, conversation: Conversation) -> None:
    bar = st.sidebar
    bar.subheader("Usage")
    last = conversation.last_reply_usage
    if last is not None:
        bar.caption(f"Last reply: {usage_line(last, services.prices)}")
    bar.caption(f"Your total: {totals_line(conversation.usage_totals, services.prices)}")


def history_section(
    services: Services, identity: Identity, conversation: Conversation, busy: bool
) -> None:
    bar = st.sidebar
    user = identity.user_id
    bar.subheader("History")
    section_error("history")
    cid = conversation.conversation_id
    if confirmation_of(user, Destructive.CLEAR_MINE, cid) is None:
        bar.button(
            "Clear this conversation",
            on_click=ask,
            args=(Confirmation(user, Destructive.CLEAR_MINE, conversation_id=cid),),
            disabled=busy or not conversation.total_messages,
        )
    else:
        confirm(
            f"Delete the {plural(conversation.total_messages, 'message')} of "
            f"“{plain(title_of(conversation.info))}”? The conversation stays, empty. This "
            "cannot be undone.",
            ("Yes, clear it", clear_history, (services, user, conversation.conversation_id)),
            "clear_mine",
            busy,
        )
    if identity.is_admin:
        if confirmation_of(user, Destructive.CLEAR_ALL) is None:
            bar.button(
                "Clear ALL history…",
                on_click=ask,
                args=(Confirmation(user, Destructive.CLEAR_ALL),),
                disabled=busy,
            )
        else:
            confirm(
                "Delete every user's messages? This cannot be undone.",
                ("Yes, delete all", clear_all_history, (services, identity)),
                "clear_all",
                busy,
            )
    if not services.shows_internals_to(identity):
        return
    budget = services.context.budget
    assumed = "" if budget.context_known else " (assumed: set MODEL_CONTEXT_TOKENS)"
    bar.caption(
        f"Storage: {services.storage_description} · Model: {services.model.config.describe()}"
        f" · context {budget.context_tokens:,} tokens{assumed}, replies up to "
        f"{budget.reply_tokens:,}"
    )


# --- Your data: search, export, import, erase (issue 16) ---------------------------------------


def open_hit(user_id: str, conversation_id: str, seq: int) -> None:
    """A search hit's Open: the URL names its conversation and message (`?c=…&m=<seq>`)."""
    st.session_state["found"] = FoundMessage(user_id, conversation_id, seq)
    st.query_params.update(c=conversation_id, m=str(seq))  # one browser history entry
    st.session_state["close_sidebar"] = True


def found_message_page(
    services: Services, identity: Identity, conversation_id: str, page_size: int
) -> int:
    """With `?m=<seq>` (a search hit opened), a page size that shows that message, worked out
    once per hit; a message the conversation no longer holds drops `m` (and says so when it
    was just opened here)."""
    seq = found_seq(st.query_params.get("m"))
    if seq is None:
        return page_size
    found = st.session_state.get("found")
    if not (
        isinstance(found, FoundMessage)
        and (found.user_id, found.conversation_id, found.seq)
        == (identity.user_id, conversation_id, seq)
    ):
        found = None
    if found is not None and found.size:
        return max(page_size, found.size)
    reach = messages_to_reach(services.memory, identity.user_id, conversation_id, seq, page_size)
    if reach is None:
        st.query_params.pop("m", None)
        st.session_state.pop("found", None)
        if found is not None:
            st.session_state["error:search"] = "That message is no longer stored."
        return page_size
    size = -(-reach // PAGE_STEP) * PAGE_STEP
    st.session_state["found"] = FoundMessage(identity.user_id, conversation_id, seq, size)
    st.session_state["scroll_to_found"] = True
    return max(page_size, size)


def found_mark(message: Message) -> None:
    """Marks the message a search hit opened, and scrolls to it once."""
    found = st.session_state.get("found")
    if not isinstance(found, FoundMessage) or found.seq != message.seq:
        return
    if st.query_params.get("m") != str(found.seq):  # left by a switch that dropped `m`
        return
    st.caption(FOUND_HERE)
    if st.session_state.pop("scroll_to_found", False):
        components.html(SCROLL_TO_FOUND, height=0)


def search_section(services: Services, identity: Identity, busy: bool) -> None:
    """One box: the user's messages in every conversation containing all its words. What the
    user typed goes to the memory layer as-is (it escapes); hits show as plain text."""
    bar = st.sidebar
    section_error("search")
    text = bar.text_input(
        "🔎 Search your chats",
        key=widget_key("search", identity),
        placeholder="Words from any of your chats",
        disabled=busy,
    )
    if not text.strip():
        return
    try:
        hits = services.memory.search(identity.user_id, text)
    except IndexUnavailable as error:
        bar.info(str(error))  # a cluster without a coordinator, or clear-all running
        return
    except ChatMemoryError as error:
        bar.error(f"Search failed: {error}")
        return
    if not hits:
        bar.caption("No message of yours contains all of these words.")
    for number, hit in enumerate(hits):
        box = bar.container(border=True)
        box.text(hit.title or "Untitled chat")
        box.caption(hit_line(hit))
        box.text(hit.snippet)
        box.button(
            "Open",
            key=f"search_hit:{number}",
            on_click=open_hit,
            args=(identity.user_id, hit.conversation_id, hit.seq),
            disabled=busy,
        )


def import_upload(memory: ChatMemory, user_id: str, key: str) -> None:
    """The import box's on_change: checks the whole file, then imports all of it or nothing;
    the box empties either way (a new key), the outcome shown at the top of the section."""
    upload = st.session_state.get(key)
    st.session_state["import_round"] = int(st.session_state.get("import_round", 0)) + 1
    if upload is None:
        return
    imported: list[ConversationInfo] = []
    name = inert(upload.name)
    if act(
        "data",
        f"Importing {name}",
        lambda: imported.extend(import_upload_file(memory, user_id, upload.getvalue())),
    ):
        st.session_state["data_note"] = import_note(imported, name)


def erase_me(memory: ChatMemory, user_id: str, conversations: int, messages: int) -> None:
    """Every key of the user goes; the page starts fresh (no conversation in the URL)."""
    st.session_state.pop("confirm", None)
    if act("data", "Erasing your data", lambda: memory.erase_user(user_id)):
        for param in ("c", "m"):
            st.query_params.pop(param, None)
        for key in ("draft", "model_error", "found", "turn"):
            st.session_state.pop(key, None)
        st.session_state["data_note"] = erased_note(conversations, messages)


def your_data_section(
    services: Services, identity: Identity, conversation: Conversation, busy: bool
) -> None:
    bar, memory, user = st.sidebar, services.memory, identity.user_id
    bar.subheader("Your data")
    section_error("data")
    note = st.session_state.pop("data_note", None)
    if note:
        bar.success(note)
    if conversation.total_messages:
        title = conversation.info.title if conversation.info else ""
        download_buttons(bar, memory, user, [conversation.conversation_id], title, busy)
    download_buttons(bar, memory, user, None, None, busy)
    bar.file_uploader(
        "Import chats: this app's JSON export, or ChatGPT's conversations.json",
        type=["json"],
        key=(key := widget_key(f"import{st.session_state.get('import_round', 0)}", identity)),
        on_change=import_upload,
        args=(memory, user, key),
        max_upload_size=MAX_IMPORT_BYTES // 1_000_000,
        disabled=busy,
    )
    if confirmation_of(user, Destructive.ERASE_ME) is None:
        bar.button(
            "Erase all my data…",
            on_click=ask,
            args=(Confirmation(user, Destructive.ERASE_ME),),
            disabled=busy,
        )
        return
    try:
        conversations, messages = stored_amounts(memory, user)
    except ChatMemoryError as error:
        bar.error(f"Cannot tell what would be erased: {error}")
        return
    confirm(
        f"Erase everything stored for you: {plural(conversations, 'conversation')} with "
        f"{plural(messages, 'message')}, your settings, usage totals and summaries? This "
        "cannot be undone.",
        ("Yes, erase everything", erase_me, (memory, user, conversations, messages)),
        "erase",
        busy,
    )


def conversations_section(
    services: Services, identity: Identity, conversation: Conversation, busy: bool
) -> None:
    """New chat, the list (pinned first, then the most recently active), and the open
    conversation's title, pin and delete."""
    bar = st.sidebar
    bar.subheader("Conversations")
    section_error("conversations")
    user, open_id = identity.user_id, conversation.conversation_id
    bar.button(
        "New chat", icon=":material/add:", key="new_chat", on_click=start_new_chat, disabled=busy
    )
    limit_key = widget_key("conversation_limit", identity)
    limit = int(st.session_state.get(limit_key, LIST_STEP))
    try:
        listing = services.memory.conversations(user, limit=limit)
    except ChatMemoryError as error:
        bar.error(f"The conversation list is unavailable: {error}")
        return
    entries = listed(listing)
    if conversation.info is None:  # a New chat: listed once its first prompt is stored
        bar.button(f"💬 {NEW_CHAT}", key="conversation:new", type="primary", disabled=True)
    for info in entries:
        bar.button(
            entry_label(info),
            key=f"conversation:{info.id}",
            on_click=open_conversation,
            args=(info.id,),
            type="primary" if info.id == open_id else "tertiary",
            disabled=busy,
        )
        bar.caption(activity_line(info))
    if listing.total > len(entries):
        bar.button(
            f"Show more ({listing.total - len(entries):,} more)",
            key="more_conversations",
            on_click=show_more_conversations,
            args=(limit_key, limit),
        )
    if conversation.info is not None:
        open_conversation_controls(services, identity, conversation.info, busy)


def open_conversation_controls(
    services: Services, identity: Identity, info: ConversationInfo, busy: bool
) -> None:
    bar, memory, user = st.sidebar, services.memory, identity.user_id
    title_key = widget_key("title", identity)
    st.session_state[title_key] = info.title  # what Redis holds, on every run
    bar.text_input(
        "Title of this conversation",
        key=title_key,
        max_chars=120,
        on_change=save_title,
        args=(memory, user, info.id, title_key),
        disabled=busy,
        help="Saved as soon as you leave the box (or press Enter).",
    )
    asked = confirmation_of(user, Destructive.DELETE_CONVERSATION, info.id)
    if asked is not None:
        confirm(
            f"Delete “{plain(title_of(info))}” and its {plural(info.message_count, 'message')}? "
            "This cannot be undone.",
            ("Yes, delete it", delete_conversation, (services, user, info)),
            "delete_conversation",
            busy,  # not while a reply to it streams
        )
        return
    left, right = bar.columns(2)
    left.button(
        "Unpin" if info.pinned else "📌 Pin",
        key="pin_conversation",
        on_click=pin_conversation,
        args=(memory, user, info.id, not info.pinned),
        disabled=busy,
    )
    right.button(
        "🗑️ Delete…",
        key="delete_conversation",
        on_click=ask,
        args=(Confirmation(user, Destructive.DELETE_CONVERSATION, conversation_id=info.id),),
        disabled=busy,
    )


def sidebar(services: Services, identity: Identity, conversation: Conversation, busy: bool) -> None:
    search_section(services, identity, busy)
    conversations_section(services, identity, conversation, busy)
    with st.sidebar:
        context_section(services, identity, conversation, busy)
    instruction_section(services, identity, conversation, busy)
    retention_section(services, identity, conversation, busy)
    usage_section(services, conversation)
    history_section(services, identity, conversation, busy)
    your_data_section(services, identity, conversation, busy)


# --- the conversation --------------------------------------------------------------------------


def open_conversation_id(services: Services, user_id: str) -> str:
    """The conversation the URL names (`?c=`); without one, the user's most recently active
    conversation, or a fresh id (nothing is stored until its first prompt); a malformed one
    is said so and opens a New chat. The id is put in the URL, so reload and back/forward
    keep it."""
    wanted = st.query_params.get("c")
    conversation_id = None
    if wanted:
        try:
            conversation_id = check_conversation_id(wanted)
        except InvalidInput as error:
            st.warning(f"The link's conversation could not be opened: {error} A New chat is open.")
            conversation_id = new_conversation_id()
    if conversation_id is None:
        conversation_id = services.memory.most_recent_conversation(user_id) or new_conversation_id()
    if wanted != conversation_id:
        st.query_params["c"] = conversation_id
    return conversation_id


def read_page(
    services: Services, identity: Identity, conversation_id: str, page_size: int
) -> Conversation:
    """The newest `page_size` messages with everything else a render needs; past what one
    read returns (MAX_WINDOW), the page is filled from the whole conversation."""
    memory = services.memory
    conversation = memory.conversation(
        identity.user_id, conversation_id, page_size=min(page_size, MAX_WINDOW)
    )
    if page_size > MAX_WINDOW and conversation.has_earlier:
        page = memory.messages(identity.user_id, conversation_id)[-page_size:]
        conversation = replace(conversation, recent=tuple(page))
    return conversation


def render_message(role: Role, content: str, cut_off: bool = False) -> None:
    with st.chat_message(role.value):
        if role is Role.USER:
            st.text(content)
        else:
            show_reply(content)
        if cut_off:
            st.caption("✂️ Cut off: the reply reached its length limit (LLM_MAX_TOKENS).")


def is_cut_off(message: Message) -> bool:
    return message.role is Role.ASSISTANT and bool(message.usage and message.usage.cut_off)


def welcome(identity: Identity) -> None:
    st.markdown(
        "#### 👋 Start a conversation\n"
        "Every message is stored in Redis, so the chat is here when you come back. "
        "Type below, or try one of these:"
    )
    for column, example in zip(st.columns(len(EXAMPLE_PROMPTS)), EXAMPLE_PROMPTS, strict=True):
        column.button(
            example, on_click=queue_turn, args=(identity.user_id, example), width="stretch"
        )


def earlier_messages_button(conversation: Conversation, page_key: str, page_size: int) -> None:
    if conversation.has_earlier:
        hidden = conversation.total_messages - len(conversation.recent)
        st.button(
            f"Show earlier messages ({hidden:,} more)",
            on_click=show_earlier,
            args=(page_key, page_size),
        )


def edit_and_regenerate(services: Services, identity: Identity, conversation: Conversation) -> None:
    """Under the last exchange: edit the last prompt (it and its reply are replaced) or ask
    for the last reply again (it is replaced)."""
    recent, user = conversation.recent, identity.user_id
    prompt = next((m for m in reversed(recent[-2:]) if m.role is Role.USER), None)
    if prompt is None:
        return
    editing = editing_of(user, conversation.conversation_id)
    if editing is not None:
        edit_box(services, identity, editing)
        return
    left, right, _ = st.columns([1, 1, 4])
    left.button(
        "✏️ Edit",
        key="edit_prompt",
        on_click=start_edit,
        args=(Editing(user, conversation.conversation_id, prompt.seq, prompt.content),),
        help="Edit your last message; it and its reply are replaced.",
    )
    if recent[-1].role is Role.ASSISTANT:
        right.button(
            "↻ Regenerate",
            key="regenerate_reply",
            on_click=queue_turn,
            args=(user, None, recent[-1].seq),
            help="Ask for the last reply again; it is replaced.",
        )


def edit_box(services: Services, identity: Identity, editing: Editing) -> None:
    with st.container(border=True):
        st.text_area(
            "Edit your last message",
            key=EDIT_KEY,
            height=150,
            max_chars=max(services.max_prompt_chars, len(editing.text)),
        )
        left, right = st.columns(2)
        left.button(
            "Send edited message",
            key="send_edit",
            on_click=send_edit,
            args=(identity.user_id, EDIT_KEY),
            type="primary",
        )
        right.button("Cancel", key="cancel_edit", on_click=cancel_edit)


def missing_reply(identity: Identity, conversation: Conversation, stopped: bool) -> None:
    """The last stored message is the user's: say why no reply follows and offer a retry."""
    if not conversation.recent or conversation.recent[-1].role is not Role.USER:
        return
    failure = model_failure_of(identity.user_id)
    if stopped:
        st.info(f"{STOPPED} Your message is saved.")
    elif failure is not None:
        st.error(f"{failure.message} Your message is saved.")
    else:
        st.caption("No reply was stored for your last message.")
    st.button(
        "↻ Retry reply", key="retry_reply", on_click=queue_turn, args=(identity.user_id, None)
    )


def continue_button(identity: Identity, conversation: Conversation) -> None:
    """A reply cut off at its length limit is stored, marked, and can be continued."""
    if conversation.recent and is_cut_off(conversation.recent[-1]):
        st.button(
            "Continue",
            key="continue_reply",
            on_click=queue_turn,
            args=(identity.user_id, "Continue"),
        )


def draft_editor(services: Services, identity: Identity, conversation_id: str | None) -> None:
    """An unsent prompt, editable in full next to the prompt box, with its length against the
    limit (the box counts as you type), its error, Send (only when it can succeed) and Discard.
    A draft typed in another conversation waits there."""
    draft = draft_of(identity.user_id, conversation_id)
    error = st.session_state.pop("error:prompt", None)
    if draft is None:
        if error:
            st.error(error)
        return
    limit = services.max_prompt_chars
    key = widget_key("draft", identity)
    st.session_state[key] = draft.text
    with st.container(border=True):
        if error:
            st.error(error)
        st.text_area(
            "Your unsent message",
            key=key,
            height=200,
            max_chars=max(limit, len(draft.text)),
            on_change=edit_draft,
            args=(identity.user_id, key),
        )
        over = len(draft.text) - limit
        st.caption(
            f"{len(draft.text):,} characters: {over:,} over the {limit:,} limit; shorten it to "
            "send it."
            if over > 0
            else f"{len(draft.text):,} of {limit:,} characters."
        )
        left, right = st.columns(2)
        left.button(
            "Send",
            key="send_draft",
            on_click=send_draft,
            args=(identity.user_id, key),
            disabled=over > 0,
            type="primary",
        )
        right.button("Discard", key="discard_draft", on_click=discard_draft)


def keep_unsent_prompt(services: Services, identity: Identity) -> None:
    """While storage is down, a prompt typed into the page is kept, never dropped."""
    turn = turn_waiting()
    if turn is not None and turn.prompt is not None:
        message_id = turn.message_id or new_message_id()
        text = keepable(turn.prompt, services.max_prompt_chars)
        st.session_state["draft"] = Draft(identity.user_id, text, message_id)
    st.session_state.pop("turn", None)
    draft = draft_of(identity.user_id)
    if draft is not None:
        saved = "may not have been saved" if draft.outcome_unknown else "was NOT saved or sent"
        st.warning(f"Your message {saved}. It is kept here to resend later:")
        draft_editor(services, identity, None)


def admit(
    services: Services, identity: Identity, prompt_tokens: int
) -> Reservation | ChatMemoryError:
    """The user's limits admit one model request (a write: a Redis that could not store the
    reply refuses it here, before the model is called and paid for); else why not."""
    try:
        return services.admit(identity.user_id, prompt_tokens)
    except ChatMemoryError as error:  # LimitExceeded included
        return error


def reply(
    services: Services,
    identity: Identity,
    conversation_id: str,
    window_size: int,
    reservation: Reservation | None = None,
    needs_title: bool = False,
) -> NoReturn:
    """Stream the model's answer to the stored conversation, store it once complete, rerun.
    A request not admitted yet (a retry) is admitted by the user's limits first. Stop (or
    anything else that cuts this run short) leaves `replying` set: the next run says the reply
    was stopped and that nothing of it was saved. The first reply stored in a conversation
    titles it (`needs_title`), after it is stored."""
    memory, context = services.memory, services.context
    request = context.next_request(identity.user_id, conversation_id, window_size)
    if not request.messages or request.messages[-1].role is not Role.USER:
        st.session_state["model_error"] = ModelFailure(identity.user_id, TOO_LONG)
        st.rerun()
    if reservation is None:
        admitted = admit(services, identity, request.token_count)
        if isinstance(admitted, ChatMemoryError):
            limited = isinstance(admitted, LimitExceeded)
            reason = str(admitted) if limited else f"No reply was requested: {admitted}"
            st.session_state["model_error"] = ModelFailure(identity.user_id, reason)
            st.rerun()
        reservation = admitted
    st.session_state["replying"] = identity.user_id
    st.button("■ Stop", key="stop_reply", help="Stops the reply; nothing of it is saved.")
    with st.chat_message("assistant"):
        try:
            with st.spinner("Thinking…"):
                answer = services.model.stream(request.as_openai())
                chunks = iter(answer)
                first = next(chunks, "")
            stream_reply(chain([first], chunks))
        except ModelError as error:
            services.settle(reservation, 0)
            st.session_state.pop("replying", None)
            st.session_state["model_error"] = ModelFailure(identity.user_id, str(error))
            st.rerun()
    st.session_state.pop("replying", None)
    usage = context.usage_of(answer, request)
    services.settle(
        reservation,
        usage.total_tokens
        if usage
        else request.token_count + memory.token_counter.count_text(answer.text),
    )
    try:
        memory.append(
            identity.user_id,
            Role.ASSISTANT,
            answer.text,
            usage=usage,
            conversation_id=conversation_id,
        )
    except WriteOutcomeUnknown:
        st.session_state["model_error"] = ModelFailure(
            identity.user_id,
            "The reply arrived but storage did not answer in time: it may not have been saved.",
        )
    except StorageUnavailable:
        st.session_state["model_error"] = ModelFailure(
            identity.user_id,
            "The reply arrived but storage became unavailable, so it was not saved.",
        )
    except ChatMemoryError as error:
        st.session_state["model_error"] = ModelFailure(
            identity.user_id, f"The reply was not saved: {error}"
        )
    else:
        st.session_state.pop("model_error", None)
        if needs_title:
            prompt = request.messages[-1].content
            title_after_first_reply(
                services, identity.user_id, conversation_id, prompt, answer.text
            )
        with st.spinner("Updating the summary…"):  # after the reply is stored, never before
            act(
                "prompt",
                "Updating the summary",
                lambda: fold_summary(services, identity, conversation_id, window_size),
            )
    st.rerun()


def fold_summary(
    services: Services, identity: Identity, conversation_id: str, window_size: int
) -> None:
    problem = services.context.fold_summary(identity.user_id, conversation_id, window_size)
    if problem:
        st.session_state["error:prompt"] = problem


def keep_draft(identity: Identity, draft: Draft, reason: str) -> None:
    """Keep an unsent prompt (with its id) to edit and resend, and say why."""
    st.session_state["draft"] = draft
    st.session_state["error:prompt"] = reason


def keepable(prompt: str, limit: int) -> str:
    """What of an unsent prompt the page keeps: all of it, unless far past the limit."""
    return prompt if len(prompt) <= DRAFT_KEEP_FACTOR * limit else prompt[:limit]


def storage_refusal(error: ChatMemoryError) -> str:
    if isinstance(error, WriteOutcomeUnknown):
        return (
            "Storage did not answer in time, so your message may not have been saved. It is "
            "kept below; sending it again cannot store it twice."
        )
    if isinstance(error, StorageUnavailable):
        return (
            "Storage is unavailable, so your message was NOT saved or sent. "
            "It is kept below: send it again when storage is back."
        )
    return f"Your message was NOT saved or sent: {error}"


def submit(
    services: Services,
    identity: Identity,
    prompt: str,
    window: ContextWindow,
    conversation_id: str,
    message_id: str | None = None,
    replace_from: int | None = None,
) -> Reservation | None:
    """Admit (the user's limits) and store a new prompt; None (with the reason shown and the
    prompt kept) when it cannot be. `window`: the context, as this run read it, that the
    request adds the prompt to (no second read). The prompt's id is fixed before the first
    attempt and kept with an unsent draft, so sending it again after an unknown outcome can
    never store it twice. An edited prompt (`replace_from`) first removes the prompt and
    reply it replaces, in one atomic step, once every check has passed."""
    if not prompt.strip():
        return None
    limit = services.max_prompt_chars
    draft = Draft(
        identity.user_id,
        keepable(prompt, limit),
        message_id or new_message_id(),
        conversation_id=conversation_id,
    )
    if len(prompt) > limit:
        kept = "" if draft.text == prompt else f" Only its first {limit:,} characters are kept."
        keep_draft(
            identity,
            draft,
            f"Your message has {len(prompt):,} characters; the limit is {limit:,}. Nothing was "
            f"sent or stored.{kept}",
        )
        return None
    prompt_tokens = services.memory.token_counter.count_message(Role.USER.value, prompt)
    too_big = services.context.budget.oversized_prompt(prompt_tokens, window.system.token_count)
    if too_big:
        keep_draft(identity, draft, too_big)
        return None
    admitted = admit(services, identity, window.token_count + prompt_tokens)
    if isinstance(admitted, LimitExceeded):
        keep_draft(identity, draft, f"{admitted} Your message was not sent; it is kept below.")
        return None
    if isinstance(admitted, ChatMemoryError):
        keep_draft(identity, draft, storage_refusal(admitted))
        return None
    try:
        if replace_from is not None:
            services.memory.remove_last(identity.user_id, conversation_id, replace_from)
        services.memory.append(
            identity.user_id,
            Role.USER,
            prompt,
            message_id=draft.message_id,
            conversation_id=conversation_id,
        )
    except ChatMemoryError as error:
        services.settle(admitted, 0)
        unknown = isinstance(error, WriteOutcomeUnknown)
        keep_draft(identity, replace(draft, outcome_unknown=unknown), storage_refusal(error))
        return None
    if draft_of(identity.user_id, conversation_id) is not None:
        st.session_state.pop("draft", None)  # a draft waiting in another conversation stays
    st.session_state.pop("model_error", None)
    return admitted


def settle_unknown_draft(services: Services, user_id: str) -> None:
    """A draft whose write outcome was unknown: ask Redis by its id whether it was saved."""
    draft = draft_of(user_id)
    if draft is None or not draft.outcome_unknown:
        return
    try:
        saved = services.memory.saved_message(user_id, draft.message_id)
    except ChatMemoryError:
        return
    if saved is not None:
        st.session_state.pop("draft", None)
        st.session_state.pop("error:prompt", None)
        st.session_state["saved_after_all"] = True


def show_prompt_at_once(services: Services, turn: Turn) -> None:
    """The turn's prompt, on the page before anything is read or stored: the first feedback
    after Enter. A prompt that will be refused (too long) waits for its message instead."""
    prompt = turn.prompt
    if prompt is not None and prompt.strip() and len(prompt) <= services.max_prompt_chars:
        render_message(Role.USER, prompt)


def run_turn(
    services: Services, identity: Identity, conversation: Conversation, turn: Turn
) -> None:
    """Store the turn's prompt and stream the reply; inputs stay disabled until the run
    after it."""
    st.session_state.pop("turn", None)
    reservation, user, cid = None, identity.user_id, conversation.conversation_id
    if turn.prompt is not None:
        reservation = submit(
            services,
            identity,
            turn.prompt,
            conversation.window,
            cid,
            turn.message_id,
            turn.replace_from,
        )
        if reservation is None:
            st.rerun()
    elif turn.replace_from is not None and not act(
        "prompt",
        "Regenerating the reply",
        lambda: services.memory.remove_last(user, cid, turn.replace_from or 0),
    ):
        st.rerun()
    reply(
        services, identity, cid, conversation.window_size, reservation, awaits_title(conversation)
    )


def offline_banner(services: Services) -> None:
    if services.model.config.provider is Provider.OFFLINE:
        st.info(
            "No model is configured, so replies come from the built-in **offline responder**. "
            "Set `AZURE_OPENAI_ENDPOINT` (Azure OpenAI) or `OPENAI_BASE_URL` / `OPENAI_API_KEY` "
            "(any OpenAI-compatible server) in `.env` and restart to chat with a model."
        )


def main() -> None:
    try:
        services = get_services()
    except ConfigError as error:
        configuration_error(error)
    except (StorageUnavailable, ChatMemoryError) as error:
        storage_unavailable(error, details=is_local_demo(Environment.current()))
    st.set_option("client.showErrorDetails", "full" if services.local_only else "none")

    turn = turn_waiting()
    identity = current_identity(services, busy=turn is not None)
    user = identity.user_id
    if turn is not None and turn.user_id != user:
        turn = None
    st.chat_input(
        "Type your message",
        key="prompt",
        on_submit=queue_prompt,
        args=(user,),
        disabled=turn is not None,
    )
    stopped = st.session_state.pop("replying", None) == user
    st.title("💬 Chat with memory in Redis")
    offline_banner(services)
    notice, history, new_turn = st.container(), st.container(), st.container()
    if turn is not None:
        with new_turn:
            show_prompt_at_once(services, turn)
    try:
        with notice:
            conversation_id = open_conversation_id(services, user)
        page_key = widget_key(f"page:{conversation_id}", identity)
        page_size = int(st.session_state.get(page_key, PAGE_STEP))
        page_size = found_message_page(services, identity, conversation_id, page_size)
        conversation = read_page(services, identity, conversation_id, page_size)
    except ChatMemoryError as error:
        keep_unsent_prompt(services, identity)
        storage_unavailable(error, details=services.shows_internals_to(identity))
    settle_unknown_draft(services, user)

    sidebar(services, identity, conversation, busy=turn is not None)
    install_prompt_echo(services.max_prompt_chars)
    if st.session_state.pop("close_sidebar", False):
        components.html(CLOSE_SIDEBAR_ON_PHONE, height=0)
    with history:
        earlier_messages_button(conversation, page_key, page_size)
        cid = conversation.conversation_id
        if not conversation.total_messages and turn is None and draft_of(user, cid) is None:
            welcome(identity)
        replaced = turn.replace_from if turn is not None else None
        for message in conversation.recent:
            if replaced is None or message.seq < replaced:
                found_mark(message)
                render_message(message.role, message.content, is_cut_off(message))
        if turn is None:
            missing_reply(identity, conversation, stopped)
            continue_button(identity, conversation)
            edit_and_regenerate(services, identity, conversation)
        if st.session_state.pop("saved_after_all", False):
            st.info("Your message was saved after all.")
        draft_editor(services, identity, cid)
    if turn is not None:
        with new_turn:
            run_turn(services, identity, conversation, turn)


main()
