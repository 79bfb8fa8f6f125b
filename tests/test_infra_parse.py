"""The Bicep templates under infra/, read through the real tree-sitter Bicep grammar.

Azure is out of reach here, so these tests pin what `azd up` depends on and what a review
would otherwise have to remember: keyless access everywhere, the Redis database shape the app
needs (modules, clustering, persistence), who gets data access, the web app settings Streamlit
needs, and the outputs azd hands to local development.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tree_sitter import Node

from tests.bicep_tree import (
    INFRA,
    MAIN,
    UPPER_SNAKE,
    BicepFile,
    Resource,
    all_files,
    app_settings,
    bicep_paths,
    call_arguments,
    call_name,
    caller_value,
    default_of,
    find_resources,
    interpolations,
    is_not_empty_check,
    is_output_of,
    load,
    main_file,
    member_chain,
    module_call,
    named_children,
    object_items,
    string_value,
    text,
    the_resource,
    unwrap,
    walk,
    web_site,
)

OPENAI_USER_ROLE = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"
MIN_REDIS_API = "2025-07-01"  # accessKeysAuthentication, accessPolicyAssignments, required PNA
REQUIRED_OUTPUTS = {
    "AZURE_LOCATION",
    "AZURE_TENANT_ID",
    "AZURE_RESOURCE_GROUP",
    "REDIS_HOST",
    "REDIS_PORT",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_DEPLOYMENT",
    "AZURE_OPENAI_MODEL",
    "SERVICE_WEB_NAME",
    "SERVICE_WEB_URI",
}
AMR_SKU_FAMILIES = ("Balanced_", "MemoryOptimized_", "ComputeOptimized_")


def _is_app_identity_principal(bicep: BicepFile, node: Node) -> bool:
    """Whether a value is, through main.bicep, the principal id of the app's identity."""
    source, value = caller_value(bicep, node)
    return source.path == MAIN and is_output_of(value, IDENTITY, "principalId")


def _is_deploying_principal(bicep: BicepFile, node: Node) -> bool:
    """Whether a value is, through main.bicep, its `principalId` (AZURE_PRINCIPAL_ID)."""
    source, value = caller_value(bicep, node)
    return source.path == MAIN and source.is_param(value, "principalId")


def _parent(bicep: BicepFile, resource: Resource) -> Resource | None:
    parent = resource.get("parent")
    return bicep.resource(text(unwrap(parent))) if parent is not None else None


def _scope_symbol(resource: Resource) -> str | None:
    scope = resource.get("scope")
    return text(unwrap(scope)) if scope is not None else None


def _role_id(bicep: BicepFile, node: Node | None) -> str | None:
    """The role definition GUID of `subscriptionResourceId('...roleDefinitions', id)`."""
    if node is None:
        return None
    node = bicep.resolve(node)
    if call_name(node) == "subscriptionResourceId":
        value = bicep.value(call_arguments(node)[-1])
        return value if isinstance(value, str) else None
    value = string_value(node)
    return value.rsplit("/", 1)[-1] if value else None


def _loop_values(bicep: BicepFile, node: Node | None, key: str) -> list[object]:
    """The `key` of each element of an array property, literal or `[for x in list: {...}]`."""
    assert node is not None
    node = unwrap(node)
    if node.type == "for_statement":
        variable = text(named_children(node)[0])
        body = node.child_by_field_name("body")
        item = dict(bicep.object_keys(body)) if body is not None else {}
        assert [text(v) for v in item.get(key, [])] == [variable], "loop body must map the item"
        values = bicep.value(named_children(node)[1])
        assert isinstance(values, list)
        return values
    values = bicep.value(node)
    assert isinstance(values, list)
    return [item[key] for item in values if isinstance(item, dict)]


# ----------------------------------------------------------------------------- syntax


def test_infra_has_a_main_template_and_modules() -> None:
    paths = bicep_paths()
    assert MAIN in paths
    assert len(paths) > 1, "resources belong in modules under infra/"
    deployed = {MAIN} | {
        (bicep.path.parent / module.path).resolve()
        for bicep in all_files()
        for module in bicep.modules
    }
    assert set(paths) - deployed == set(), "templates no deployment uses"


