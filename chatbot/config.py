"""Every environment variable the app reads, in one registry.

`.env.sample`, the README and the bicep app settings are checked against `SETTINGS` by the
tests, so a variable cannot be added in one place and forgotten in another.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """Where a variable is expected to be set."""

    AZURE = "azure"  # given to the deployed web app by infra/
    OPTIONAL = "optional"  # local development or tuning; never required


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    scope: Scope = Scope.OPTIONAL


SETTINGS: tuple[Setting, ...] = (
    # Redis
    Setting("REDIS_URL", "", "redis:// or rediss:// URL, password inside; wins over REDIS_HOST"),
    Setting(
        "REDIS_HOST", "", "Azure Managed Redis host name; Microsoft Entra ID auth", Scope.AZURE
    ),
    Setting("REDIS_PORT", "10000", "Azure Managed Redis port (TLS)", Scope.AZURE),
    Setting("REDIS_CLUSTER", "false", "true: an open-source Redis Cluster (RedisCluster client)"),
    Setting("CHAT_INDEX_NAME", "chat", "Name of the search index; keys start with it"),
    Setting(
        "EMBEDDED_REDIS_PORT",
        "6399",
        "Port of the local Redis used when none is set; unset: 6399, or the next free one when "
        "another checkout's Redis holds it (remembered in the data folder's `port` file)",
    ),
    Setting("EMBEDDED_REDIS_DIR", "", "Data folder of the local Redis (default .data/redis)"),
    # Model providers
    Setting("AZURE_OPENAI_ENDPOINT", "", "https://<name>.openai.azure.com/", Scope.AZURE),
    Setting("AZURE_OPENAI_DEPLOYMENT", "gpt-4o", "Chat model deployment name", Scope.AZURE),
    Setting("AZURE_OPENAI_API_VERSION", "2024-10-21", "Azure OpenAI data-plane API version"),
    Setting("AZURE_OPENAI_API_KEY", "", "Key auth; leave empty for keyless (Entra ID)"),
    Setting(
        "AZURE_OPENAI_MODEL",
        "gpt-4o",
        "Model behind the deployment (picks the tokenizer)",
        Scope.AZURE,
    ),
    Setting(
        "AZURE_CLIENT_ID", "", "Client id of the app's user-assigned managed identity", Scope.AZURE
    ),
    Setting("AZURE_TENANT_ID", "", "Tenant for the local developer credential"),
    Setting("OPENAI_BASE_URL", "", "Any OpenAI-compatible server (Ollama, vLLM, LM Studio)"),
    Setting("OPENAI_API_KEY", "", "Key for OPENAI_BASE_URL or api.openai.com"),
    Setting("OPENAI_MODEL", "gpt-4o", "Model name for OPENAI_BASE_URL"),
    Setting("LLM_TIMEOUT_SECONDS", "60", "Per-read timeout: the longest the model may stay silent"),
    Setting(
        "LLM_REPLY_DEADLINE_SECONDS",
        "180",
        "Overall time one reply may take, every attempt and retry wait included",
    ),
    Setting("LLM_MAX_RETRIES", "2", "Retries with backoff on 429, 5xx and failed connections"),
    Setting("LLM_MAX_TOKENS", "1024", "Reply limit sent as max_tokens, kept free in the context"),
    Setting(
        "MODEL_CONTEXT_TOKENS",
        "",
        "Context size of the model; default known per model (gpt-4o 128000), else 8192",
    ),
    Setting(
        "LLM_STRICT_ROLES",
        "auto",
        "true: requests start with a prompt and alternate prompt/reply (strict chat templates); "
        "auto: false for Azure OpenAI and api.openai.com, true for other servers",
    ),
    Setting(
        "LLM_TOKENIZER",
        "",
        "Encoding of an OpenAI-compatible model (o200k_base, cl100k_base); unset: ≈ estimate",
    ),
    # Recall by meaning
    Setting(
        "EMBEDDING_PROVIDER",
        "auto",
        "auto | offline | azure | openai | off; auto: Azure, else OPENAI_EMBEDDING_MODEL, "
        "else offline",
    ),
    Setting(
        "AZURE_OPENAI_EMBEDDING_DEPLOYMENT",
        "",
        "Embedding model deployment (text-embedding-3-small) on AZURE_OPENAI_ENDPOINT",
        Scope.AZURE,
    ),
    Setting(
        "OPENAI_EMBEDDING_MODEL", "", "Embedding model of OPENAI_BASE_URL (its /v1/embeddings)"
    ),
    Setting(
        "EMBEDDING_DIMENSIONS",
        "384",
        "Vector width asked of a remote embedding model (the offline one is always 384)",
    ),
    Setting(
        "RECALL_MAX_MESSAGES", "5", "Earlier messages recalled into a request at most; 0: none"
    ),
    Setting("RECALL_MAX_TOKENS", "1000", "Tokens the recalled messages may add to a request"),
    Setting("MEMORY_MAX_PER_USER", "200", "Memories kept per user at most"),
    Setting("MEMORY_MAX_TOKENS", "300", "Tokens the user's memories may add to a request"),
    # Users
    Setting("AUTH_MODE", "demo", "demo | easyauth | oidc", Scope.AZURE),
    Setting("DEMO_USERS", "Luke,Leia,Han", "Users of the demo-mode picker, comma separated"),
    Setting("ADMIN_USERS", "", "User ids allowed to clear all history, comma separated"),
    Setting(
        "STREAMLIT_SERVER_TRUSTED_USER_HEADERS",
        "",
        "easyauth only: JSON mapping App Service identity headers into st.user",
    ),
    Setting(
        "WEBSITE_AUTH_ENABLED",
        "",
        "Set by App Service when Easy Auth is on; easyauth refuses to serve without it",
    ),
    Setting(
        "ALLOW_DEMO_WITH_REMOTE_REDIS",
        "false",
        "demo mode refuses a non-local Redis unless true (the public demo sets it)",
    ),
    # Limits and prices
    Setting("MAX_PROMPT_CHARS", "20000", "Longer prompts are refused before anything is sent"),
    Setting("LIMIT_REQUESTS_PER_MINUTE", "20", "Model requests per user per minute; 0: none"),
    Setting(
        "LIMIT_TOKENS_PER_DAY",
        "200000",
        "Prompt + completion tokens per user per UTC day; 0: none",
    ),
    Setting("ADMIN_LIMIT_FACTOR", "10", "ADMIN_USERS get the limits times this; 0: no limits"),
    Setting(
        "MAX_MESSAGES_PER_USER",
        "10000",
        "Stored messages per user (and conversations, empty ones too); more are refused",
    ),
    Setting("MAX_BYTES_PER_USER", "20000000", "Stored message bytes per user; more are refused"),
    Setting(
        "PRICE_INPUT_PER_MTOK", "", "USD per 1M prompt tokens; unset: list price of known models"
    ),
    Setting(
        "PRICE_OUTPUT_PER_MTOK",
        "",
        "USD per 1M completion tokens; unset: list price of known models",
    ),
    # Monitoring
    Setting(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "",
        "Send traces and logs to Application Insights",
        Scope.AZURE,
    ),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it and says what is expected."""


@dataclass(frozen=True)
class Environment:
    """Typed read access to the registered variables; empty strings count as unset."""

    values: Mapping[str, str]

    @classmethod
    def current(cls) -> Environment:
        return cls(dict(os.environ))

    def get(self, name: str) -> str:
        setting = _BY_NAME[name]
        value = self.values.get(name, "").strip()
        return value or setting.default

    def is_set(self, name: str) -> bool:
        _BY_NAME[name]
        return bool(self.values.get(name, "").strip())

    def get_int(self, name: str, minimum: int | None = None) -> int:
        raw = self.get(name)
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def get_float(self, name: str) -> float:
        raw = self.get(name)
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None

    def get_bool(self, name: str) -> bool:
        raw = self.get(name).lower()
        if raw in {"true", "1", "yes"}:
            return True
        if raw in {"false", "0", "no", ""}:
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def get_list(self, name: str) -> list[str]:
        return [item.strip() for item in self.get(name).split(",") if item.strip()]
