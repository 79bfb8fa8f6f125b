"""Streamlit UI: a multi-user chatbot whose every message lives in Redis.

UI only: storage is memory/, the model and identity are chatbot/. `st.session_state` holds
UI state (which page of history is open, an unsent draft, the last error); everything a user
owns lives in Redis, so any app instance can serve any user.

The page reads top to bottom: `main()` at the end renders the sidebar sections (one function
each), the conversation and the prompt box; widget callbacks are module-level functions that
get what they need through `args=`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from itertools import chain
from typing import NoReturn

import streamlit as st
from dotenv import load_dotenv

from chatbot.config import ConfigError, Environment
from chatbot.identity import (
    AuthMode,
    Identity,
    check_trusted_headers,
    demo_identity,
    identity_from_easyauth,
    identity_from_oidc,
)
from chatbot.llm import ModelError, Provider
from chatbot.presets import Preset
from chatbot.rendering import format_duration
from chatbot.services import Services, build_services
from chatbot.session import Draft, ModelFailure
from chatbot.telemetry import configure_telemetry
from memory import (
    MAX_WINDOW,
    ChatMemory,
    ChatMemoryError,
    Conversation,
    Role,
    StorageUnavailable,
    Usage,
)

SLIDER_MAX_MESSAGES = 50  # the history slider's top; memory itself accepts up to MAX_WINDOW
PAGE_STEP = 50  # messages shown at first, and added by each "Show earlier messages"
CUSTOM = "__custom__"
KEEP_FOREVER = 0
RETENTION_CHOICES = [
    5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400, KEEP_FOREVER,
]  # fmt: skip

load_dotenv(override=False)
st.set_page_config(page_title="Redis chat memory", page_icon="💬", layout="wide")


@st.cache_resource(show_spinner="Connecting to Redis…")
def get_services() -> Services:
    configure_telemetry(Environment.current())
    return build_services(Environment.current())


def widget_key(name: str, identity: Identity) -> str:
    """Per-user widget keys, so switching user re-reads that user's settings from Redis."""
    return f"{name}:{hashlib.sha256(identity.user_id.encode()).hexdigest()[:12]}"


def draft_of(user_id: str) -> Draft | None:
    draft = st.session_state.get("draft")
    return draft if isinstance(draft, Draft) and draft.user_id == user_id else None


def model_failure_of(user_id: str) -> ModelFailure | None:
    failure = st.session_state.get("model_error")
    return failure if isinstance(failure, ModelFailure) and failure.user_id == user_id else None


# --- pages that stop the script ----------------------------------------------------------------


def storage_unavailable(error: Exception) -> NoReturn:
    st.error(f"⚠️ Storage unavailable, retrying on your next action. ({error})")
    st.button("Retry now", key="retry_storage")
    st.stop()


def sign_in_required(title: str, text: str, login: bool = False) -> NoReturn:
    st.title(title)
    st.write(text)
    if login:
        st.button("Sign in", on_click=st.login, type="primary")
    st.stop()


def configuration_error(error: ConfigError) -> NoReturn:
    st.error(f"Configuration error: {error}")
    st.stop()


# --- identity ----------------------------------------------------------------------------------


def current_identity(services: Services) -> Identity:
    auth = services.auth
    if auth.mode is AuthMode.DEMO:
        wanted = st.query_params.get("user")
        user = st.sidebar.selectbox(
            "User",
            auth.demo_users,
            index=auth.demo_users.index(wanted) if wanted in auth.demo_users else 0,
            key="demo_user",
        )
        st.query_params["user"] = user
        return demo_identity(user)
    try:
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
            )
    st.sidebar.text(f"Signed in as {identity.display_name}")
    st.sidebar.caption(f"User id: `{identity.user_id}`")
    if auth.mode is AuthMode.OIDC:
        st.sidebar.button("Sign out", on_click=st.logout)
    return identity


# --- sidebar callbacks (run before the script reruns) ------------------------------------------


def act(action: str, write: Callable[[], object]) -> bool:
    """Run a sidebar action's write; a storage failure becomes a visible message. True when
    the write went through."""
    try:
        write()
    except StorageUnavailable as error:
        st.session_state["flash_error"] = f"{action} failed: storage unavailable ({error})."
    except ChatMemoryError as error:
        st.session_state["flash_error"] = f"{action} failed: {error}"
    else:
        return True
    return False


