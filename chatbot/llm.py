"""The chat model: which provider, which credential, and one streaming call.

Provider choice (from the environment, here and nowhere else):
- `AZURE_OPENAI_ENDPOINT` set: Azure OpenAI, with `AZURE_OPENAI_API_KEY` if given, otherwise
  keyless through Microsoft Entra ID;
- else `OPENAI_BASE_URL` or `OPENAI_API_KEY` set: OpenAI or any OpenAI-compatible server;
- else offline: a built-in responder, plainly labelled, so every memory feature still works.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, cast

import openai
from azure.core.credentials import TokenCredential
from azure.identity import (
    AzureCliCredential,
    AzureDeveloperCliCredential,
    ChainedTokenCredential,
    ManagedIdentityCredential,
    get_bearer_token_provider,
)
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from chatbot.config import Environment
from memory import Usage

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"


class Provider(StrEnum):
    AZURE_OPENAI = "azure-openai"
    OPENAI_COMPATIBLE = "openai-compatible"
    OFFLINE = "offline"


@dataclass(frozen=True)
class ModelConfig:
    provider: Provider
    model: str
    tokenizer_model: str
    endpoint: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    timeout_seconds: float = 60.0
    max_retries: int = 2

    @property
    def keyless(self) -> bool:
        return self.provider is Provider.AZURE_OPENAI and not self.api_key

    def describe(self) -> str:
        if self.provider is Provider.AZURE_OPENAI:
            auth = "key" if self.api_key else "Microsoft Entra ID"
            return f"Azure OpenAI · {self.model} ({auth})"
        if self.provider is Provider.OPENAI_COMPATIBLE:
            return f"{self.model} at {self.endpoint or 'api.openai.com'}"
        return "Offline responder (no model configured)"

    @classmethod
    def from_env(cls, env: Environment) -> ModelConfig:
        timeout = float(env.get_int("LLM_TIMEOUT_SECONDS", minimum=1))
        retries = env.get_int("LLM_MAX_RETRIES", minimum=0)
        if env.is_set("AZURE_OPENAI_ENDPOINT"):
            return cls(
                provider=Provider.AZURE_OPENAI,
                model=env.get("AZURE_OPENAI_DEPLOYMENT"),
                tokenizer_model=env.get("AZURE_OPENAI_MODEL"),
                endpoint=env.get("AZURE_OPENAI_ENDPOINT"),
                api_key=env.get("AZURE_OPENAI_API_KEY") or None,
                api_version=env.get("AZURE_OPENAI_API_VERSION"),
                timeout_seconds=timeout,
                max_retries=retries,
            )
        if env.is_set("OPENAI_BASE_URL") or env.is_set("OPENAI_API_KEY"):
            return cls(
                provider=Provider.OPENAI_COMPATIBLE,
                model=env.get("OPENAI_MODEL"),
                tokenizer_model=env.get("OPENAI_MODEL"),
                endpoint=env.get("OPENAI_BASE_URL") or None,
                api_key=env.get("OPENAI_API_KEY") or None,
                timeout_seconds=timeout,
                max_retries=retries,
            )
        return cls(provider=Provider.OFFLINE, model="offline", tokenizer_model="gpt-4o")


def create_azure_credential(env: Environment) -> TokenCredential:
    """The app's managed identity in Azure (AZURE_CLIENT_ID is set only there), else the
    developer's own `azd auth login` / `az login`."""
    if env.is_set("AZURE_CLIENT_ID"):
        return ManagedIdentityCredential(client_id=env.get("AZURE_CLIENT_ID"))
    tenant_id = env.get("AZURE_TENANT_ID")
    return ChainedTokenCredential(
        AzureDeveloperCliCredential(tenant_id=tenant_id, process_timeout=30),
        AzureCliCredential(tenant_id=tenant_id, process_timeout=30),
    )


