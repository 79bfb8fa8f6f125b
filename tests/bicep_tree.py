"""Read infra/*.bicep through the real tree-sitter Bicep grammar, for the infra tests.

No bicep CLI runs here, so the tests check the templates through their syntax tree: which
resources exist, what their properties say, and where a value comes from. The helpers resolve
the little indirection the templates use (variables, `union()`, ternaries) and refuse anything
else, so a test never passes on an expression it could not read.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

REPO = Path(__file__).resolve().parent.parent
INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"

LANGUAGE = Language(tree_sitter_bicep.language())

_ESCAPES = {"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\$": "$"}


class NotLiteral(ValueError):
    """The expression is computed at deployment time; it has no value in the source."""


def text(node: Node) -> str:
    return (node.text or b"").decode()


def named_children(node: Node) -> list[Node]:
    """Named children without comments, which the grammar keeps inside objects and arrays."""
    return [child for child in node.named_children if child.type != "comment"]


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def unwrap(node: Node) -> Node:
    while node.type == "parenthesized_expression":
        node = named_children(node)[0]
    return node


# ----------------------------------------------------------------------------- literals


def string_value(node: Node) -> str | None:
    """The value of a string literal without interpolation; None for anything else."""
    node = unwrap(node)
    if node.type != "string":
        return None
    parts: list[str] = []
    for child in named_children(node):
        if child.type == "string_content":
            parts.append(text(child))
        elif child.type == "escape_sequence":
            parts.append(_ESCAPES.get(text(child), text(child)))
        else:  # interpolation
            return None
    return "".join(parts)


def literal(node: Node) -> object:
    """The Python value of a literal expression; NotLiteral if any part is computed."""
    node = unwrap(node)
    if node.type == "string":
        value = string_value(node)
        if value is None:
            raise NotLiteral(text(node))
        return value
    if node.type == "number":
        return int(text(node))
    if node.type == "boolean":
        return text(node) == "true"
    if node.type == "null":
        return None
    if node.type == "array":
        return [literal(item) for item in named_children(node)]
    if node.type == "object":
        return {key: literal(value) for key, value in object_items(node)}
    raise NotLiteral(text(node))


def interpolations(node: Node) -> list[Node]:
    """The expressions inside `${...}` of a string."""
    node = unwrap(node)
    if node.type != "string":
        return []
    return [
        named_children(child)[0] for child in named_children(node) if child.type == "interpolation"
    ]


# ----------------------------------------------------------------------------- objects


def object_items(node: Node) -> list[tuple[str, Node]]:
    """(key, value) of each property of an object literal, keys unquoted."""
    if node.type != "object":
        raise TypeError(f"not an object: {text(node)[:80]}")
    items = []
    for prop in named_children(node):
        if prop.type != "object_property":
            raise NotLiteral(f"unsupported object member {prop.type}: {text(prop)[:80]}")
        key_node, value = named_children(prop)
        key = string_value(key_node) if key_node.type == "string" else text(key_node)
        if key is None:
            raise NotLiteral(f"computed key {text(key_node)}")
        items.append((key, value))
    return items


def get(node: Node | None, path: str) -> Node | None:
    """The value at a dotted key path inside nested object literals, or None."""
    for key in path.split("."):
        if node is None or unwrap(node).type != "object":
            return None
        node = dict(object_items(unwrap(node))).get(key)
    return node


def call_name(node: Node) -> str | None:
    node = unwrap(node)
    if node.type != "call_expression":
        return None
    function = node.child_by_field_name("function")
    return text(function) if function is not None else None


def call_arguments(node: Node) -> list[Node]:
    arguments = unwrap(node).child_by_field_name("arguments")
    return named_children(arguments) if arguments is not None else []


def member_chain(node: Node) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"]; None if the expression is not a plain member chain."""
    node = unwrap(node)
    if node.type == "identifier":
        return [text(node)]
    if node.type == "member_expression":
        base = node.child_by_field_name("object")
        prop = node.child_by_field_name("property")
        if base is None or prop is None:
            return None
        head = member_chain(base)
        return None if head is None else [*head, text(prop)]
    return None


