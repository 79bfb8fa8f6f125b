"""Everything the app needs, built once per process from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from azure.core.credentials import TokenCredential

from chatbot.budget import TokenBudget
from chatbot.config import ConfigError, Environment
from chatbot.context import ContextBuilder
from chatbot.identity import AuthMode, AuthSettings
from chatbot.llm import (
    ChatModel,
    ModelConfig,
    OpenAIChatModel,
    Provider,
    create_azure_credential,
    create_openai_client,
)
from chatbot.offline import OfflineChatModel
from chatbot.presets import DEFAULT_PRESET, Preset, load_presets
from chatbot.pricing import Prices
from memory import (
    ChatMemory,
    RedisTarget,
    StorageLimits,
    TokenCounter,
    create_client,
    create_entra_credential_provider,
)
from memory.embedded import DEFAULT_DATA_DIR, EmbeddedRedis, EmbeddedRedisUnavailable
from memory.summary import SummaryStore


@dataclass(frozen=True)
class Services:
    memory: ChatMemory
    model: ChatModel
    presets: dict[str, Preset]
    prices: Prices | None  # None: no known price, so no cost is shown
    context: ContextBuilder
    auth: AuthSettings
    max_prompt_chars: int
    storage_description: str


def embedded_redis(env: Environment) -> EmbeddedRedis | None:
    """The embedded local Redis the app uses, or None when REDIS_URL or REDIS_HOST is set."""
    if env.is_set("REDIS_URL") or env.is_set("REDIS_HOST"):
        return None
    return EmbeddedRedis(
        port=env.get_int("EMBEDDED_REDIS_PORT", minimum=1),
        data_dir=Path(env.get("EMBEDDED_REDIS_DIR") or DEFAULT_DATA_DIR),
    )


def resolve_redis_target(env: Environment) -> RedisTarget:
    """REDIS_URL, else REDIS_HOST (Entra ID), else the embedded local Redis, started if needed.

    Where there is no embedded Redis, a ConfigError says which Redis to point REDIS_URL at."""
    embedded = embedded_redis(env)
    if embedded is None:
        cluster = env.get("REDIS_CLUSTER").lower() in {"1", "true", "yes"}
        if env.is_set("REDIS_URL"):
            return RedisTarget(url=env.get("REDIS_URL"), cluster=cluster)
        return RedisTarget(
            host=env.get("REDIS_HOST"), port=env.get_int("REDIS_PORT", minimum=1), cluster=cluster
        )
    try:
        url = embedded.ensure_running()
    except EmbeddedRedisUnavailable as error:
        raise ConfigError(str(error)) from error
    return RedisTarget(url=url, label=f"local Redis, data in {embedded.data_dir}")


def list_price_vendor(config: ModelConfig) -> str | None:
    """Whose list prices apply: Azure OpenAI's, OpenAI's, or none (a local or other server)."""
    if config.provider is Provider.AZURE_OPENAI:
        return "Azure OpenAI"
    if config.provider is Provider.OPENAI_COMPATIBLE and "api.openai.com" in config.url:
        return "OpenAI"
    return None


def build_services(env: Environment) -> Services:
    model_config = ModelConfig.from_env(env)
    redis_target = resolve_redis_target(env)
    credential: TokenCredential | None = None
    if model_config.keyless or redis_target.uses_entra_id:
        credential = create_azure_credential(env)
    credential_provider = (
        create_entra_credential_provider(credential)
        if redis_target.uses_entra_id and credential is not None
        else None
    )
    presets = load_presets()
    counter = TokenCounter(model_config.tokenizer_model, model_config.encoding)
    client = create_client(redis_target, credential_provider)
    index_name = env.get("CHAT_INDEX_NAME")
    memory = ChatMemory(
        client,
        default_system=presets[DEFAULT_PRESET].instruction(),
        index_name=index_name,
        token_counter=counter,
        limits=StorageLimits(
            max_messages=env.get_int("MAX_MESSAGES_PER_USER", minimum=1),
            max_bytes=env.get_int("MAX_BYTES_PER_USER", minimum=1),
        ),
    )
    model: ChatModel
    if model_config.provider is Provider.OFFLINE:
        model = OfflineChatModel(counter=counter)
    else:
        model = OpenAIChatModel(model_config, create_openai_client(model_config, credential))
    return Services(
        memory=memory,
        model=model,
        presets=presets,
        prices=Prices.from_env(env, model_config.tokenizer_model, list_price_vendor(model_config)),
        context=ContextBuilder(
            memory=memory,
            summaries=SummaryStore(client, index_name),
            budget=TokenBudget.from_env(env, model_config.tokenizer_model),
            model=model,
        ),
        auth=AuthSettings(
            mode=AuthMode.parse(env.get("AUTH_MODE")),
            demo_users=tuple(env.get_list("DEMO_USERS")),
            admin_users=frozenset(env.get_list("ADMIN_USERS")),
        ),
        max_prompt_chars=env.get_int("MAX_PROMPT_CHARS", minimum=1),
        storage_description=redis_target.describe(),
    )