@pytest.mark.parametrize("path", bicep_paths(), ids=lambda p: str(p.relative_to(INFRA)))
def test_template_parses_without_errors(path: Path) -> None:
    bicep = load(path)
    assert bicep.syntax_errors() == []
    assert bicep.resources or bicep.modules, "a template that declares nothing"


def test_every_module_path_exists() -> None:
    for bicep in all_files():
        for module in bicep.modules:
            assert (bicep.path.parent / module.path).is_file(), f"{bicep.name}: {module.path}"


# ----------------------------------------------------------------------------- main.bicep


def test_main_targets_the_subscription_and_creates_the_resource_group() -> None:
    main = main_file()
    assert main.target_scope == "subscription"
    groups = main.resources_of_type("Microsoft.Resources/resourceGroups")
    assert len(groups) == 1
    group = groups[0]
    name = group.get("name")
    assert name is not None
    assert text(name) == "'rg-${environmentName}'"
    group_tags = group.get("tags")
    assert group_tags is not None
    tags = main.object_keys(group_tags)
    assert "azd-env-name" in tags
    assert all(main.is_param(value, "environmentName") for value in tags["azd-env-name"])
    for module in main.modules:
        scope = dict(object_items(module.body)).get("scope")
        assert scope is not None and text(scope) == group.symbol, f"{module.symbol} not in the rg"


def test_outputs_are_upper_snake_and_complete_but_never_the_client_id() -> None:
    outputs = main_file().outputs
    assert [name for name in outputs if not UPPER_SNAKE.match(name)] == []
    assert REQUIRED_OUTPUTS - set(outputs) == set()
    # AZURE_CLIENT_ID switches the app to ManagedIdentityCredential: web app only.
    assert "AZURE_CLIENT_ID" not in outputs
    for output in outputs.values():
        chains = [member_chain(node) for node in walk(output.value)]
        assert not any(chain and chain[-1] == "clientId" for chain in chains), output.name


def test_output_values_come_from_the_right_resources() -> None:
    main = main_file()
    outputs = main.outputs
    assert main.is_param(outputs["AZURE_LOCATION"].value, "location")
    assert text(outputs["AZURE_TENANT_ID"].value) == "tenant().tenantId"
    assert is_output_of(outputs["REDIS_HOST"].value, "Microsoft.Cache/redisEnterprise", "hostName")
    assert is_output_of(outputs["REDIS_PORT"].value, "Microsoft.Cache/redisEnterprise", "port")
    account = "Microsoft.CognitiveServices/accounts"
    assert is_output_of(outputs["AZURE_OPENAI_ENDPOINT"].value, account, "endpoint")
    assert is_output_of(outputs["SERVICE_WEB_URI"].value, "Microsoft.Web/sites", "uri")
    assert is_output_of(outputs["SERVICE_WEB_NAME"].value, "Microsoft.Web/sites", "name")


def test_parameters_file_substitutes_the_azd_environment() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    values = {name: entry["value"] for name, entry in parameters.items()}
    assert values["environmentName"] == "${AZURE_ENV_NAME}"
    assert values["location"] == "${AZURE_LOCATION}"
    assert values["principalId"] == "${AZURE_PRINCIPAL_ID}"
    declared = main_file().params
    assert set(values) - set(declared) == set(), "parameters main.bicep does not declare"
    required = {name for name, param in declared.items() if param.default is None}
    assert required - set(values) == set(), "parameters azd would have to prompt for"
    for name, value in values.items():
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}", str(value)), name


# ----------------------------------------------------------------------------- Redis


def test_redis_cluster_is_azure_managed_redis() -> None:
    bicep, cluster = the_resource("Microsoft.Cache/redisEnterprise")
    assert cluster.api_version[:10] >= MIN_REDIS_API
    assert bicep.value(cluster.get("properties.minimumTlsVersion")) == "1.2"
    # Required from 2025-07-01 on: preflight fails without it.
    assert bicep.value(cluster.get("properties.publicNetworkAccess")) in ("Enabled", "Disabled")
    sku = cluster.get("sku.name")
    assert sku is not None
    default_sku = default_of(bicep, sku)
    assert isinstance(default_sku, str) and default_sku.startswith(AMR_SKU_FAMILIES), (
        "Entra-only access (accessKeysAuthentication, access policies) needs an AMR SKU"
    )


