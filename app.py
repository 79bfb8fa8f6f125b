"""Streamlit UI: a multi-user chatbot whose every message lives in Redis.

UI only: storage is memory/, the model and identity are chatbot/. `st.session_state` holds
UI state (which page of history is open, an unsent draft, the last error); everything a user
owns lives in Redis, so any app instance can serve any user.
"""

from __future__ import annotations

import hashlib
from itertools import chain

import streamlit as st
from dotenv import load_dotenv

from chatbot.config import ConfigError, Environment
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
from chatbot.llm import ModelError, Provider
from chatbot.rendering import format_duration, show_reply, stream_reply
from chatbot.services import Services, build_services, is_local_demo
from chatbot.telemetry import configure_telemetry
from memory import (
    MAX_WINDOW,
    ChatMemoryError,
    Conversation,
    Role,
    StorageUnavailable,
    Usage,
)
from memory.limits import LimitExceeded, Reservation

WINDOW_MAX = 50
PAGE_STEP = 50
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


def storage_unavailable(error: Exception, details: bool) -> None:
    st.error(
        "⚠️ Storage unavailable, retrying on your next action." + (f" ({error})" if details else "")
    )
    st.button("Retry now", key="retry_storage")
    st.stop()


def sign_in_required(
    title: str, text: str, login: bool = False, login_url: str | None = None
) -> None:
    st.title(title)
    st.write(text)
    if login:
        st.button("Sign in", on_click=st.login, type="primary")
    if login_url:
        st.link_button("Sign in", login_url, type="primary")
    st.stop()


def chat_input() -> str | None:
    """The one prompt box; the same widget on every path, so a submitted prompt always
    reaches this run whatever state the page was in."""
    return st.chat_input("Type your message", key="prompt")


def keep_unsent_prompt(identity: Identity, max_chars: int) -> None:
    """While storage is down, a prompt typed into the page is kept here (as much of it as
    could be sent), never dropped."""
    prompt = chat_input()
    if prompt is not None and prompt.strip():
        st.session_state["draft"] = (identity.user_id, prompt[:max_chars])
    draft = st.session_state.get("draft")
    if draft and draft[0] == identity.user_id:
        st.warning("Your message was NOT saved or sent. It is kept here to resend later:")
        st.code(draft[1][:5000], language=None, wrap_lines=True)


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
        st.warning(DEMO_WARNING, icon="⚠️")
        return demo_identity(user)
    try:
        check_platform_authentication(auth)
        check_trusted_headers(auth.mode, st.get_option("server.trustedUserHeaders"))
    except ConfigError as error:
        st.error(f"Configuration error: {error}")
        st.stop()
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
    assert identity is not None
    st.sidebar.text(f"Signed in as {identity.display_name}")
    st.sidebar.caption(f"User id: `{identity.user_id}`")
    if auth.mode is AuthMode.OIDC:
        st.sidebar.button("Sign out", on_click=st.logout)
    else:
        st.sidebar.link_button("Sign out", EASYAUTH_LOGOUT_URL)
    return identity


def act(action: str, run: object, toast: str | None = None) -> None:
    """Run a sidebar action's write, turning storage failures into a visible message; the
    success `toast` shows only once the write succeeded."""
    try:
        run()  # type: ignore[operator]
    except StorageUnavailable as error:
        st.session_state["flash_error"] = f"{action} failed: storage unavailable ({error})."
    except ChatMemoryError as error:
        st.session_state["flash_error"] = f"{action} failed: {error}"
    else:
        if toast:
            st.toast(toast)