# ----------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Node | None
    decorators: tuple[Node, ...]

    def decorator(self, name: str) -> Node | None:
        for decorator in self.decorators:
            call = named_children(decorator)[0]
            if call_name(call) == name:
                return call
        return None


@dataclass(frozen=True)
class Output:
    name: str
    type: str
    value: Node


@dataclass(frozen=True)
class Resource:
    symbol: str
    type: str
    api_version: str
    body: Node
    condition: Node | None
    loop: bool
    existing: bool

    def get(self, path: str) -> Node | None:
        return get(self.body, path)


@dataclass(frozen=True)
class Module:
    symbol: str
    path: str
    body: Node
    condition: Node | None

    def param(self, name: str) -> Node | None:
        return get(self.body, f"params.{name}")


def _split_body(value: Node) -> tuple[Node, Node | None, bool]:
    """The object of a resource or module, its `if` condition, and whether it is a loop."""
    condition: Node | None = None
    loop = False
    while value.type in ("if_statement", "for_statement"):
        if value.type == "if_statement":
            condition, value = unwrap(named_children(value)[0]), named_children(value)[-1]
        else:
            loop = True
            body = value.child_by_field_name("body")
            if body is None:
                raise NotLiteral(f"loop without a body: {text(value)[:80]}")
            value = body
    return value, condition, loop


_EXTENSION = re.compile(rb"^extension[ \t]+(\w+)[ \t]*$", re.M)


class BicepFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.source = path.read_bytes()
        # tree-sitter-bicep 1.1 predates the `extension` statement: read those lines here and
        # blank them for the parser (positions stay the same).
        self.extensions = [m.group(1).decode() for m in _EXTENSION.finditer(self.source)]
        blanked = _EXTENSION.sub(lambda m: b" " * len(m.group(0)), self.source)
        self.tree = Parser(LANGUAGE).parse(blanked)
        self.root = self.tree.root_node
        self.params: dict[str, Param] = {}
        self.variables: dict[str, Node] = {}
        self.outputs: dict[str, Output] = {}
        self.resources: list[Resource] = []
        self.modules: list[Module] = []
        self.target_scope: str | None = None
        self._read_declarations()

    def __repr__(self) -> str:
        return f"BicepFile({self.path.relative_to(REPO)})"

    @property
    def name(self) -> str:
        return str(self.path.relative_to(REPO))

    def syntax_errors(self) -> list[str]:
        problems = []
        for node in walk(self.root):
            if node.type == "ERROR" or node.is_missing:
                line, column = node.start_point
                kind = f"missing {node.type}" if node.is_missing else "syntax error"
                problems.append(f"{self.name}:{line + 1}:{column + 1}: {kind}: {text(node)[:60]!r}")
        return problems

    def _read_declarations(self) -> None:
        pending: list[Node] = []
        for node in named_children(self.root):
            if node.type == "decorators":
                pending = named_children(node)
                continue
            children = named_children(node)
            if node.type == "target_scope_assignment":
                self.target_scope = string_value(children[-1])
            elif node.type == "parameter_declaration":
                name, type_node = text(children[0]), children[1]
                default = children[2] if len(children) > 2 else None
                self.params[name] = Param(name, text(type_node), default, tuple(pending))
            elif node.type == "variable_declaration":
                self.variables[text(children[0])] = children[-1]
            elif node.type == "output_declaration":
                self.outputs[text(children[0])] = Output(
                    text(children[0]), text(children[1]), children[-1]
                )
            elif node.type == "resource_declaration":
                type_string = string_value(children[1]) or ""
                resource_type, _, api_version = type_string.partition("@")
                body, condition, loop = _split_body(children[-1])
                existing = any(child.type == "existing" for child in node.children)
                self.resources.append(
                    Resource(
                        text(children[0]),
                        resource_type,
                        api_version,
                        body,
                        condition,
                        loop,
                        existing,
                    )
                )
            elif node.type == "module_declaration":
                body, condition, _ = _split_body(children[-1])
                self.modules.append(
                    Module(text(children[0]), string_value(children[1]) or "", body, condition)
                )
            pending = []

    # lookups

    def resources_of_type(self, resource_type: str) -> list[Resource]:
        return [
            resource
            for resource in self.resources
            if resource.type.lower() == resource_type.lower() and not resource.existing
        ]

    def resource(self, symbol: str) -> Resource | None:
        return next((r for r in self.resources if r.symbol == symbol), None)

    def module(self, path_suffix: str) -> Module:
        found = [module for module in self.modules if module.path.endswith(path_suffix)]
        if len(found) != 1:
            raise LookupError(f"{self.name}: {len(found)} modules from *{path_suffix}")
        return found[0]

    def resolve(self, node: Node) -> Node:
        """Follow a reference to a variable of this file, as often as needed."""
        node = unwrap(node)
        seen: set[str] = set()
        while node.type == "identifier" and text(node) in self.variables:
            if text(node) in seen:
                raise NotLiteral(f"variable cycle at {text(node)}")
            seen.add(text(node))
            node = unwrap(self.variables[text(node)])
        return node

    def value(self, node: Node | None) -> object:
        """The literal value of an expression after resolving variables."""
        if node is None:
            raise NotLiteral("absent")
        return literal(self.resolve(node))

    def contributing_objects(self, node: Node, skip_params: bool = False) -> list[Node]:
        """Every object literal that may end up in an object-valued expression.

        Understands variables, `union()` and both branches of a ternary; anything else raises
        NotLiteral so a caller never silently misses a key. With skip_params, a parameter
        (whose keys the template cannot know, such as `tags`) contributes nothing.
        """
        node = self.resolve(node)
        if node.type == "object":
            return [node]
        if skip_params and self.is_param(node):
            return []
        if call_name(node) == "union":
            return [
                obj
                for arg in call_arguments(node)
                for obj in self.contributing_objects(arg, skip_params)
            ]
        if node.type == "ternary_expression":
            return [
                obj
                for field in ("consequence", "alternative")
                for obj in self.contributing_objects(_field(node, field), skip_params)
            ]
        raise NotLiteral(f"{self.name}: cannot list the keys of {text(node)[:80]}")

    def object_keys(self, node: Node, skip_params: bool = False) -> dict[str, list[Node]]:
        """Key -> every value expression given to it, over contributing_objects()."""
        keys: dict[str, list[Node]] = {}
        for obj in self.contributing_objects(node, skip_params):
            for key, value in object_items(obj):
                keys.setdefault(key, []).append(value)
        return keys

    def possible_values(self, node: Node) -> list[object]:
        """Literal values an expression can take: a literal, or each branch of a ternary."""
        node = self.resolve(node)
        if node.type == "ternary_expression":
            return [
                value
                for field in ("consequence", "alternative")
                for value in self.possible_values(_field(node, field))
            ]
        return [literal(node)]

    def is_param(self, node: Node | None, name: str | None = None) -> bool:
        """Whether the expression is exactly a reference to a parameter (of that name)."""
        if node is None:
            return False
        node = unwrap(node)
        return (
            node.type == "identifier"
            and text(node) in self.params
            and (name is None or text(node) == name)
        )


def _field(node: Node, field: str) -> Node:
    child = node.child_by_field_name(field)
    if child is None:
        raise NotLiteral(f"no {field} in {text(node)[:80]}")
    return child


def is_not_empty_check(node: Node | None, param: str) -> bool:
    """Whether a condition is exactly `!empty(param)`."""
    if node is None:
        return False
    node = unwrap(node)
    if node.type != "unary_expression" or text(node.children[0]) != "!":
        return False
    argument = node.child_by_field_name("argument")
    if argument is None or call_name(argument) != "empty":
        return False
    arguments = call_arguments(argument)
    return len(arguments) == 1 and text(unwrap(arguments[0])) == param


# ----------------------------------------------------------------------------- the templates


def bicep_paths() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def load(path: Path) -> BicepFile:
    return BicepFile(path)


def main_file() -> BicepFile:
    return load(MAIN)