def test_redis_database_has_search_json_persistence_and_no_keys() -> None:
    bicep, database = the_resource("Microsoft.Cache/redisEnterprise/databases")
    assert database.api_version[:10] >= MIN_REDIS_API
    assert bicep.value(database.get("name")) == "default"
    parent = _parent(bicep, database)
    assert parent is not None and parent.type == "Microsoft.Cache/redisEnterprise"

    def prop(name: str) -> object:
        return bicep.value(database.get(f"properties.{name}"))

    modules = prop("modules")
    assert isinstance(modules, list)
    assert {"RediSearch", "RedisJSON"} <= {module["name"] for module in modules}
    assert prop("clusteringPolicy") == "EnterpriseCluster"
    assert prop("evictionPolicy") == "NoEviction"
    assert prop("accessKeysAuthentication") == "Disabled"
    assert prop("clientProtocol") == "Encrypted"
    assert prop("port") == 10000
    persistence = prop("persistence")
    assert isinstance(persistence, dict)
    assert persistence.get("aofEnabled") is True
    assert persistence.get("aofFrequency") in ("1s", "always")
    assert persistence.get("rdbEnabled") in (None, False), "AOF and RDB are exclusive"


def test_redis_access_policies_for_the_app_identity_and_the_deploying_user() -> None:
    assignments = find_resources(
        "Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments"
    )
    app, user = [], []
    for bicep, assignment in assignments:
        assert assignment.api_version[:10] >= MIN_REDIS_API
        parent = _parent(bicep, assignment)
        assert parent is not None and parent.type == "Microsoft.Cache/redisEnterprise/databases"
        assert bicep.value(assignment.get("properties.accessPolicyName")) == "default"
        object_id = assignment.get("properties.user.objectId")
        assert object_id is not None
        # Names allow ^[A-Za-z0-9]{1,60}$: an object id must lose its hyphens.
        name = assignment.get("name")
        assert name is not None
        if string_value(name) is not None:
            assert re.fullmatch(r"[A-Za-z0-9]{1,60}", string_value(name) or "")
        else:
            assert call_name(name) == "replace"
            arguments = call_arguments(name)
            assert text(arguments[0]) == text(object_id)
            assert [bicep.value(a) for a in arguments[1:]] == ["-", ""]
        if _is_app_identity_principal(bicep, object_id):
            assert assignment.condition is None, "the app must always get access"
            app.append(assignment)
        elif _is_deploying_principal(bicep, object_id):
            assert is_not_empty_check(assignment.condition, text(object_id))
            user.append(assignment)
    assert len(app) == 1, "one access policy assignment for the app identity"
    assert len(user) == 1, "one access policy assignment for the deploying user, if any"


# ----------------------------------------------------------------------------- Azure OpenAI


def test_openai_account_is_keyless_with_a_parameterised_deployment() -> None:
    bicep, account = the_resource("Microsoft.CognitiveServices/accounts")
    assert bicep.value(account.get("kind")) == "OpenAI"
    assert bicep.value(account.get("properties.disableLocalAuth")) is True
    assert account.get("properties.customSubDomainName") is not None
    deployments = bicep.resources_of_type("Microsoft.CognitiveServices/accounts/deployments")
    assert len(deployments) == 1
    deployment = deployments[0]
    for path in ("properties.model.name", "properties.model.version", "sku.capacity"):
        value = deployment.get(path)
        assert value is not None and bicep.is_param(value), f"{path} should be a parameter"
    model = deployment.get("properties.model.name")
    assert model is not None and default_of(bicep, model) == "gpt-4o"


def test_openai_user_role_for_the_app_identity_and_the_deploying_user() -> None:
    bicep, account = the_resource("Microsoft.CognitiveServices/accounts")
    roles = [
        (file, role)
        for file, role in find_resources("Microsoft.Authorization/roleAssignments")
        if _role_id(file, role.get("properties.roleDefinitionId")) == OPENAI_USER_ROLE
    ]
    app, user = [], []
    for file, role in roles:
        assert file.path == bicep.path and _scope_symbol(role) == account.symbol
        principal = role.get("properties.principalId")
        principal_type = role.get("properties.principalType")
        assert principal is not None and principal_type is not None
        if _is_app_identity_principal(file, principal):
            assert role.condition is None
            assert file.value(principal_type) == "ServicePrincipal"
            app.append(role)
        elif _is_deploying_principal(file, principal):
            assert is_not_empty_check(role.condition, text(principal))
            assert default_of(file, principal_type) == "User"
            user.append(role)
    assert len(app) == 1, "Cognitive Services OpenAI User for the app identity"
    assert len(user) == 1, "Cognitive Services OpenAI User for the deploying user"