def sidebar(services: Services, identity: Identity, conversation: Conversation) -> None:
    memory = services.memory
    user = identity.user_id
    bar = st.sidebar

    bar.subheader("Context")
    key = widget_key("window", identity)
    bar.slider(
        "Length of chat history",
        min_value=1,
        max_value=WINDOW_MAX,
        value=min(max(conversation.window_size, 1), WINDOW_MAX),
        key=key,
        help="The model gets the system instruction plus the last N messages.",
        on_change=lambda: act(
            "Saving the history length",
            lambda: memory.set_window_size(user, int(st.session_state[key])),
        ),
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

    bar.subheader("System instruction")
    presets = services.presets
    current = conversation.window.system
    options = [*presets, CUSTOM]
    selected = current.preset if current.preset in presets else CUSTOM
    preset_key = widget_key("preset", identity)
    custom_key = widget_key("custom_instruction", identity)

    def choose_preset() -> None:
        choice = st.session_state[preset_key]
        if choice != CUSTOM:
            preset = presets[choice]
            act(
                "Changing the instruction",
                lambda: memory.set_system_instruction(user, preset.text, preset=preset.id),
                toast=f"Instruction: {preset.title}",
            )

    bar.selectbox(
        "Preset",
        options,
        index=options.index(selected),
        key=preset_key,
        format_func=lambda option: "Custom…" if option == CUSTOM else presets[option].title,
        on_change=choose_preset,
    )
    if st.session_state.get(preset_key, selected) == CUSTOM:
        bar.text_area(
            "Custom instruction",
            value=current.text if current.preset is None else "",
            key=custom_key,
            max_chars=services.max_prompt_chars,
        )

        def save_custom() -> None:
            text = str(st.session_state.get(custom_key, ""))
            if not text.strip():
                st.session_state["flash_error"] = "A custom instruction cannot be empty."
                return
            act(
                "Saving the instruction",
                lambda: memory.set_system_instruction(user, text),
                toast="Custom instruction saved",
            )

        bar.button("Save instruction", on_click=save_custom)
    else:
        bar.text(current.text)

    bar.subheader("Retention")
    ttl_key = widget_key("ttl", identity)
    ttl = conversation.ttl_seconds
    bar.select_slider(
        "Time to live of chat entries",
        options=RETENTION_CHOICES,
        value=ttl if ttl in RETENTION_CHOICES else KEEP_FOREVER,
        format_func=lambda s: "Keep forever" if s == KEEP_FOREVER else format_duration(s),
        key=ttl_key,
    )

    def apply_retention() -> None:
        chosen = st.session_state[ttl_key] or None
        label = "kept forever" if chosen is None else f"kept {format_duration(chosen)}"
        act(
            "Applying retention",
            lambda: memory.set_retention(user, chosen),
            toast=f"Your messages are now {label}.",
        )

    bar.button("Apply retention", on_click=apply_retention)
    if ttl is None:
        bar.caption("Policy: keep forever.")
    else:
        status = conversation.retention
        remaining = (
            f"oldest message expires in {format_duration(round(status.oldest_expires_in))}"
            if status.oldest_expires_in is not None
            else "no messages stored"
        )
        bar.caption(f"Policy: {format_duration(ttl)} per message; {remaining}.")

    bar.subheader("Usage")
    last = conversation.last_reply_usage
    prices = services.prices
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

    bar.subheader("History")

    def clear_mine() -> None:
        act("Clearing your history", lambda: memory.clear(user), toast="Your history was cleared.")

    bar.button("Clear my history", on_click=clear_mine)
    if identity.is_admin:
        if not st.session_state.get("confirm_clear_all"):
            bar.button(
                "Clear ALL history…",
                on_click=lambda: st.session_state.update(confirm_clear_all=True),
            )
        else:
            bar.warning("Delete every user's messages? This cannot be undone.")

            def clear_all() -> None:
                st.session_state["confirm_clear_all"] = False
                if not identity.is_admin:
                    return
                act("Clearing all history", memory.clear_all, toast="All history was cleared.")

            left, right = bar.columns(2)
            left.button("Yes, delete all", on_click=clear_all, type="primary")
            right.button(
                "Cancel", on_click=lambda: st.session_state.update(confirm_clear_all=False)
            )
    if services.shows_internals_to(identity):
        bar.caption(
            f"Storage: {services.storage_description} · Model: {services.model.config.describe()}"
        )


def render_message(role: Role, content: str) -> None:
    with st.chat_message(role.value):
        if role is Role.USER:
            st.text(content)
        else:
            show_reply(content)


def reply(
    services: Services,
    identity: Identity,
    window_size: int,
    reservation: Reservation | None = None,
) -> None:
    """Stream the model's answer to the stored conversation and store it once complete.
    The request is admitted by the user's limits first (a write: a Redis that could not store
    the reply refuses it here, before the model is called and paid for)."""
    memory = services.memory
    user = identity.user_id
    try:
        window = memory.context_window(user, window_size)
        if reservation is None:
            reservation = services.admit(user, window.token_count)
    except ChatMemoryError as error:
        st.session_state["model_error"] = (user, f"No reply was requested: {error}")
        st.rerun()
    with st.chat_message("assistant"):
        try:
            with st.spinner("Thinking…"):
                answer = services.model.stream(window.as_openai())
                chunks = iter(answer)
                first = next(chunks, "")
            stream_reply(chain([first], chunks))
        except ModelError as error:
            services.settle(reservation, 0)
            st.session_state["model_error"] = (user, str(error))
            st.rerun()
    usage = answer.usage
    if usage is None and services.model.config.provider is not Provider.OFFLINE:
        usage = Usage(
            prompt_tokens=window.token_count,
            completion_tokens=memory.token_counter.count_text(answer.text),
        )
    services.settle(
        reservation,
        usage.total_tokens
        if usage
        else window.token_count + memory.token_counter.count_text(answer.text),
    )
    try:
        memory.append(user, Role.ASSISTANT, answer.text, usage=usage)
    except ChatMemoryError as error:
        st.session_state["model_error"] = (
            user,
            f"The reply arrived but could not be saved: {error}",
        )
    else:
        st.session_state.pop("model_error", None)
    st.rerun()


def keep_draft(identity: Identity, prompt: str, reason: str) -> None:
    """Keep an unsent prompt to resend (only as much as could be sent) and say why."""
    st.session_state["draft"] = (identity.user_id, prompt)
    st.session_state["flash_error"] = reason


def submit(
    services: Services, identity: Identity, prompt: str, window_tokens: int
) -> Reservation | None:
    """Admit and store a new prompt; None (with the reason shown and the prompt kept) when
    a limit or storage refuses it. `window_tokens` is the current context window's size."""
    if not prompt.strip():
        return None
    if len(prompt) > services.max_prompt_chars:
        keep_draft(
            identity,
            prompt[: services.max_prompt_chars],
            f"Your message has {len(prompt):,} characters; the limit is "
            f"{services.max_prompt_chars:,}. Nothing was sent or stored; the first "
            f"{services.max_prompt_chars:,} characters are kept below to edit and resend.",
        )
        return None
    prompt_tokens = services.memory.token_counter.count_message(Role.USER.value, prompt)
    try:
        reservation = services.admit(identity.user_id, window_tokens + prompt_tokens)
    except LimitExceeded as error:
        keep_draft(identity, prompt, f"{error} Your message was not sent; it is kept below.")
        return None
    except ChatMemoryError as error:
        keep_draft(identity, prompt, storage_refusal(error))
        return None
    try:
        services.memory.append(identity.user_id, Role.USER, prompt)
    except ChatMemoryError as error:
        services.settle(reservation, 0)
        keep_draft(identity, prompt, storage_refusal(error))
        return None
    st.session_state.pop("draft", None)
    st.session_state.pop("model_error", None)
    return reservation


def storage_refusal(error: ChatMemoryError) -> str:
    if isinstance(error, StorageUnavailable):
        return (
            "Storage is unavailable, so your message was NOT saved or sent. "
            "It is kept below: resend it when storage is back."
        )
    return f"Your message was NOT saved or sent: {error} It is kept below."


def main() -> None:
    try:
        services = get_services()
    except ConfigError as error:
        st.error(f"Configuration error: {error}")
        st.stop()
    except (StorageUnavailable, ChatMemoryError) as error:
        storage_unavailable(error, details=is_local_demo(Environment.current()))
    st.set_option("client.showErrorDetails", "full" if services.local_only else "none")

    identity = current_identity(services)
    user = identity.user_id
    page_size = int(st.session_state.get(widget_key("page", identity), PAGE_STEP))
    try:
        conversation = services.memory.conversation(user, page_size=min(page_size, MAX_WINDOW))
    except ChatMemoryError as error:
        keep_unsent_prompt(identity, services.max_prompt_chars)
        storage_unavailable(error, details=services.shows_internals_to(identity))

    st.title("💬 Chat with memory in Redis")
    if services.model.config.provider is Provider.OFFLINE:
        st.info(
            "No model is configured, so replies come from the built-in **offline responder**. "
            "Set `AZURE_OPENAI_ENDPOINT` (Azure OpenAI) or `OPENAI_BASE_URL` / `OPENAI_API_KEY` "
            "(any OpenAI-compatible server) in `.env` and restart to chat with a model."
        )
    sidebar(services, identity, conversation)

    if conversation.has_earlier:
        hidden = conversation.total_messages - len(conversation.recent)
        st.button(
            f"Show earlier messages ({hidden:,} more)",
            on_click=lambda: st.session_state.update(
                {widget_key("page", identity): page_size + PAGE_STEP}
            ),
        )
    for message in conversation.recent:
        render_message(message.role, message.content)

    flash = st.session_state.pop("flash_error", None)
    if flash:
        st.error(flash)
    draft = st.session_state.get("draft")
    if draft and draft[0] == user:
        with st.expander("Your unsent message", expanded=True):
            st.code(draft[1][:5000], language=None, wrap_lines=True)
            if len(draft[1]) > 5000:
                st.caption(f"Showing the first 5,000 of {len(draft[1]):,} characters.")
            resend = st.button("Resend", key="resend")
        reservation = (
            submit(services, identity, draft[1], conversation.window.token_count)
            if resend
            else None
        )
        if reservation is not None:
            render_message(Role.USER, draft[1])
            reply(services, identity, conversation.window_size, reservation)

    awaiting_reply = bool(conversation.recent) and conversation.recent[-1].role is Role.USER
    model_error = st.session_state.get("model_error")
    if awaiting_reply:
        if model_error and model_error[0] == user:
            st.error(f"{model_error[1]} Your message is saved.")
        else:
            st.caption("No reply was stored for your last message.")
        if st.button("↻ Retry reply", key="retry_reply"):
            reply(services, identity, conversation.window_size)

    prompt = chat_input()
    if prompt is None:
        return
    reservation = submit(services, identity, prompt, conversation.window.token_count)
    if reservation is not None:
        render_message(Role.USER, prompt)
        reply(services, identity, conversation.window_size, reservation)
    else:
        st.rerun()


main()
