"""Audit and request logs of Azure OpenAI and Azure Managed Redis reach the deployment's Log
Analytics workspace, as the Azure-Samples deployments set them up: a diagnostic setting on
each, scoped to the resource itself, whose workspace is the one main.bicep creates."""

from __future__ import annotations

import pytest

from tests.bicep_tree import MAIN, Expr, Resource, Template, load

main = load(MAIN)
WORKSPACE = "monitoring.outputs.logAnalyticsWorkspaceId"


def diagnostic_setting(template: Template, scope: str) -> Resource:
    (found,) = [
        resource
        for resource in template.resources.values()
        if resource.type == "Microsoft.Insights/diagnosticSettings"
        and resource.body.get("scope") == Expr(scope)
    ]
    return found


def categories(template: Template, setting: Resource, kind: str) -> set[str]:
    """Category names in `logs` or `metrics`, written out or as a `for` over a variable."""
    listed = setting.body["properties"]
    assert isinstance(listed, dict)
    entries = listed.get(kind, [])
    if isinstance(entries, list):
        return {str(entry["category"]) for entry in entries if isinstance(entry, dict)}
    source = str(entries)  # `[for category in <variable>: {...}]`
    variable = source.split(" in ", 1)[1].split(":", 1)[0].strip()
    return set(template.variables[variable])  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("module", "scope", "required"),
    [
        ("openAi", "account", {"Audit", "RequestResponse", "AzureOpenAIRequestUsage"}),
        ("redis", "database", {"ConnectionEvents"}),
    ],
)
def test_audit_logs_of_the_model_and_of_redis_go_to_the_workspace(
    module: str, scope: str, required: set[str]
) -> None:
    template = main.module(module)
    setting = diagnostic_setting(template, scope)
    properties = setting.body["properties"]
    assert isinstance(properties, dict)
    workspace = properties["workspaceId"]
    assert isinstance(workspace, Expr) and workspace.text in template.params
    assert main.modules[module][1][workspace.text] == Expr(WORKSPACE)
    assert required <= categories(template, setting, "logs")


def test_the_workspace_is_the_one_the_app_logs_to() -> None:
    web = main.modules["web"][1]
    assert web["logAnalyticsWorkspaceId"] == Expr(WORKSPACE)
