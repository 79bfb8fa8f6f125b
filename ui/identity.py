"""Who is using the page: the demo picker, or the signed-in user (OIDC or App Service
Authentication) with Sign out; a page that asks to sign in when nobody is."""

from __future__ import annotations

import streamlit as st

from chatbot.config import ConfigError
from chatbot.identity import (
    DEMO_WARNING,
    EASYAUTH_LOGIN_URL,
    EASYAUTH_LOGOUT_URL,
    AuthMode,
    AuthSettings,
    Identity,
    check_platform_authentication,
    check_trusted_headers,
    demo_identity,
    identity_from_easyauth,
    identity_from_oidc,
)
from chatbot.services import Services
from ui import state
from ui.frame import configuration_error, sign_in_required


def current_identity(services: Services) -> Identity:
    auth = services.auth
    if auth.mode is AuthMode.DEMO:
        return demo_user(auth)
    try:
        check_platform_authentication(auth)
        check_trusted_headers(auth.mode, st.get_option("server.trustedUserHeaders"))
    except ConfigError as error:
        configuration_error(error)
    identity = signed_in(auth)
    st.sidebar.text(f"Signed in as {identity.display_name}")
    st.sidebar.caption(f"User id: `{identity.user_id}`")
    if auth.mode is AuthMode.OIDC:
        st.sidebar.button("Sign out", on_click=st.logout)
    else:
        st.sidebar.link_button("Sign out", EASYAUTH_LOGOUT_URL)
    return identity


def demo_user(auth: AuthSettings) -> Identity:
    """The picker's user, named in the URL (`?user=`) so reload keeps it; a warning on every
    screen that anyone can open anyone's chat."""
    wanted = state.url_user()
    user = st.sidebar.selectbox(
        "User",
        auth.demo_users,
        index=auth.demo_users.index(wanted) if wanted in auth.demo_users else 0,
        key="demo_user",
        on_change=state.user_switched,
    )
    state.name_user(user)
    st.warning(DEMO_WARNING, icon="⚠️")
    return demo_identity(user)


def signed_in(auth: AuthSettings) -> Identity:
    """The identity the request carries; without one, a page that asks to sign in."""
    claims = st.user.to_dict()
    if auth.mode is AuthMode.OIDC:
        identity = identity_from_oidc(claims, auth)
        if identity is None:
            sign_in_required(
                "💬 Sign in to chat", "Your conversation is private to your account.", login=True
            )
        return identity
    identity = identity_from_easyauth(claims, auth)
    if identity is None:
        sign_in_required(
            "🔒 Sign-in required",
            "This app only serves signed-in users, and no identity came with your request. "
            "Sign in through the site's login page and reload.",
            login_url=EASYAUTH_LOGIN_URL,
        )
    return identity
