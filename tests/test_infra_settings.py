"""Drift between the app's settings registry and what infra/, azd and azure.yaml give it.

chatbot/config.py SETTINGS names every environment variable the app reads. The web app gets its
settings from web.bicep's appsettings; a local run gets main.bicep's outputs (`azd env
get-values > .env`). A variable added or renamed on one side, or wired to another resource on
one of the two paths, fails here.
"""

from __future__ import annotations

import json
import re

import yaml

from chatbot.config import SETTINGS, Scope
from chatbot.identity import EASYAUTH_HEADERS
from tests.bicep_tree import MAIN, REPO, REQUIRED, Call, Choice, Expr, Resource, at, load, merged

BY_NAME = {setting.name: setting for setting in SETTINGS}
AZURE_NAMES = {setting.name for setting in SETTINGS if setting.scope == Scope.AZURE}
# Optional settings the deployment sets on purpose (from azd environment values).
OPTIONAL_GIVEN = {
    "ADMIN_USERS",
    "STREAMLIT_SERVER_TRUSTED_USER_HEADERS",
    "ALLOW_DEMO_WITH_REMOTE_REDIS",
    "CHAT_INDEX_NAME",  # the public demo's own namespace
}
# App Service itself reads these; the app does not.
PLATFORM = {
    "SCM_DO_BUILD_DURING_DEPLOYMENT",  # run Oryx (pip install -r requirements.txt) on deploy
    "ENABLE_ORYX_BUILD",
    "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID",  # Easy Auth's client assertion, no secret
}
# Secrets or local-only switches the deployed app must never receive.
NEVER_GIVEN = {"REDIS_URL", "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"}
# What each Scope.AZURE setting is, as main.bicep reads it (AUTH_MODE is a choice, below).
SOURCES = {
    "REDIS_HOST": "redis.outputs.hostName",
    "REDIS_PORT": "redis.outputs.port",
    "AZURE_OPENAI_ENDPOINT": "openAi.outputs.endpoint",
    "AZURE_OPENAI_DEPLOYMENT": "openAi.outputs.deploymentName",
    "AZURE_OPENAI_EMBEDDING_DEPLOYMENT": "openAi.outputs.embeddingDeploymentName",
    "AZURE_OPENAI_MODEL": "openAiModelName",
    "AZURE_CLIENT_ID": "identity.outputs.clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (
        "monitoring.outputs.applicationInsightsConnectionString"
    ),
}
# The web app's alone: AZURE_CLIENT_ID would switch a local run to ManagedIdentityCredential.
WEB_ONLY = {"AZURE_CLIENT_ID", "AUTH_MODE", "APPLICATIONINSIGHTS_CONNECTION_STRING"}

main = load(MAIN)
web = main.module("web")


def web_resource(type_: str, name: str | None = None) -> Resource:
    """web.bicep's one resource of that type (and name)."""
    (found,) = [
        r for r in web.resources.values() if r.type == type_ and name in (None, r.body["name"])
    ]
    return found


def app_settings() -> dict[str, object]:
    config = web_resource("Microsoft.Web/sites/config", "appsettings")
    return merged(web.resolve(config.body["properties"]))


def from_main(setting: object) -> object:
    """What main.bicep passes for the web.bicep parameter a setting is (string() unwrapped)."""
    if isinstance(setting, Call) and setting.name == "string":
        (setting,) = setting.args
    assert isinstance(setting, Expr) and setting.text in web.params, setting
    return main.modules["web"][1][setting.text]


def test_the_lists_here_agree_with_the_registry() -> None:
    assert OPTIONAL_GIVEN | NEVER_GIVEN <= set(BY_NAME) - AZURE_NAMES
    assert not OPTIONAL_GIVEN & NEVER_GIVEN
    assert not PLATFORM & set(BY_NAME), "a platform setting shadows an app setting"
    assert set(SOURCES) == AZURE_NAMES - {"AUTH_MODE"}


def test_web_app_settings_are_exactly_the_registered_ones() -> None:
    assert set(app_settings()) == AZURE_NAMES | OPTIONAL_GIVEN | PLATFORM