def save_window_size(memory: ChatMemory, user_id: str, key: str) -> None:
    size = int(st.session_state[key])
    act("Saving the history length", lambda: memory.set_window_size(user_id, size))


def choose_preset(memory: ChatMemory, user_id: str, key: str, presets: dict[str, Preset]) -> None:
    choice = st.session_state[key]
    if choice == CUSTOM:
        return
    preset = presets[choice]
    if act(
        "Changing the instruction",
        lambda: memory.set_system_instruction(user_id, preset.text, preset=preset.id),
    ):
        st.toast(f"Instruction: {preset.title}")


def save_custom_instruction(memory: ChatMemory, user_id: str, key: str) -> None:
    text = str(st.session_state.get(key, ""))
    if not text.strip():
        st.session_state["flash_error"] = "A custom instruction cannot be empty."
        return
    if act("Saving the instruction", lambda: memory.set_system_instruction(user_id, text)):
        st.toast("Custom instruction saved")


def apply_retention(memory: ChatMemory, user_id: str, key: str) -> None:
    chosen = st.session_state[key] or None
    if act("Applying retention", lambda: memory.set_retention(user_id, chosen)):
        label = "kept forever" if chosen is None else f"kept {format_duration(chosen)}"
        st.toast(f"Your messages are now {label}.")


def clear_history(memory: ChatMemory, user_id: str) -> None:
    if act("Clearing your history", lambda: memory.clear(user_id)):
        st.toast("Your history was cleared.")


def confirm_clear_all(asked: bool) -> None:
    st.session_state["confirm_clear_all"] = asked


def clear_all_history(memory: ChatMemory, identity: Identity) -> None:
    st.session_state["confirm_clear_all"] = False
    if identity.is_admin and act("Clearing all history", memory.clear_all):
        st.toast("All history was cleared.")


def show_earlier(key: str, page_size: int) -> None:
    st.session_state[key] = page_size + PAGE_STEP


# --- sidebar sections --------------------------------------------------------------------------


def context_section(services: Services, identity: Identity, conversation: Conversation) -> None:
    bar = st.sidebar
    bar.subheader("Context")
    key = widget_key("window", identity)
    bar.slider(
        "Length of chat history",
        min_value=1,
        max_value=SLIDER_MAX_MESSAGES,
        value=min(max(conversation.window_size, 1), SLIDER_MAX_MESSAGES),
        key=key,
        help="The model gets the system instruction plus the last N messages.",
        on_change=save_window_size,
        args=(services.memory, identity.user_id, key),
    )
    window = conversation.window
    bar.metric(
        "Chat history tokens",
        f"{window.token_count:,}",
        help=(
            "Prompt tokens of the system instruction plus the last N stored messages: exactly "
            "what a retry would send now. A new message adds its own tokens and pushes the "
            "oldest out once N is reached."
        ),
    )
    labels = ["system"] + [f"{i + 1}·{m.role.value}" for i, m in enumerate(window.messages)]
    counts = [window.system.token_count] + [m.token_count for m in window.messages]
    bar.bar_chart(
        {"message": labels, "tokens": counts}, x="message", y="tokens", height=160, sort=False
    )


def preset_label(presets: dict[str, Preset], option: str) -> str:
    return "Custom…" if option == CUSTOM else presets[option].title


def instruction_section(services: Services, identity: Identity, conversation: Conversation) -> None:
    bar = st.sidebar
    bar.subheader("System instruction")
    memory, presets, user = services.memory, services.presets, identity.user_id
    current = conversation.window.system
    options = [*presets, CUSTOM]
    selected = current.preset if current.preset in presets else CUSTOM
    preset_key = widget_key("preset", identity)
    custom_key = widget_key("custom_instruction", identity)
    bar.selectbox(
        "Preset",
        options,
        index=options.index(selected),
        key=preset_key,
        format_func=lambda option: preset_label(presets, option),
        on_change=choose_preset,
        args=(memory, user, preset_key, presets),
    )
    if st.session_state.get(preset_key, selected) != CUSTOM:
        bar.text(current.text)
        return
    bar.text_area(
        "Custom instruction",
        value=current.text if current.preset is None else "",
        key=custom_key,
        max_chars=services.max_prompt_chars,
    )
    bar.button(
        "Save instruction", on_click=save_custom_instruction, args=(memory, user, custom_key)
    )


def retention_label(seconds: int) -> str:
    return "Keep forever" if seconds == KEEP_FOREVER else format_duration(seconds)


