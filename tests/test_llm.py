"""Model provider selection and wiring: every branch, through the real openai client against
a real local HTTP server; only the Azure credential is fake."""

from __future__ import annotations

import pytest
from azure.identity import ChainedTokenCredential, ManagedIdentityCredential

from chatbot.config import Environment
from chatbot.llm import (
    COGNITIVE_SERVICES_SCOPE,
    ModelConfig,
    ModelError,
    OpenAIChatModel,
    Provider,
    create_azure_credential,
    create_openai_client,
)
from chatbot.offline import OFFLINE_LABEL, OfflineChatModel
from chatbot.services import build_services
from tests.fakes import FakeCredential
from tests.support.openai_server import ChatCompletionsServer, Fault

MESSAGES = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]


def run(model: OpenAIChatModel) -> str:
    reply = model.stream(MESSAGES)
    text = "".join(reply)
    assert reply.complete and reply.text == text
    return text


def test_azure_with_a_key(model_server: ChatCompletionsServer) -> None:
    env = Environment(
        {
            "AZURE_OPENAI_ENDPOINT": model_server.azure_endpoint,
            "AZURE_OPENAI_API_KEY": "secret-key",
            "AZURE_OPENAI_DEPLOYMENT": "chat-deploy",
        }
    )
    config = ModelConfig.from_env(env)
    assert (config.provider, config.keyless, config.model) == (
        Provider.AZURE_OPENAI,
        False,
        "chat-deploy",
    )
    assert config.tokenizer_model == "gpt-4o"
    assert run(OpenAIChatModel(config, create_openai_client(config, None))) == "Echo: Hi"
    request = model_server.last_request
    assert request.path.startswith("/openai/deployments/chat-deploy/chat/completions")
    assert request.api_version == "2024-10-21"
    assert request.headers.get("api-key") == "secret-key"
    assert "authorization" not in request.headers


def test_azure_keyless_uses_an_entra_token(model_server: ChatCompletionsServer) -> None:
    env = Environment({"AZURE_OPENAI_ENDPOINT": model_server.azure_endpoint})
    config = ModelConfig.from_env(env)
    assert config.keyless
    credential = FakeCredential()
    model = OpenAIChatModel(config, create_openai_client(config, credential))
    assert run(model) == "Echo: Hi"
    request = model_server.last_request
    assert request.headers["authorization"] == f"Bearer {credential.issued[-1]}"
    assert "api-key" not in request.headers
    assert credential.scopes[-1] == (COGNITIVE_SERVICES_SCOPE,)
    with pytest.raises(ValueError, match="credential"):
        create_openai_client(config, None)


def test_azure_streams_with_an_empty_first_chunk_and_no_usage(
    model_server: ChatCompletionsServer,
) -> None:
    model_server.configure(omit_usage=True)
    config = ModelConfig.from_env(
        Environment(
            {"AZURE_OPENAI_ENDPOINT": model_server.azure_endpoint, "AZURE_OPENAI_API_KEY": "k"}
        )
    )
    model = OpenAIChatModel(config, create_openai_client(config, None))
    reply = model.stream(MESSAGES)
    assert "".join(reply) == "Echo: Hi"
    assert reply.usage is None and reply.complete


def test_openai_compatible_server(model_server: ChatCompletionsServer) -> None:
    env = Environment(
        {
            "OPENAI_BASE_URL": model_server.base_url,
            "OPENAI_API_KEY": "sk-local",
            "OPENAI_MODEL": "llama3",
        }
    )
    config = ModelConfig.from_env(env)
    assert (config.provider, config.model, config.endpoint) == (
        Provider.OPENAI_COMPATIBLE,
        "llama3",
        model_server.base_url,
    )
    model = OpenAIChatModel(config, create_openai_client(config, None))
    reply = model.stream(MESSAGES)
    assert "".join(reply) == "Echo: Hi"
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    request = model_server.last_request
    assert request.model == "llama3" and request.messages == MESSAGES
    assert request.headers["authorization"] == "Bearer sk-local"


def test_a_server_without_a_key_still_works(model_server: ChatCompletionsServer) -> None:
    config = ModelConfig.from_env(Environment({"OPENAI_BASE_URL": model_server.base_url}))
    assert run(OpenAIChatModel(config, create_openai_client(config, None))) == "Echo: Hi"


def test_nothing_configured_is_offline_and_labelled() -> None:
    config = ModelConfig.from_env(Environment({}))
    assert config.provider is Provider.OFFLINE
    reply = OfflineChatModel().stream(MESSAGES)
    assert "".join(reply).startswith(OFFLINE_LABEL)
    assert reply.complete and reply.usage is not None and reply.usage.estimated  # counted, ≈
    assert reply.usage.completion_tokens > 0


def test_build_services_picks_the_offline_responder(app_env: str) -> None:
    services = build_services(Environment.current())
    assert isinstance(services.model, OfflineChatModel)


def test_retries_with_backoff_then_succeeds(model_server: ChatCompletionsServer) -> None:
    model_server.fail_next(Fault.HTTP_500, times=2)
    model_server.fail_next(Fault.HTTP_429, retry_after=0.01)
    env = Environment(
        {
            "OPENAI_BASE_URL": model_server.base_url,
            "LLM_MAX_RETRIES": "3",
            "LLM_TIMEOUT_SECONDS": "5",
        }
    )
    config = ModelConfig.from_env(env)
    assert run(OpenAIChatModel(config, create_openai_client(config, None))) == "Echo: Hi"
    assert len(model_server.chat_requests) == 4


def test_retries_are_bounded(model_server: ChatCompletionsServer) -> None:
    model_server.set_fault(Fault.HTTP_500)
    config = ModelConfig.from_env(
        Environment({"OPENAI_BASE_URL": model_server.base_url, "LLM_MAX_RETRIES": "2"})
    )
    with pytest.raises(ModelError, match="HTTP 500"):
        run(OpenAIChatModel(config, create_openai_client(config, None)))
    assert len(model_server.chat_requests) == 3


def test_credential_is_the_managed_identity_in_azure_and_the_developer_login_locally() -> None:
    in_azure = create_azure_credential(Environment({"AZURE_CLIENT_ID": "1111-2222"}))
    assert isinstance(in_azure, ManagedIdentityCredential)
    local = create_azure_credential(Environment({"AZURE_TENANT_ID": ""}))
    assert isinstance(local, ChainedTokenCredential)
    assert [type(c).__name__ for c in local.credentials] == [
        "AzureDeveloperCliCredential",
        "AzureCliCredential",
    ]


def test_bad_numbers_in_the_environment_are_named() -> None:
    from chatbot.config import ConfigError

    with pytest.raises(ConfigError, match="LLM_MAX_RETRIES"):
        ModelConfig.from_env(Environment({"LLM_MAX_RETRIES": "lots"}))