def test_the_web_app_and_a_local_run_get_each_setting_from_the_same_place() -> None:
    settings, outputs = app_settings(), main.outputs
    for name, source in SOURCES.items():
        assert from_main(settings[name]) == Expr(source), name
        if name not in WEB_ONLY:
            assert outputs[name] == Expr(source), f"output {name}"
    assert outputs.keys() & (WEB_ONLY | NEVER_GIVEN) == set()
    assert "AZURE_TENANT_ID" in outputs, "the local developer credential needs the tenant"


def test_easy_auth_and_the_app_switch_together_and_agree_on_the_headers() -> None:
    settings = app_settings()
    mode = settings["AUTH_MODE"]
    assert isinstance(mode, Choice) and (mode.then, mode.otherwise) == ("easyauth", "demo")
    assert {"easyauth", "demo"} <= {m.strip() for m in BY_NAME["AUTH_MODE"].help.split("|")}
    auth = web_resource("Microsoft.Web/sites/config", "authsettingsV2")
    assert auth.condition == mode.condition, "AUTH_MODE=easyauth exactly when Easy Auth is on"
    assert json.loads(str(settings["STREAMLIT_SERVER_TRUSTED_USER_HEADERS"])) == EASYAUTH_HEADERS
    registration = "properties.identityProviders.azureActiveDirectory.registration"
    name = str(at(auth.body, f"{registration}.clientSecretSettingName"))
    assert from_main(settings[name]) == Expr("identity.outputs.clientId"), "no client secret"


def test_registry_defaults_are_the_deployment_defaults() -> None:
    (database,) = [
        r for r in main.module("redis").resources.values() if r.type.endswith("/databases")
    ]
    assert str(at(database.body, "properties.port")) == BY_NAME["REDIS_PORT"].default
    for param, name in (
        ("openAiDeploymentName", "AZURE_OPENAI_DEPLOYMENT"),
        ("openAiModelName", "AZURE_OPENAI_MODEL"),
        ("adminUsers", "ADMIN_USERS"),
    ):
        assert main.params[param] == BY_NAME[name].default, param


def test_parameters_file_feeds_main_from_the_azd_environment() -> None:
    parameters = json.loads((MAIN.parent / "main.parameters.json").read_text())["parameters"]
    values = {name: entry["value"] for name, entry in parameters.items()}
    assert values["environmentName"] == "${AZURE_ENV_NAME}"
    assert values["principalId"] == "${AZURE_PRINCIPAL_ID}"
    assert set(values) - set(main.params) == set(), "parameters main.bicep does not declare"
    required = {name for name, default in main.params.items() if default is REQUIRED}
    assert required - set(values) == set(), "parameters azd would have to prompt for"
    for name, value in values.items():
        match = re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*(?:=([^}]*))?\}", value)
        assert match, name
        if match[1] is not None:  # azd's default and main.bicep's are the same
            assert json.dumps(main.params[name]).strip('"') == match[1], name


def test_azure_yaml_deploys_the_repo_root_to_the_web_app_azd_finds_by_its_tag() -> None:
    services = yaml.safe_load((REPO / "azure.yaml").read_text())["services"]
    assert list(services) == ["web"]
    service = services["web"]
    assert (service["language"], service["host"]) == ("python", "appservice")
    assert (REPO / service["project"]).resolve() == REPO
    site = web_resource("Microsoft.Web/sites")
    assert at(site.body, "tags.azd-service-name") == "web"


def test_an_embedding_model_is_deployed_keyless_beside_the_chat_model() -> None:
    """Search and recall embed with Azure OpenAI when deployed: a text-embedding-3 model (it
    shortens its vectors to EMBEDDING_DIMENSIONS) on the same keyless account, deployed after
    the chat model (an account takes one deployment at a time)."""
    openai_module = main.module("openAi")
    embedding = openai_module.resources["embeddingDeployment"]
    assert at(embedding.body, "properties.model.name") == Expr("embeddingModelName")
    assert str(openai_module.params["embeddingModelName"]).startswith("text-embedding-3")
    assert embedding.body["dependsOn"] == [Expr("deployment")], "after the chat model"
    account = openai_module.resources["account"]
    assert at(account.body, "properties.disableLocalAuth") is True
    assert main.outputs["AZURE_OPENAI_EMBEDDING_DEPLOYMENT"] == Expr(
        "openAi.outputs.embeddingDeploymentName"
    )
    assert int(BY_NAME["EMBEDDING_DIMENSIONS"].default) <= 1536  # text-embedding-3-small's width
