"""The page's frame: its configuration, title and banners, and the pages that stop the script
(storage unavailable, a configuration error, sign-in required)."""

from __future__ import annotations

import time
from typing import NoReturn

import streamlit as st
from dotenv import load_dotenv

from chatbot.config import ConfigError, Environment
from chatbot.llm import Provider
from chatbot.services import Services, build_services, is_local_demo
from chatbot.telemetry import configure_telemetry
from memory import ChatMemoryError, StorageUnavailable
from ui import page_follow, state
from ui.prompt_echo import install_prompt_echo
from ui.prompt_guard import install_prompt_guard
from ui.shortcuts import shortcuts

TITLE = "💬 Chat with memory in Redis"
# Closes the sidebar overlay on a phone-sized window. RUN makes each copy new: the page runs an
# element's script when its text changes, and two switches in a row would send the same text.
CLOSE_SIDEBAR_ON_PHONE = """<script>
/* RUN */
if (innerWidth <= 768) {
  document.querySelector("[data-testid='stSidebarCollapseButton'] button")?.click();
}
</script>"""


def configure_page() -> None:
    st.set_page_config(page_title="Redis chat memory", page_icon="💬", layout="wide")


@st.cache_resource(show_spinner="Connecting to Redis…")
def _services() -> Services:
    """Once per process: `.env` read (it never overrides the environment; finding it walks
    the file system, so not on every run), telemetry, then everything built."""
    load_dotenv(override=False)
    configure_telemetry(Environment.current())
    return build_services(Environment.current())


def services_or_stop() -> Services:
    """The process's services (built once); a page that says why when they cannot be."""
    try:
        services = _services()
    except ConfigError as error:
        configuration_error(error)
    except (StorageUnavailable, ChatMemoryError) as error:
        storage_unavailable(error, details=is_local_demo(Environment.current()))
    st.set_option("client.showErrorDetails", "full" if services.local_only else "none")
    return services


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


def header(services: Services) -> None:
    """The title, and the banner that says replies come from the offline responder."""
    st.title(TITLE)
    if services.model.config.provider is Provider.OFFLINE:
        st.info(
            "No model is configured, so replies come from the built-in **offline responder**. "
            "Set `AZURE_OPENAI_ENDPOINT` (Azure OpenAI) or `OPENAI_BASE_URL` / `OPENAI_API_KEY` "
            "(any OpenAI-compatible server) in `.env` and restart to chat with a model."
        )


def page_scripts(services: Services) -> None:
    """After the sidebar: the prompt guard and echo, focus-and-follow and the keyboard
    shortcuts (each once per page), and on a phone, the sidebar closed after a switch (the
    chat it opened is under it)."""
    page_follow.install()  # first: its hold of Enter while a reply streams comes first
    install_prompt_guard(services.max_prompt_chars)
    install_prompt_echo(services.max_prompt_chars)
    shortcuts()
    if state.close_sidebar_now():
        run_once(CLOSE_SIDEBAR_ON_PHONE)


def run_once(script: str) -> None:
    """Run `script` in the page now (at the end of the sidebar, where its empty element
    shows nothing), again even if the last run sent the same one."""
    st.sidebar.html(script.replace("RUN", str(time.monotonic_ns())), unsafe_allow_javascript=True)