def create_openai_client(config: ModelConfig, credential: TokenCredential | None) -> openai.OpenAI:
    """The openai client for the configured provider; retries with backoff are its own."""
    if config.provider is Provider.AZURE_OPENAI:
        if not config.endpoint:
            raise ValueError("Azure OpenAI needs AZURE_OPENAI_ENDPOINT.")
        if config.api_key:
            return openai.AzureOpenAI(
                azure_endpoint=config.endpoint,
                api_version=config.api_version,
                api_key=config.api_key,
                timeout=config.timeout_seconds,
                max_retries=config.max_retries,
            )
        if credential is None:
            raise ValueError("Keyless Azure OpenAI needs an Azure credential.")
        return openai.AzureOpenAI(
            azure_endpoint=config.endpoint,
            api_version=config.api_version,
            azure_ad_token_provider=get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE),
            timeout=config.timeout_seconds,
            max_retries=config.max_retries,
        )
    if config.provider is Provider.OPENAI_COMPATIBLE:
        return openai.OpenAI(
            base_url=config.endpoint,
            api_key=config.api_key or "not-needed",
            timeout=config.timeout_seconds,
            max_retries=config.max_retries,
        )
    raise ValueError("The offline responder has no OpenAI client.")


class ModelError(Exception):
    """A reply could not be produced; `str(error)` is written for the person chatting."""


def _explain(error: Exception, config: ModelConfig) -> ModelError:
    retried = ", even after retrying" if config.max_retries else ""
    if isinstance(error, openai.APITimeoutError):
        text = f"The model did not answer within {config.timeout_seconds:.0f} seconds."
    elif isinstance(error, openai.RateLimitError):
        text = f"The model is rate-limited right now (HTTP 429){retried}."
    elif isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        text = (
            f"The app is not allowed to call the model (HTTP {error.status_code}). "
            "Check the key or the identity's role assignment."
        )
    elif isinstance(error, openai.BadRequestError) and error.code == "content_filter":
        text = "The prompt was blocked by the content filter."
    elif isinstance(error, openai.APIStatusError):
        text = f"The model service failed (HTTP {error.status_code}){retried}."
    elif isinstance(error, openai.APIConnectionError):
        text = "The connection to the model was lost before the reply was complete."
    else:
        text = f"The model call failed: {error}"
    return ModelError(text)


class ReplyStream:
    """Iterate for the reply's text as it arrives; afterwards `text`, `usage`, `complete`.

    Skips Azure's chunks with empty `choices`, records the usage chunk when the server sends
    one, and raises ModelError for a filtered or cut-off reply, so a partial reply is never
    mistaken for a complete one.
    """

    def __init__(self, chunks: Iterator[ChatCompletionChunk], config: ModelConfig) -> None:
        self._chunks = chunks
        self._config = config
        self._parts: list[str] = []
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def complete(self) -> bool:
        return self.finish_reason in {"stop", "length"}

    def __iter__(self) -> Iterator[str]:
        try:
            for chunk in self._chunks:
                if chunk.usage is not None:
                    self.usage = Usage(
                        prompt_tokens=chunk.usage.prompt_tokens,
                        completion_tokens=chunk.usage.completion_tokens,
                    )
                for choice in chunk.choices:
                    if choice.delta is not None and choice.delta.content:
                        self._parts.append(choice.delta.content)
                        yield choice.delta.content
                    if choice.finish_reason:
                        self.finish_reason = choice.finish_reason
        except openai.APIError as error:
            raise _explain(error, self._config) from error
        if self.finish_reason == "content_filter":
            raise ModelError("The reply was stopped by the content filter.")
        if not self.complete:
            raise ModelError("The connection to the model was lost before the reply was complete.")


class Reply(Protocol):
    """A reply being streamed: iterate for text; then read the outcome."""

    usage: Usage | None

    def __iter__(self) -> Iterator[str]: ...

    @property
    def text(self) -> str: ...

    @property
    def complete(self) -> bool: ...


class ChatModel(Protocol):
    config: ModelConfig

    def stream(self, messages: list[dict[str, str]]) -> Reply: ...


@dataclass
class OpenAIChatModel:
    config: ModelConfig
    client: openai.OpenAI

    def stream(self, messages: list[dict[str, str]]) -> ReplyStream:
        try:
            chunks = self.client.chat.completions.create(
                model=self.config.model,
                messages=cast(list[ChatCompletionMessageParam], messages),
                stream=True,
                stream_options={"include_usage": True},
            )
        except openai.APIError as error:
            raise _explain(error, self.config) from error
        return ReplyStream(iter(chunks), self.config)