def all_files() -> list[BicepFile]:
    return [load(path) for path in bicep_paths()]


def module_file(path_suffix: str) -> BicepFile:
    """The file main.bicep deploys as module `*path_suffix`."""
    module = main_file().module(path_suffix)
    return load((MAIN.parent / module.path).resolve())


def find_resources(resource_type: str) -> list[tuple[BicepFile, Resource]]:
    return [
        (bicep, resource)
        for bicep in all_files()
        for resource in bicep.resources_of_type(resource_type)
    ]


def the_resource(resource_type: str) -> tuple[BicepFile, Resource]:
    found = find_resources(resource_type)
    if len(found) != 1:
        names = [f"{bicep.name}:{resource.symbol}" for bicep, resource in found]
        raise LookupError(f"expected one {resource_type}, found {names}")
    return found[0]


def web_site() -> tuple[BicepFile, Resource]:
    return the_resource("Microsoft.Web/sites")


def site_config(name: str) -> tuple[BicepFile, Resource]:
    """The `Microsoft.Web/sites/config` resource with that name (appsettings, authsettingsV2)."""
    found = [
        (bicep, resource)
        for bicep, resource in find_resources("Microsoft.Web/sites/config")
        if resource.get("name") is not None and bicep.value(resource.get("name")) == name
    ]
    if len(found) != 1:
        raise LookupError(f"expected one sites/config named {name}, found {len(found)}")
    return found[0]


def app_settings() -> dict[str, list[Node]]:
    """App setting name -> the expressions that may set it, as the web app receives them."""
    bicep, resource = site_config("appsettings")
    properties = resource.get("properties")
    if properties is None:
        raise LookupError("the appsettings config has no properties")
    return bicep.object_keys(properties)


def startup_command() -> str:
    """The web app's appCommandLine, which must be a literal (possibly via a variable)."""
    bicep, site = web_site()
    value = bicep.value(site.get("properties.siteConfig.appCommandLine"))
    if not isinstance(value, str):
        raise NotLiteral("appCommandLine is not a string")
    return value


UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")


# ----------------------------------------------------------------------------- across modules


def module_call(bicep: BicepFile) -> Module:
    """The `module` declaration in main.bicep that deploys this file."""
    found = [
        module
        for module in main_file().modules
        if (MAIN.parent / module.path).resolve() == bicep.path.resolve()
    ]
    if len(found) != 1:
        raise LookupError(f"main.bicep deploys {bicep.name} {len(found)} times")
    return found[0]


def module_declaring(resource_type: str) -> Module:
    """The module of main.bicep whose file declares the (one) resource of that type."""
    bicep, _ = the_resource(resource_type)
    return module_call(bicep)


def caller_value(bicep: BicepFile, node: Node) -> tuple[BicepFile, Node]:
    """Where a value comes from: for a module parameter, what main.bicep passes (or its default).

    Variables are resolved on both sides; main.bicep's own parameters stay parameters.
    """
    node = bicep.resolve(node)
    if bicep.path == MAIN or not bicep.is_param(node):
        return bicep, node
    name = text(node)
    passed = module_call(bicep).param(name)
    if passed is not None:
        main = main_file()
        return main, main.resolve(passed)
    default = bicep.params[name].default
    if default is None:
        raise LookupError(f"{bicep.name}: {name} is neither passed nor defaulted")
    return bicep, bicep.resolve(default)


def is_output_of(node: Node, resource_type: str, output: str) -> bool:
    """Whether a main.bicep expression is `<module>.outputs.<output>` of the module declaring
    the resource of that type."""
    return member_chain(node) == [module_declaring(resource_type).symbol, "outputs", output]


def default_of(bicep: BicepFile, node: Node) -> object:
    """The literal a value has when nobody sets anything: traced through main.bicep to the
    default of its parameter."""
    source, value = caller_value(bicep, node)
    if source.is_param(value):
        default = source.params[text(unwrap(value))].default
        if default is None:
            raise NotLiteral(f"{source.name}: {text(value)} has no default")
        return source.value(default)
    return source.value(value)