# ----------------------------------------------------------------------------- App Service


def test_web_app_is_configured_for_streamlit() -> None:
    bicep, site = web_site()

    def prop(path: str) -> object:
        return bicep.value(site.get(path))

    assert prop("properties.httpsOnly") is True
    assert prop("properties.clientAffinityEnabled") is True
    assert prop("properties.siteConfig.webSocketsEnabled") is True
    assert prop("properties.siteConfig.linuxFxVersion") == "PYTHON|3.11"
    assert prop("properties.siteConfig.minTlsVersion") == "1.2"
    assert prop("properties.siteConfig.ftpsState") == "Disabled"
    site_config_node = site.get("properties.siteConfig")
    assert site_config_node is not None
    assert "appSettings" not in dict(object_items(unwrap(site_config_node))), (
        "app settings belong in the appsettings config, where the drift test reads them"
    )
    assert prop("identity.type") == "UserAssigned"
    identities = site.get("identity.userAssignedIdentities")
    assert identities is not None
    (key_node,) = [named_children(p)[0] for p in named_children(unwrap(identities))]
    (identity_id,) = interpolations(key_node)
    _, value = caller_value(bicep, identity_id)
    assert is_output_of(value, IDENTITY, "id")
    site_tags = site.get("tags")
    assert site_tags is not None
    tags = bicep.object_keys(site_tags, skip_params=True)
    assert [bicep.value(v) for v in tags.get("azd-service-name", [])] == ["web"]


def test_app_service_plan_is_linux_and_cheap_by_default() -> None:
    bicep, plan = the_resource("Microsoft.Web/serverfarms")
    assert bicep.value(plan.get("properties.reserved")) is True
    assert bicep.value(plan.get("kind")) == "linux"
    sku = plan.get("sku.name")
    assert sku is not None and default_of(bicep, sku) == "B1"
    _, site = web_site()
    server_farm = site.get("properties.serverFarmId")
    assert server_farm is not None and member_chain(server_farm) == [plan.symbol, "id"]


def test_web_app_logs_and_telemetry_go_to_log_analytics() -> None:
    bicep, site = web_site()
    diagnostics = [
        resource
        for resource in bicep.resources_of_type("Microsoft.Insights/diagnosticSettings")
        if _scope_symbol(resource) == site.symbol
    ]
    assert len(diagnostics) == 1
    categories = set(_loop_values(bicep, diagnostics[0].get("properties.logs"), "category"))
    assert {"AppServiceConsoleLogs", "AppServiceHTTPLogs", "AppServiceAppLogs"} <= categories
    workspace = diagnostics[0].get("properties.workspaceId")
    assert workspace is not None
    _, value = caller_value(bicep, workspace)
    insights_file, insights = the_resource("Microsoft.Insights/components")
    assert member_chain(value) == [
        module_call(insights_file).symbol,
        "outputs",
        "logAnalyticsWorkspaceId",
    ]
    assert insights.get("properties.WorkspaceResourceId") is not None
    assert insights_file.value(insights.get("properties.DisableLocalAuth")) is True
    (connection_string,) = app_settings()["APPLICATIONINSIGHTS_CONNECTION_STRING"]
    _, value = caller_value(bicep, connection_string)
    assert member_chain(value) == [
        module_call(insights_file).symbol,
        "outputs",
        "applicationInsightsConnectionString",
    ]


# ----------------------------------------------------------------------------- no secrets


def test_no_template_reads_keys_or_takes_secrets() -> None:
    for bicep in all_files():
        for node in walk(bicep.root):
            if node.type == "call_expression":
                name = (call_name(node) or "").rsplit(".", 1)[-1]
                assert not name.startswith("list"), f"{bicep.name}: {text(node)[:60]}"
        for param in bicep.params.values():
            assert param.decorator("secure") is None, f"{bicep.name}: @secure() {param.name}"