def retention_section(services: Services, identity: Identity, conversation: Conversation) -> None:
    bar = st.sidebar
    bar.subheader("Retention")
    key = widget_key("ttl", identity)
    ttl = conversation.ttl_seconds
    bar.select_slider(
        "Time to live of chat entries",
        options=RETENTION_CHOICES,
        value=ttl if ttl in RETENTION_CHOICES else KEEP_FOREVER,
        format_func=retention_label,
        key=key,
    )
    bar.button(
        "Apply retention",
        on_click=apply_retention,
        args=(services.memory, identity.user_id, key),
    )
    if ttl is None:
        bar.caption("Policy: keep forever.")
        return
    oldest = conversation.retention.oldest_expires_in
    remaining = (
        f"oldest message expires in {format_duration(round(oldest))}"
        if oldest is not None
        else "no messages stored"
    )
    bar.caption(f"Policy: {format_duration(ttl)} per message; {remaining}.")


def usage_section(services: Services, conversation: Conversation) -> None:
    bar = st.sidebar
    bar.subheader("Usage")
    prices = services.prices
    last = conversation.last_reply_usage
    if last is not None:
        bar.caption(
            f"Last reply: {last.prompt_tokens:,} in / {last.completion_tokens:,} out · "
            f"${prices.cost(last.prompt_tokens, last.completion_tokens):.4f}"
        )
    totals = conversation.usage_totals
    total_cost = prices.cost(totals.prompt_tokens, totals.completion_tokens)
    bar.caption(
        f"Your total: {totals.prompt_tokens:,} in / {totals.completion_tokens:,} out over "
        f"{totals.replies} {'reply' if totals.replies == 1 else 'replies'} · ${total_cost:.4f}"
    )


def history_section(services: Services, identity: Identity) -> None:
    bar = st.sidebar
    memory = services.memory
    bar.subheader("History")
    bar.button("Clear my history", on_click=clear_history, args=(memory, identity.user_id))
    if identity.is_admin:
        if not st.session_state.get("confirm_clear_all"):
            bar.button("Clear ALL history…", on_click=confirm_clear_all, args=(True,))
        else:
            bar.warning("Delete every user's messages? This cannot be undone.")
            left, right = bar.columns(2)
            left.button(
                "Yes, delete all",
                on_click=clear_all_history,
                args=(memory, identity),
                type="primary",
            )
            right.button("Cancel", on_click=confirm_clear_all, args=(False,))
    bar.caption(
        f"Storage: {services.storage_description} · Model: {services.model.config.describe()}"
    )


def sidebar(services: Services, identity: Identity, conversation: Conversation) -> None:
    context_section(services, identity, conversation)
    instruction_section(services, identity, conversation)
    retention_section(services, identity, conversation)
    usage_section(services, conversation)
    history_section(services, identity)


# --- the conversation --------------------------------------------------------------------------


def chat_input() -> str | None:
    """The one prompt box; the same widget on every path, so a submitted prompt always
    reaches this run whatever state the page was in."""
    return st.chat_input("Type your message", key="prompt")


def keep_unsent_prompt(identity: Identity) -> None:
    """While storage is down, a prompt typed into the page is kept here, never dropped."""
    prompt = chat_input()
    if prompt is not None and prompt.strip():
        st.session_state["draft"] = Draft(identity.user_id, prompt)
    draft = draft_of(identity.user_id)
    if draft is not None:
        st.warning("Your message was NOT saved or sent. It is kept here to resend later:")
        st.code(draft.text[:5000], language=None, wrap_lines=True)


def render_message(role: Role, content: str) -> None:
    with st.chat_message(role.value):
        if role is Role.USER:
            st.text(content)
        else:
            st.markdown(content)


def reply(services: Services, identity: Identity, window_size: int) -> NoReturn:
    """Stream the model's answer to the stored conversation, store it once complete, rerun."""
    memory = services.memory
    window = memory.context_window(identity.user_id, window_size)
    with st.chat_message("assistant"):
        try:
            with st.spinner("Thinking…"):
                answer = services.model.stream(window.as_openai())
                chunks = iter(answer)
                first = next(chunks, "")
            st.write_stream(chain([first], chunks))
        except ModelError as error:
            st.session_state["model_error"] = ModelFailure(identity.user_id, str(error))
            st.rerun()
    usage = answer.usage
    if usage is None and services.model.config.provider is not Provider.OFFLINE:
        usage = Usage(
            prompt_tokens=window.token_count,
            completion_tokens=memory.token_counter.count_text(answer.text),
        )
    try:
        memory.append(identity.user_id, Role.ASSISTANT, answer.text, usage=usage)
    except StorageUnavailable:
        st.session_state["model_error"] = ModelFailure(
            identity.user_id,
            "The reply arrived but storage became unavailable, so it was not saved.",
        )
    else:
        st.session_state.pop("model_error", None)
    st.rerun()


