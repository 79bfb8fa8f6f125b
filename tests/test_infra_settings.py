"""Drift between the app's settings registry and what infra/ and azure.yaml give the web app.

chatbot/config.py SETTINGS names every environment variable the app reads. The web app must
get every Scope.AZURE one, may get a few optional ones, and otherwise only the App Service
platform settings listed here; a variable added or renamed on one side fails this test.
"""

from __future__ import annotations

import yaml

from chatbot.config import SETTINGS, Scope
from tests.bicep_tree import (
    REPO,
    app_settings,
    call_arguments,
    call_name,
    caller_value,
    default_of,
    is_output_of,
    main_file,
    site_config,
    text,
    the_resource,
    web_site,
)

AZURE_NAMES = {setting.name for setting in SETTINGS if setting.scope == Scope.AZURE}
# Optional settings the deployment sets on purpose (from azd environment values).
OPTIONAL_GIVEN = {
    "ADMIN_USERS",
    "STREAMLIT_SERVER_TRUSTED_USER_HEADERS",
    "ALLOW_DEMO_WITH_REMOTE_REDIS",
}
# App Service itself reads these; the app does not.
PLATFORM = {
    "SCM_DO_BUILD_DURING_DEPLOYMENT",  # run Oryx (pip install -r requirements.txt) on deploy
    "ENABLE_ORYX_BUILD",
    "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID",  # Easy Auth's client assertion, no secret
}
# Secrets or local-only switches the deployed app must never receive.
NEVER_GIVEN = {"REDIS_URL", "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"}
BY_NAME = {setting.name: setting for setting in SETTINGS}


def test_the_lists_here_agree_with_the_registry() -> None:
    assert AZURE_NAMES, "SETTINGS has no Scope.AZURE entries"
    assert OPTIONAL_GIVEN <= set(BY_NAME), "optional settings must exist in SETTINGS"
    assert not OPTIONAL_GIVEN & AZURE_NAMES
    assert not PLATFORM & set(BY_NAME), "a platform setting shadows an app setting"
    assert NEVER_GIVEN <= set(BY_NAME)


def test_web_app_settings_are_exactly_the_registered_ones() -> None:
    given = set(app_settings())
    assert AZURE_NAMES - given == set(), "Scope.AZURE settings the web app does not get"
    assert given - (AZURE_NAMES | OPTIONAL_GIVEN | PLATFORM) == set(), "unregistered settings"
    assert given == AZURE_NAMES | OPTIONAL_GIVEN | PLATFORM
    assert given & NEVER_GIVEN == set()


def test_settings_values_match_the_registry_and_the_resources() -> None:
    settings = app_settings()
    bicep, _ = web_site()
    assert all(len(values) == 1 for values in settings.values()), "a setting is set twice"

    def is_from(name: str, resource_type: str, output: str) -> bool:
        _, value = caller_value(bicep, settings[name][0])
        return is_output_of(value, resource_type, output)

    # AUTH_MODE takes only values the app knows, and easyauth only together with Easy Auth.
    (auth_mode,) = settings["AUTH_MODE"]
    modes = bicep.possible_values(auth_mode)
    assert set(modes) == {"easyauth", "demo"}
    assert set(modes) <= {mode.strip() for mode in BY_NAME["AUTH_MODE"].help.split("|")}
    _, auth = site_config("authsettingsV2")
    condition = bicep.resolve(auth_mode).child_by_field_name("condition")
    assert auth.condition is not None and condition is not None
    assert text(condition) == text(auth.condition), "AUTH_MODE and Easy Auth switch together"
    # The managed identity's client id, so the app picks ManagedIdentityCredential.
    assert is_from(
        "AZURE_CLIENT_ID", "Microsoft.ManagedIdentity/userAssignedIdentities", "clientId"
    )
    assert is_from("REDIS_HOST", "Microsoft.Cache/redisEnterprise", "hostName")
    (port,) = settings["REDIS_PORT"]  # string(<int>): app settings are strings
    assert call_name(port) == "string"
    _, port_source = caller_value(bicep, call_arguments(port)[0])
    assert is_output_of(port_source, "Microsoft.Cache/redisEnterprise", "port")
    assert is_from("AZURE_OPENAI_ENDPOINT", "Microsoft.CognitiveServices/accounts", "endpoint")
    assert is_from(
        "AZURE_OPENAI_DEPLOYMENT", "Microsoft.CognitiveServices/accounts", "deploymentName"
    )
    # Registry defaults agree with the infrastructure defaults.
    redis_file, database = the_resource("Microsoft.Cache/redisEnterprise/databases")
    assert str(redis_file.value(database.get("properties.port"))) == BY_NAME["REDIS_PORT"].default
    main = main_file()
    assert main.value(main.params["openAiDeploymentName"].default) == (
        BY_NAME["AZURE_OPENAI_DEPLOYMENT"].default
    )
    assert main.value(main.params["openAiModelName"].default) == (
        BY_NAME["AZURE_OPENAI_MODEL"].default
    )
    assert default_of(bicep, settings["ADMIN_USERS"][0]) == BY_NAME["ADMIN_USERS"].default


def test_local_development_gets_every_azure_setting_but_the_client_id() -> None:
    """`azd env get-values > .env` hands main.bicep's outputs to a local run."""
    outputs = set(main_file().outputs)
    local = AZURE_NAMES - {"AZURE_CLIENT_ID", "AUTH_MODE", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert local - outputs == set()
    assert "AZURE_CLIENT_ID" not in outputs
    assert outputs & NEVER_GIVEN == set()


def test_azure_yaml_deploys_the_repo_root_as_the_web_service() -> None:
    config = yaml.safe_load((REPO / "azure.yaml").read_text())
    assert isinstance(config.get("name"), str) and config["name"]
    services = config["services"]
    assert list(services) == ["web"]
    web = services["web"]
    assert web["language"] == "python"
    assert web["host"] == "appservice"
    assert (REPO / web["project"]).resolve() == REPO
    infra = config.get("infra", {})
    assert infra.get("path", "infra") == "infra" and infra.get("module", "main") == "main"
    # azd finds the web app by its azd-service-name tag, which must name this service.
    bicep, site = web_site()
    tags_node = site.get("tags")
    assert tags_node is not None
    tags = bicep.object_keys(tags_node, skip_params=True)
    assert [bicep.value(v) for v in tags["azd-service-name"]] == list(services)
