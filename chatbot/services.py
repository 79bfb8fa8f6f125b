"""Everything the app needs, built once per process from the environment."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
from azure.core.credentials import TokenCredential
from redis.credentials import CredentialProvider

from chatbot.admission import Admission
from chatbot.budget import TokenBudget
from chatbot.config import ConfigError, Environment
from chatbot.context import ContextBuilder
from chatbot.embedders import embedder_from_env
from chatbot.identity import (
    AuthMode,
    AuthSettings,
    Identity,
    auth_secrets,
    check_oidc_secrets,
)
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
from chatbot.replies import ReplyWorker
from chatbot.server_tokens import ServerTokenCounter
from memory import (
    ChatMemory,
    RedisClient,
    RedisTarget,
    StorageLimits,
    TokenCounter,
    create_client,
    create_entra_credential_provider,
)
from memory.embedded import (
    DEFAULT_DATA_DIR,
    EmbeddedRedis,
    EmbeddedRedisUnavailable,
    folder_port,
)
from memory.embedding_worker import EmbeddingWorker
from memory.keys import KeyLayout
from memory.limits import LimitPolicy, Reservation, UsageLimits
from memory.memories import Memories
from memory.namespaces import NamespaceRefused, Owner, claim_namespace
from memory.recall import Recall
from memory.reply_stream import ReplyStreams
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
    admission: Admission  # the user's limits, for every model request made for them
    replies: ReplyWorker  # asks the model for every reply, outside any page's script run
    # Local demo against a local Redis: error details and internals may show to anyone.
    local_only: bool = False
    recall: Recall | None = None
    # Embeds the backlog in the background (None: no embedder, or no index to keep one in).
    embedding_worker: EmbeddingWorker | None = None
    memories: Memories | None = None

    def admit(self, user_id: str, prompt_tokens: int) -> Reservation:
        """Admit one reply (or title) request of the user, reserving its prompt plus the
        longest reply (raises memory.limits.LimitExceeded, or ChatMemoryError when Redis
        refuses writes)."""
        return self.admission.admit(user_id, prompt_tokens + self.context.budget.reply_tokens)

    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Count what an admitted request really used (`context.tokens_spent`); if Redis
        refuses now, the (larger) reservation simply stands."""
        self.admission.settle(reservation, used_tokens)

    def shows_internals_to(self, identity: Identity) -> bool:
        """Data folders, hosts and endpoints are for admins, and in a demo only on a laptop."""
        return identity.is_admin and (self.auth.mode is not AuthMode.DEMO or self.local_only)


def embedded_redis(env: Environment) -> EmbeddedRedis | None:
    """The embedded local Redis the app uses, or None when REDIS_URL or REDIS_HOST is set."""
    if env.is_set("REDIS_URL") or env.is_set("REDIS_HOST"):
        return None
    data_dir = Path(env.get("EMBEDDED_REDIS_DIR") or DEFAULT_DATA_DIR)
    if env.is_set("EMBEDDED_REDIS_PORT"):
        return EmbeddedRedis(port=env.get_int("EMBEDDED_REDIS_PORT", minimum=1), data_dir=data_dir)
    return EmbeddedRedis(port=folder_port(data_dir), data_dir=data_dir)


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


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def uses_local_redis(env: Environment) -> bool:
    """No REDIS_HOST, and REDIS_URL (if any) points at this machine."""
    if env.is_set("REDIS_HOST"):
        return False
    if not env.is_set("REDIS_URL"):
        return True  # the embedded Redis, on loopback
    url = env.get("REDIS_URL")
    if url.startswith("unix://"):
        return True
    return _is_loopback(urlsplit(url).hostname)  # any scheme, redis+cluster:// too


def is_local_demo(env: Environment) -> bool:
    """Demo mode on a local Redis: a developer's own machine, where details may show."""
    try:
        return AuthMode.parse(env.get("AUTH_MODE")) is AuthMode.DEMO and uses_local_redis(env)
    except (ConfigError, ValueError):
        return False


def check_demo_storage(env: Environment, mode: AuthMode) -> None:
    """Demo mode lets anyone clear everything: never against a shared Redis by accident
    (`azd env get-values > .env && make run` would otherwise open production to a laptop)."""
    if mode is not AuthMode.DEMO or uses_local_redis(env):
        return
    if not env.get_bool("ALLOW_DEMO_WITH_REMOTE_REDIS"):
        raise ConfigError(
            "AUTH_MODE=demo lets anyone read and clear every conversation, and REDIS_HOST / "
            "REDIS_URL point at a Redis that is not on this machine. Use a local Redis (unset "
            "them), sign people in (AUTH_MODE=easyauth or oidc), or, if this Redis holds "
            "nothing of value, set ALLOW_DEMO_WITH_REMOTE_REDIS=true."
        )


def auth_settings(env: Environment) -> AuthSettings:
    return AuthSettings(
        mode=AuthMode.parse(env.get("AUTH_MODE")),
        demo_users=tuple(env.get_list("DEMO_USERS")),
        admin_users=frozenset(env.get_list("ADMIN_USERS")),
        platform_auth=env.get_bool("WEBSITE_AUTH_ENABLED"),
    )


