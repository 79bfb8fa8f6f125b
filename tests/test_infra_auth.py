"""`azd up` deploys a private app: Microsoft Entra sign-in (Easy Auth) in front of it, with an
app registration declared in bicep (Microsoft Graph Bicep extension) whose only credential is
the web app's managed identity. A public demo exists only when PUBLIC_DEMO asks for one.

Read through the real tree-sitter Bicep grammar with the few helpers below (no bicep CLI or
Azure here)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from tree_sitter import Node

from tests.bicep_tree import parse as parse_bicep
from tests.bicep_tree import walk

INFRA = Path(__file__).resolve().parent.parent / "infra"
GRAPH_TYPES = "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:"


@cache
def parse(name: str) -> tuple[Node, tuple[str, ...]]:
    root, extensions = parse_bicep(INFRA / name)
    assert not root.has_error, name
    return root, extensions


def src(node: Node | None) -> str:
    assert node is not None
    return (node.text or b"").decode()


def declared(name: str, kind: str) -> dict[str, Node]:
    """`param`, `var`, `resource`, `module` or `output` declarations of a file by name
    (resources nested in others included)."""
    root, _ = parse(name)
    return {
        src(node.named_children[0]): node
        for node in walk(root)
        if node.type == f"{kind}_declaration"
    }


def body(declaration: Node) -> Node:
    """The object a resource or module declares, through `if (...)` and `[for ...]`."""
    for node in walk(declaration):
        if node.type == "object":
            return node
    raise LookupError(src(declaration)[:60])


def condition(declaration: Node) -> str | None:
    for child in declaration.named_children:
        if child.type == "if_statement":
            return src(child.named_children[0]).strip("()")
    return None


def prop(obj: Node, path: str) -> Node | None:
    node: Node | None = obj
    for key in path.split("."):
        if node is None or node.type != "object":
            return None
        node = next(
            (
                p.named_children[-1]
                for p in node.named_children
                if p.type == "object_property" and src(p.named_children[0]).strip("'") == key
            ),
            None,
        )
    return node


def resource(name: str, type_prefix: str) -> Node:
    (found,) = [
        node
        for node in declared(name, "resource").values()
        if src(node.named_children[1]).strip("'").startswith(type_prefix + "@")
    ]
    return found


def module(symbol: str) -> Node:
    return declared("main.bicep", "module")[symbol]


def default(name: str, param: str) -> str:
    declaration = declared(name, "parameter")[param]
    return src(declaration.named_children[-1])


# --- private by default ------------------------------------------------------------------


def test_private_unless_public_demo_is_asked_for() -> None:
    assert default("main.bicep", "publicDemo") == "false"
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["publicDemo"]["value"] == "${PUBLIC_DEMO=false}"
    variables = declared("main.bicep", "variable")
    assert src(variables["easyAuthEnabled"].named_children[-1]) == "!publicDemo"
    # One switch turns on the app registration, Easy Auth and AUTH_MODE=easyauth together.
    assert condition(module("signIn")) == "easyAuthEnabled"
    assert src(prop(body(module("web")), "params.enableEasyAuth")) == "easyAuthEnabled"
    assert default("modules/web.bicep", "enableEasyAuth") == "true"
    site_auth = declared("modules/web.bicep", "resource")["authSettings"]
    assert condition(site_auth) == "enableEasyAuth"
    settings = body(declared("modules/web.bicep", "variable")["appSettings"])
    assert src(prop(settings, "AUTH_MODE")) == "enableEasyAuth ? 'easyauth' : 'demo'"
    outputs = declared("main.bicep", "output")
    assert src(outputs["WEB_AUTH_MODE"].named_children[-1]) == (
        "easyAuthEnabled ? 'easyauth' : 'demo'"
    )


def test_only_the_public_demo_may_run_demo_mode_on_the_deployed_redis() -> None:
    union = declared("modules/web.bicep", "variable")["appSettings"].named_children[-1]
    ternary = union.named_children[-1].named_children[-1]
    assert ternary.type == "ternary_expression", src(ternary)
    switch, when_private, when_public = ternary.named_children
    assert src(switch) == "enableEasyAuth"
    assert prop(when_private, "ALLOW_DEMO_WITH_REMOTE_REDIS") is None
    assert src(prop(when_public, "ALLOW_DEMO_WITH_REMOTE_REDIS")) == "'true'"
    assert src(prop(when_private, "STREAMLIT_SERVER_TRUSTED_USER_HEADERS")).startswith("'{")


def test_the_public_demo_keeps_its_data_apart_from_signed_in_users() -> None:
    """PUBLIC_DEMO gets a namespace of its own (memory/namespaces.py); the private app keeps
    the default `chat`, so switching back and forth never mixes the two."""
    union = declared("modules/web.bicep", "variable")["appSettings"].named_children[-1]
    _, when_private, when_public = union.named_children[-1].named_children[-1].named_children
    assert prop(when_private, "CHAT_INDEX_NAME") is None  # the default, `chat`
    assert src(prop(when_public, "CHAT_INDEX_NAME")) == "'chat-demo'"


def test_easy_auth_requires_sign_in_for_every_request() -> None:
    auth = body(declared("modules/web.bicep", "resource")["authSettings"])
    assert src(prop(auth, "properties.platform.enabled")) == "true"
    assert src(prop(auth, "properties.globalValidation.requireAuthentication")) == "true"
    action = prop(auth, "properties.globalValidation.unauthenticatedClientAction")
    assert src(action) == "'RedirectToLoginPage'"
    registration = "properties.identityProviders.azureActiveDirectory.registration"
    assert src(prop(auth, f"{registration}.clientId")) == "authClientId"
    assert src(prop(auth, f"{registration}.clientSecretSettingName")) == (
        "'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'"
    )
    # ...and the client id is the registration's that main.bicep declares.
    passed = src(prop(body(module("web")), "params.authClientId"))
    assert passed == "easyAuthEnabled ? signIn!.outputs.clientId : ''"


# --- the app registration ----------------------------------------------------------------


def test_the_app_registration_is_declared_with_the_graph_extension() -> None:
    _, extensions = parse("modules/signin.bicep")
    assert extensions == ("microsoftGraphV1",)
    config = json.loads((INFRA / "bicepconfig.json").read_text())
    assert config["extensions"]["microsoftGraphV1"].startswith(GRAPH_TYPES)
    app = body(resource("modules/signin.bicep", "Microsoft.Graph/applications"))
    assert src(prop(app, "signInAudience")) == "'AzureADMyOrg'"
    (redirect,) = prop(app, "web.redirectUris").named_children  # type: ignore[union-attr]
    assert src(redirect) == "'https://${webHostName}/.auth/login/aad/callback'"
    # The host is the web app's: both come from main.bicep's webAppName.
    assert src(prop(body(module("signIn")), "params.webHostName")) == (
        "'${webAppName}.azurewebsites.net'"
    )
    assert src(prop(body(module("web")), "params.appName")) == "webAppName"


def test_its_only_credential_is_the_web_apps_managed_identity() -> None:
    credential = body(resource("modules/signin.bicep", "federatedIdentityCredentials"))
    assert src(prop(credential, "audiences")).replace("\n", "").replace(" ", "") == (
        "['api://AzureADTokenExchange']"
    )
    assert src(prop(credential, "issuer")) == (
        "'${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'"
    )
    assert src(prop(credential, "subject")) == "identityPrincipalId"
    assert src(prop(body(module("signIn")), "params.identityPrincipalId")) == (
        "identity.outputs.principalId"
    )
    app = body(resource("modules/signin.bicep", "Microsoft.Graph/applications"))
    for secret in ("passwordCredentials", "keyCredentials"):
        assert prop(app, secret) is None


def test_an_allow_list_makes_entra_refuse_everyone_else_but_the_deployer() -> None:
    variables = declared("modules/signin.bicep", "variable")
    assert src(variables["restricted"].named_children[-1]) == "!empty(allowedPrincipalIds)"
    principal = body(resource("modules/signin.bicep", "Microsoft.Graph/servicePrincipals"))
    assert src(prop(principal, "appRoleAssignmentRequired")) == "restricted"
    assignments = resource("modules/signin.bicep", "Microsoft.Graph/appRoleAssignedTo")
    assert "for principal in allowed" in src(assignments)
    assert "deployingPrincipalId" in src(variables["allowed"])
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["authAllowedPrincipals"]["value"] == "${AUTH_ALLOWED_PRINCIPALS}"
    assert default("main.bicep", "authAllowedPrincipals") == "''"
