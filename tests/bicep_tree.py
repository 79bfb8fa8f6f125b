"""infra/*.bicep read through the real tree-sitter Bicep grammar, as plain Python values.

No bicep CLI runs here. Literals become Python values and objects dicts; what Azure computes at
deployment time stays as its source text (`Expr`), a call (`Call`) or a ternary (`Choice`), so
the infra tests can follow a value from one file to the next.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

REPO = Path(__file__).resolve().parent.parent
MAIN = REPO / "infra" / "main.bicep"
PARSER = Parser(Language(tree_sitter_bicep.language()))
REQUIRED = object()  # the default of a parameter without one


@dataclass(frozen=True)
class Expr:
    """An expression computed at deployment time, as written (`redis.outputs.hostName`)."""

    text: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[object, ...]


@dataclass(frozen=True)
class Choice:
    """`condition ? then : otherwise`."""

    condition: str
    then: object
    otherwise: object


@dataclass(frozen=True)
class Resource:
    type: str  # without the API version
    body: dict[str, object]
    condition: str | None  # of `= if (...)`


def _text(node: Node) -> str:
    return (node.text or b"").decode()


def _children(node: Node) -> list[Node]:
    return [child for child in node.named_children if child.type != "comment"]


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def value(node: Node) -> object:
    """The Python form of an expression (see the module docstring)."""
    kind, parts = node.type, _children(node)
    if kind == "parenthesized_expression":
        return value(parts[0])
    if kind == "string" and all(p.type == "string_content" for p in parts):
        return "".join(_text(p) for p in parts)  # with escapes or `${}` it stays an Expr
    if kind == "number":
        return int(_text(node))
    if kind in ("boolean", "null"):
        return {"true": True, "false": False, "null": None}[_text(node)]
    if kind == "array":
        return [value(item) for item in parts]
    if kind == "object":
        # Members that are not `key: value` (a nested child resource, which this grammar reads
        # as a member of its parent's body) are not values: left out.
        pairs = [kids for kids in (_children(prop) for prop in parts) if len(kids) == 2]
        return {str(value(k)) if k.type == "string" else _text(k): value(v) for k, v in pairs}
    if kind == "ternary_expression":
        fields = [node.child_by_field_name(f) for f in ("condition", "consequence", "alternative")]
        condition, then, otherwise = (f for f in fields if f is not None)
        return Choice(_text(condition), value(then), value(otherwise))
    if kind == "call_expression" and (arguments := node.child_by_field_name("arguments")):
        return Call(_text(parts[0]), tuple(value(a) for a in _children(arguments)))
    return Expr(_text(node))


def merged(object_value: object) -> dict[str, object]:
    """Every key an object expression may have: the objects of a `union()` (arguments that are
    parameters, such as `tags`, give none) and of both branches of a ternary."""
    if isinstance(object_value, dict):
        return object_value
    if isinstance(object_value, Choice):
        return merged(object_value.then) | merged(object_value.otherwise)
    if isinstance(object_value, Call) and object_value.name == "union":
        keys: dict[str, object] = {}
        for arg in object_value.args:
            keys |= merged(arg) if not isinstance(arg, Expr) else {}
        return keys
    raise TypeError(f"not an object expression: {object_value}")


def at(object_value: object, path: str) -> object:
    """The value at a dotted key path, through nested object expressions."""
    for key in path.split("."):
        object_value = merged(object_value)[key]
    return object_value


@dataclass
class Template:
    path: Path
    root: Node
    params: dict[str, object] = field(default_factory=dict)  # name -> default or REQUIRED
    decorated: dict[str, str] = field(default_factory=dict)  # parameter -> its decorators
    variables: dict[str, object] = field(default_factory=dict)
    outputs: dict[str, object] = field(default_factory=dict)
    modules: dict[str, tuple[str, dict[str, object]]] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)

    def resolve(self, expression: object) -> object:
        """Follow references to this file's variables."""
        while isinstance(expression, Expr) and expression.text in self.variables:
            expression = self.variables[expression.text]
        return expression

    def module(self, symbol: str) -> Template:
        return load((self.path.parent / self.modules[symbol][0]).resolve())


# tree-sitter-bicep 1.1 predates the `extension` statement: those lines are read apart and
# blanked for the parser (positions stay the same).
EXTENSION = re.compile(rb"^extension[ \t]+(\w+)[ \t]*$", re.M)


def parse(path: Path) -> tuple[Node, tuple[str, ...]]:
    """The syntax tree of a bicep file and the extensions it declares."""
    source = path.read_bytes()
    extensions = tuple(m.group(1).decode() for m in EXTENSION.finditer(source))
    blanked = EXTENSION.sub(lambda m: b" " * len(m.group(0)), source)
    return PARSER.parse(blanked).root_node, extensions


@functools.cache
def load(path: Path) -> Template:
    root = parse(path)[0]
    template, decorators = Template(path, root), ""
    for node in _children(root):
        parts, kind = _children(node), node.type
        name = _text(parts[0]) if parts else ""
        if kind == "parameter_declaration":
            template.params[name] = value(parts[2]) if len(parts) > 2 else REQUIRED
            template.decorated[name] = decorators
        elif kind == "variable_declaration":
            template.variables[name] = value(parts[-1])
        elif kind == "output_declaration":
            template.outputs[name] = value(parts[-1])
        elif kind in ("module_declaration", "resource_declaration"):
            body, condition = parts[-1], None
            while body.type in ("if_statement", "for_statement"):
                if body.type == "if_statement":
                    condition = _text(_children(_children(body)[0])[0])
                loop_body = body.child_by_field_name("body")
                body = loop_body if loop_body is not None else _children(body)[-1]
            target, body_value = str(value(parts[1])), merged(value(body))
            if kind == "module_declaration":
                template.modules[name] = (target, merged(body_value.get("params", {})))
            else:
                template.resources[name] = Resource(target.split("@")[0], body_value, condition)
        decorators = _text(node) if kind == "decorators" else ""
    return template