def build_admission(env: Environment, client: RedisClient, auth: AuthSettings) -> Admission:
    return Admission(
        limits=UsageLimits(client, index_name=env.get("CHAT_INDEX_NAME")),
        policy=LimitPolicy(
            requests_per_minute=env.get_int("LIMIT_REQUESTS_PER_MINUTE", minimum=0),
            tokens_per_day=env.get_int("LIMIT_TOKENS_PER_DAY", minimum=0),
        ),
        admin_users=auth.admin_users,
        admin_factor=env.get_int("ADMIN_LIMIT_FACTOR", minimum=0),
    )


def claim_storage(env: Environment, client: RedisClient, auth: AuthSettings) -> None:
    """Demo data and signed-in users' data never share a namespace, and a demo never starts on
    a Redis holding signed-in users' data (memory/namespaces.py): else a ConfigError says so."""
    owner = Owner.DEMO if auth.mode is AuthMode.DEMO else Owner.SIGNED_IN
    try:
        claim_namespace(client, env.get("CHAT_INDEX_NAME"), owner, auth.demo_users)
    except NamespaceRefused as error:
        raise ConfigError(str(error)) from None


def build_services(env: Environment) -> Services:
    auth = auth_settings(env)
    check_demo_storage(env, auth.mode)
    if auth.mode is AuthMode.OIDC:
        check_oidc_secrets(auth_secrets())
    model_config = ModelConfig.from_env(env)
    redis_target = resolve_redis_target(env)
    credential, credential_provider = build_credentials(env, model_config, redis_target)
    counter = TokenCounter(model_config.tokenizer_model, model_config.encoding)
    client = create_client(redis_target, credential_provider)
    claim_storage(env, client, auth)
    presets = load_presets()
    index_name = env.get("CHAT_INDEX_NAME")
    model, azure_client, server_tokens = build_model(model_config, credential, counter)
    memory = build_memory(env, client, presets[DEFAULT_PRESET], counter, azure_client)
    recall = Recall(
        memory, client, index_name, max_messages=env.get_int("RECALL_MAX_MESSAGES", minimum=0)
    )
    admission = build_admission(env, client, auth)
    memories = Memories(memory, max_per_user=env.get_int("MEMORY_MAX_PER_USER", minimum=1))
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
            admission=admission,
            server_tokens=server_tokens,
            **additions(env, recall, memories),
        ),
        auth=auth,
        max_prompt_chars=env.get_int("MAX_PROMPT_CHARS", minimum=1),
        storage_description=redis_target.describe(),
        admission=admission,
        replies=ReplyWorker(ReplyStreams(client, KeyLayout(index_name))),
        local_only=is_local_demo(env),
        recall=recall,
        embedding_worker=start_embedding_worker(memory, index_name),
        memories=memories,
    )


def build_credentials(
    env: Environment, model_config: ModelConfig, redis_target: RedisTarget
) -> tuple[TokenCredential | None, CredentialProvider | None]:
    """The Azure credential when the model or Redis is keyless, and Redis's Entra ID
    provider built on it."""
    if not (model_config.keyless or redis_target.uses_entra_id):
        return None, None
    credential = create_azure_credential(env)
    if not redis_target.uses_entra_id:
        return credential, None
    return credential, create_entra_credential_provider(credential)


def additions(env: Environment, recall: Recall, memories: Memories) -> dict[str, Any]:
    """What the context builder adds to a request besides the window: recall and memories."""
    return {
        "recall": recall,
        "recall_max_tokens": env.get_int("RECALL_MAX_TOKENS", minimum=0),
        "memories": memories,
        "memory_max_tokens": env.get_int("MEMORY_MAX_TOKENS", minimum=0),
    }


def build_model(
    config: ModelConfig, credential: TokenCredential | None, counter: TokenCounter
) -> tuple[ChatModel, openai.OpenAI | None, ServerTokenCounter | None]:
    """The chat model; the Azure OpenAI client (the embedder shares it); and, for a local
    OpenAI-compatible server, its own token counter where it has one."""
    if config.provider is Provider.OFFLINE:
        return OfflineChatModel(counter=counter), None, None
    client = create_openai_client(config, credential)
    azure_client = client if config.provider is Provider.AZURE_OPENAI else None
    server_tokens = None
    if list_price_vendor(config) is None and config.endpoint:  # a local server
        server_tokens = ServerTokenCounter(client, config.endpoint)
    return OpenAIChatModel(config, client), azure_client, server_tokens


def build_memory(
    env: Environment,
    client: RedisClient,
    default_preset: Preset,
    counter: TokenCounter,
    azure_client: openai.OpenAI | None,
) -> ChatMemory:
    return ChatMemory(
        client,
        default_system=default_preset.instruction(),
        index_name=env.get("CHAT_INDEX_NAME"),
        token_counter=counter,
        limits=StorageLimits(
            max_messages=env.get_int("MAX_MESSAGES_PER_USER", minimum=1),
            max_bytes=env.get_int("MAX_BYTES_PER_USER", minimum=1),
        ),
        embedder=embedder_from_env(env, azure_client),
    )


def start_embedding_worker(memory: ChatMemory, index_name: str) -> EmbeddingWorker | None:
    """The process's background embedder, started; None without an embedder or where no
    index can cover every message (there is nothing to search with the vectors)."""
    if memory.vectors is None or memory.search_unavailable is not None:
        return None
    worker = EmbeddingWorker(memory.redis_client, KeyLayout(index_name), memory.vectors)
    worker.start()
    return worker