def submit(services: Services, identity: Identity, prompt: str) -> bool:
    """Store a new prompt; False (with the reason shown) when it cannot be stored."""
    if not prompt.strip():
        return False
    if len(prompt) > services.max_prompt_chars:
        st.session_state["draft"] = Draft(identity.user_id, prompt)
        st.session_state["flash_error"] = (
            f"Your message has {len(prompt):,} characters; the limit is "
            f"{services.max_prompt_chars:,}. Nothing was sent or stored."
        )
        return False
    try:
        services.memory.append(identity.user_id, Role.USER, prompt)
    except StorageUnavailable:
        st.session_state["draft"] = Draft(identity.user_id, prompt)
        st.session_state["flash_error"] = (
            "Storage is unavailable, so your message was NOT saved or sent. "
            "It is kept below: resend it when storage is back."
        )
        return False
    st.session_state.pop("draft", None)
    st.session_state.pop("model_error", None)
    return True


def offline_banner(services: Services) -> None:
    if services.model.config.provider is Provider.OFFLINE:
        st.info(
            "No model is configured, so replies come from the built-in **offline responder**. "
            "Set `AZURE_OPENAI_ENDPOINT` (Azure OpenAI) or `OPENAI_BASE_URL` / `OPENAI_API_KEY` "
            "(any OpenAI-compatible server) in `.env` and restart to chat with a model."
        )


def earlier_messages_button(identity: Identity, conversation: Conversation, page_size: int) -> None:
    if conversation.has_earlier:
        hidden = conversation.total_messages - len(conversation.recent)
        st.button(
            f"Show earlier messages ({hidden:,} more)",
            on_click=show_earlier,
            args=(widget_key("page", identity), page_size),
        )


def unsent_draft(services: Services, identity: Identity, conversation: Conversation) -> None:
    draft = draft_of(identity.user_id)
    if draft is None:
        return
    with st.expander("Your unsent message", expanded=True):
        st.code(draft.text[:5000], language=None, wrap_lines=True)
        if len(draft.text) > 5000:
            st.caption(f"Showing the first 5,000 of {len(draft.text):,} characters.")
        resend = st.button("Resend", key="resend")
    if resend and submit(services, identity, draft.text):
        render_message(Role.USER, draft.text)
        reply(services, identity, conversation.window_size)


def missing_reply(services: Services, identity: Identity, conversation: Conversation) -> None:
    """The last stored message is the user's: say why no reply follows and offer a retry."""
    if not conversation.recent or conversation.recent[-1].role is not Role.USER:
        return
    failure = model_failure_of(identity.user_id)
    if failure is not None:
        st.error(f"{failure.message} Your message is saved.")
    else:
        st.caption("No reply was stored for your last message.")
    if st.button("↻ Retry reply", key="retry_reply"):
        reply(services, identity, conversation.window_size)


def main() -> None:
    try:
        services = get_services()
    except ConfigError as error:
        configuration_error(error)
    except (StorageUnavailable, ChatMemoryError) as error:
        storage_unavailable(error)

    identity = current_identity(services)
    page_size = int(st.session_state.get(widget_key("page", identity), PAGE_STEP))
    try:
        conversation = services.memory.conversation(
            identity.user_id, page_size=min(page_size, MAX_WINDOW)
        )
    except StorageUnavailable as error:
        keep_unsent_prompt(identity)
        storage_unavailable(error)

    st.title("💬 Chat with memory in Redis")
    offline_banner(services)
    sidebar(services, identity, conversation)

    earlier_messages_button(identity, conversation, page_size)
    for message in conversation.recent:
        render_message(message.role, message.content)

    flash = st.session_state.pop("flash_error", None)
    if flash:
        st.error(flash)
    unsent_draft(services, identity, conversation)
    missing_reply(services, identity, conversation)

    prompt = chat_input()
    if prompt is not None and submit(services, identity, prompt):
        render_message(Role.USER, prompt)
        reply(services, identity, conversation.window_size)
    elif prompt is not None:
        st.rerun()


main()
