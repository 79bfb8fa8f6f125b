"""Export a user's conversations (JSON, Markdown) and import them back, or from ChatGPT.

Our JSON is OpenAI-style messages plus what the app knows about them (timestamps, usage,
titles, pins). It is deterministic: conversations sorted by creation, keys in a fixed order, no
export time, so export -> import into a fresh user -> export gives the same bytes.

An import is checked whole before anything is written (the error names the first bad record),
then written through ChatMemory's own API; if a write fails part way, the conversations this
import created are deleted again and the error is raised: all or nothing. A conversation the
user already has (the same messages, imported before) is recognised and not written again.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from memory.keys import check_conversation_id, new_conversation_id
from memory.models import ChatMemoryError, InvalidInput, Role, Usage
from memory.store import MAX_TITLE_CHARS
from memory.writing import MAX_CREATED_AT, MAX_MESSAGE_CHARS

if TYPE_CHECKING:
    from memory.models import ConversationInfo
    from memory.store import ChatMemory

FORMAT = "redis-chat-memory"
VERSION = 1
MAX_IMPORT_BYTES = 20_000_000
# Objects and lists ('{' and '[', counted in the raw file, strings included) one import may
# hold: parsing allocates per container, so this bounds its memory whatever the file's shape.
# Measured (peak RSS): 20 MB of `{}` would take ~470 MB to parse; under this cap the densest
# 20 MB file takes ~190 MB, a 19.5 MB ChatGPT-shaped export ~80 MB; ChatGPT's own export
# holds about one container per 70 bytes (~290k in 20 MB).
MAX_IMPORT_CONTAINERS = 600_000
_CLOCK_SLACK_SECONDS = 86_400  # how far past this machine's clock an imported time may be
_ROLE_NAMES = {Role.USER: "You", Role.ASSISTANT: "Assistant"}


class ImportRejected(InvalidInput):
    """The file cannot be imported; the message names the first bad record. Nothing was
    written."""


@dataclass(frozen=True)
class PortableMessage:
    role: Role
    content: str
    created_at: float
    usage: Usage | None = None


@dataclass(frozen=True)
class PortableConversation:
    """One conversation as exported, or as parsed from a file to import. `id` is None when
    the source has no id of ours (ChatGPT): the import mints one."""

    title: str
    messages: tuple[PortableMessage, ...]
    id: str | None = None
    created_at: float = 0.0
    last_active: float = 0.0
    pinned: bool = False


# --- export --------------------------------------------------------------------------------


def export_json(
    memory: ChatMemory, user_id: str, conversation_ids: Sequence[str] | None = None
) -> str:
    """The user's conversations (all, or the ones named) in our JSON format."""
    return render_json(read_conversations(memory, user_id, conversation_ids))


def export_markdown(
    memory: ChatMemory, user_id: str, conversation_ids: Sequence[str] | None = None
) -> str:
    """The user's conversations (all, or the ones named) as one Markdown document."""
    return render_markdown(read_conversations(memory, user_id, conversation_ids))


def read_conversations(
    memory: ChatMemory, user_id: str, conversation_ids: Sequence[str] | None = None
) -> list[PortableConversation]:
    """The user's conversations that have messages, oldest first; an id that names none of
    them is refused (InvalidInput)."""
    ids = memory.conversation_ids(user_id) if conversation_ids is None else conversation_ids
    infos = _infos(memory, user_id, dict.fromkeys(ids))
    missing = set(ids) - {info.id for info in infos}
    if missing:
        raise InvalidInput(f"No conversation {min(missing)!r} to export.")
    result = []
    for info in sorted(infos, key=lambda info: (info.created_at, info.id)):
        messages = tuple(
            PortableMessage(m.role, m.content, m.created_at, m.usage)
            for m in memory.messages(user_id, info.id)
        )
        if messages:
            result.append(
                PortableConversation(
                    title=info.title,
                    messages=messages,
                    id=info.id,
                    created_at=info.created_at,
                    last_active=info.last_active,
                    pinned=info.pinned,
                )
            )
    return result


def _infos(memory: ChatMemory, user_id: str, ids: Iterable[str]) -> list[ConversationInfo]:
    """Each conversation's record, one read each (the list reads at most a page)."""
    views = (memory.conversation(user_id, cid, window_size=0, page_size=0) for cid in ids)
    return [view.info for view in views if view.info is not None]


def render_json(conversations: Iterable[PortableConversation]) -> str:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "conversations": [
            {
                "id": conversation.id,
                "title": conversation.title,
                "created_at": conversation.created_at,
                "last_active": conversation.last_active,
                "pinned": conversation.pinned,
                "messages": [_message_json(message) for message in conversation.messages],
            }
            for conversation in conversations
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _message_json(message: PortableMessage) -> dict[str, Any]:
    result: dict[str, Any] = {
        "role": message.role.value,
        "content": message.content,
        "created_at": message.created_at,
    }
    if message.usage is not None:
        always = {"prompt_tokens", "completion_tokens"}
        result["usage"] = {k: v for k, v in asdict(message.usage).items() if v or k in always}
    return result


def render_markdown(conversations: Iterable[PortableConversation]) -> str:
    parts = []
    for conversation in conversations:
        lines = [
            f"# {conversation.title or 'Untitled chat'}",
            "",
            f"_Started {_when(conversation.created_at)}, {len(conversation.messages)} messages_",
        ]
        for message in conversation.messages:
            lines += ["", f"**{_ROLE_NAMES[message.role]}** · {_when(message.created_at)}"]
            lines += ["", message.content.strip()]
        parts.append("\n".join(lines) + "\n")
    return "\n---\n\n".join(parts)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def download_name(title: str | None, extension: str) -> str:
    """A file name for `st.download_button`: one conversation's title, or the date for all
    (`title` None)."""
    if title is not None:
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60]
        return f"chat-{slug or 'untitled'}.{extension}"
    return f"chats-{datetime.now(UTC):%Y-%m-%d}.{extension}"


# --- import: parsing and validation --------------------------------------------------------


def parse_import(raw: bytes | str) -> list[PortableConversation]:
    """Our JSON export or ChatGPT's `conversations.json`, checked whole; ImportRejected names
    the first bad record. Conversations without a message to keep are left out."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    size = len(raw)
    if size > MAX_IMPORT_BYTES:
        raise ImportRejected(
            f"The file is {size / 1e6:.1f} MB; at most {MAX_IMPORT_BYTES / 1e6:.0f} MB can be "
            "imported at once."
        )
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > MAX_IMPORT_CONTAINERS:
        raise ImportRejected(
            f"The file holds {containers:,} objects and lists; at most "
            f"{MAX_IMPORT_CONTAINERS:,} can be imported at once (an export of this size "
            "normally holds far fewer): split it, or import fewer conversations."
        )
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise ImportRejected(f"The file is not valid JSON: {error}.") from None
    if isinstance(document, dict) and document.get("format") == FORMAT:
        conversations = _ours(document)
    elif isinstance(document, list) and all(
        isinstance(item, dict) and "mapping" in item for item in document
    ):
        conversations = [_chatgpt(item, n) for n, item in enumerate(document, 1)]
    else:
        raise ImportRejected(
            'Unknown file format: expected an export of this app ("format": '
            f'"{FORMAT}") or ChatGPT\'s conversations.json (a list of conversations).'
        )
    kept = [conversation for conversation in conversations if conversation.messages]
    if not kept:
        raise ImportRejected("The file has no user or assistant message to import.")
    return kept


def _ours(document: dict[str, Any]) -> list[PortableConversation]:
    if document.get("version") != VERSION:
        raise ImportRejected(
            f"This file is version {document.get('version')!r} of the {FORMAT} format; this "
            f"app reads version {VERSION}."
        )
    items = document.get("conversations")
    if not isinstance(items, list):
        raise ImportRejected('"conversations" must be a list.')
    result = []
    for n, item in enumerate(items, 1):
        where = f"conversation {n}"
        if not isinstance(item, dict):
            raise ImportRejected(f"{where}: must be an object.")
        title = item.get("title", "")
        if isinstance(title, str):
            where = f"conversation {n} ({title[:40]!r})"
        result.append(_our_conversation(item, where))
    return result


def _our_conversation(item: dict[str, Any], where: str) -> PortableConversation:
    title = item.get("title", "")
    if not isinstance(title, str) or len(title.strip()) > MAX_TITLE_CHARS:
        raise ImportRejected(
            f"{where}: the title must be text of at most {MAX_TITLE_CHARS} characters."
        )
    title = _storable(title, where, "title")
    conversation_id = item.get("id")
    if conversation_id is not None:
        try:
            check_conversation_id(conversation_id)
        except InvalidInput as error:
            raise ImportRejected(f"{where}: id {conversation_id!r}: {error}") from None
    pinned = item.get("pinned", False)
    if not isinstance(pinned, bool):
        raise ImportRejected(f"{where}: pinned must be true or false.")
    items = item.get("messages")
    if not isinstance(items, list):
        raise ImportRejected(f"{where}: messages must be a list.")
    messages = []
    for n, message in enumerate(items, 1):
        if not isinstance(message, dict):
            raise ImportRejected(f"{where}, message {n}: must be an object.")
        role = message.get("role")
        if role not in (Role.USER.value, Role.ASSISTANT.value):
            raise ImportRejected(f"{where}, message {n}: role {role!r} is not user or assistant.")
        messages.append(
            PortableMessage(
                role=Role(role),
                content=_content(message.get("content"), f"{where}, message {n}"),
                created_at=_time(message.get("created_at"), f"{where}, message {n}"),
                usage=_usage(message.get("usage"), f"{where}, message {n}"),
            )
        )
    return PortableConversation(
        title=title.strip(),
        messages=tuple(messages),
        id=conversation_id,
        created_at=_time(item.get("created_at", 0.0), where),
        last_active=_time(item.get("last_active", 0.0), where),
        pinned=pinned,
    )


def _content(content: Any, where: str) -> str:
    if not isinstance(content, str) or not content.strip():
        raise ImportRejected(f"{where}: content must be non-empty text.")
    if len(content) > MAX_MESSAGE_CHARS:
        raise ImportRejected(f"{where}: content is longer than {MAX_MESSAGE_CHARS:,} characters.")
    return _storable(content, where, "content")


def _storable(text: str, where: str, what: str) -> str:
    """Text that can be stored: a JSON escape such as `\\ud800` (half of a pair) makes a
    string that is not Unicode text and cannot be written."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ImportRejected(
            f"{where}: the {what} holds {text[error.start]!r}, half of a character pair "
            "(an unpaired surrogate), which is not text."
        ) from None
    return text


def _time(value: Any, where: str) -> float:
    """A time in seconds since 1970 that the store takes (before the year 2242) and that is
    not in the future (a day of clock difference allowed): a future time would lead the
    conversation list for years."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e11:
        raise ImportRejected(f"{where}: {value!r} is not a time in seconds since 1970.")
    if value >= min(MAX_CREATED_AT, time.time() + _CLOCK_SLACK_SECONDS):
        when = datetime.fromtimestamp(min(value, 2.5e11), UTC).strftime("%Y-%m-%d")
        raise ImportRejected(f"{where}: {value!r} is a time in the future ({when}).")
    return float(value)


def _usage(value: Any, where: str) -> Usage | None:
    if value is None:
        return None
    counts = ("prompt_tokens", "completion_tokens")
    if not isinstance(value, dict) or not all(
        isinstance(value.get(k), int) and not isinstance(value.get(k), bool) and value[k] >= 0
        for k in counts
    ):
        raise ImportRejected(f"{where}: usage needs whole prompt_tokens and completion_tokens.")
    estimate = value.get("estimated_prompt_tokens")
    if estimate is not None and (not isinstance(estimate, int) or isinstance(estimate, bool)):
        raise ImportRejected(f"{where}: usage estimated_prompt_tokens must be a whole number.")
    return Usage.from_metadata(value)


def _chatgpt(item: dict[str, Any], n: int) -> PortableConversation:
    """One ChatGPT conversation: the branch that ends at `current_node`, read back through
    parents; the text of user and assistant messages only (system, tool, hidden, empty
    and non-text messages, and images, are left out)."""
    raw_title = item.get("title")
    title = raw_title if isinstance(raw_title, str) else ""
    where = f"conversation {n} ({title[:40]!r})"
    title = _storable(title, where, "title")
    mapping, node_id = item.get("mapping"), item.get("current_node")
    if not isinstance(mapping, dict):
        raise ImportRejected(f"{where}: mapping must be an object.")
    if node_id not in mapping:
        raise ImportRejected(f"{where}: current_node {node_id!r} is not in the mapping.")
    path: list[dict[str, Any]] = []
    while node_id is not None:
        node = mapping.get(node_id)
        if not isinstance(node, dict) or len(path) > len(mapping):
            raise ImportRejected(f"{where}: node {node_id!r} is missing or its parents loop.")
        path.append(node)
        node_id = node.get("parent")
    started = item.get("create_time")
    started = _time(started, where) if started is not None else 0.0
    messages: list[PortableMessage] = []
    for node in reversed(path):
        message = node.get("message")
        if not isinstance(message, dict):
            continue
        previous = messages[-1].created_at if messages else started
        kept = _chatgpt_message(message, previous, f"{where}, message {len(messages) + 1}")
        if kept is not None:
            messages.append(kept)
    return PortableConversation(
        title=title.strip()[:MAX_TITLE_CHARS],
        messages=tuple(messages),
        created_at=messages[0].created_at if messages else started,
        last_active=messages[-1].created_at if messages else started,
    )


def _chatgpt_message(
    message: dict[str, Any], previous: float, where: str
) -> PortableMessage | None:
    author = message.get("author")
    role = author.get("role") if isinstance(author, dict) else None
    content = message.get("content")
    if role not in (Role.USER.value, Role.ASSISTANT.value) or not isinstance(content, dict):
        return None
    parts = content.get("parts")
    if content.get("content_type") not in ("text", "multimodal_text") or not isinstance(
        parts, list
    ):
        return None
    text = "\n".join(p for p in parts if isinstance(p, str) and p)  # images are left out
    metadata = message.get("metadata")
    hidden = isinstance(metadata, dict) and metadata.get("is_visually_hidden_from_conversation")
    if not text.strip() or hidden:
        return None
    created = message.get("create_time")
    if isinstance(created, bool) or not isinstance(created, int | float) or created <= 0:
        created = previous  # ChatGPT leaves some times out: keep the order, take the one before
    return PortableMessage(Role(role), _content(text, where), max(_time(created, where), previous))


# --- import: writing -----------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """What an import did: the conversations it created, and those of the file the user
    already has (imported before, or never deleted since the export), left as they are."""

    imported: list[ConversationInfo]
    already_here: list[ConversationInfo]


def import_file(memory: ChatMemory, user_id: str, raw: bytes | str) -> ImportResult:
    """Parse an uploaded file and import it: `parse_import`, then `import_conversations`."""
    return import_conversations(memory, user_id, parse_import(raw))


def import_conversations(
    memory: ChatMemory, user_id: str, conversations: Sequence[PortableConversation]
) -> ImportResult:
    """Write parsed conversations as new conversations of the user, all or nothing, except
    those the user already has (`already_here`): one whose messages (role, text, time to the
    millisecond) begin one of theirs is not written again, so importing the same file twice
    adds nothing the second time, pins included. A new conversation keeps its id when the
    user has none by that id, else it gets a fresh one. Refused whole (ImportRejected) when
    the user's message cap could not take the new ones."""
    taken = set(memory.conversation_ids(user_id))
    found = _already_here(memory, user_id, taken, conversations)
    new = [c for n, c in enumerate(conversations) if n not in found]
    _check_room(memory, user_id, taken, new)
    created: list[str] = []
    try:
        for conversation in new:
            cid = conversation.id if conversation.id and conversation.id not in taken else None
            cid = cid or new_conversation_id()
            taken.add(cid)
            created.append(cid)
            _write(memory, user_id, cid, conversation)
    except BaseException:  # also Streamlit's rerun, which would cut the import short
        for cid in created:
            with contextlib.suppress(ChatMemoryError):
                memory.delete_conversation(user_id, cid)
        raise
    here = sorted(set(found.values()), key=list(found.values()).index)
    return ImportResult(_infos(memory, user_id, created), _infos(memory, user_id, here))


def _check_room(
    memory: ChatMemory, user_id: str, taken: set[str], new: Sequence[PortableConversation]
) -> None:
    stored = sum(info.message_count for info in _infos(memory, user_id, taken))
    incoming = sum(len(conversation.messages) for conversation in new)
    cap = memory.limits.max_messages
    if stored + incoming > cap:
        raise ImportRejected(
            f"The file has {incoming:,} new messages; with the {stored:,} you already keep that "
            f"is more than your limit of {cap:,} (MAX_MESSAGES_PER_USER). Nothing was imported."
        )
    if len(taken) + len(new) > cap:
        raise ImportRejected(
            f"The file has {len(new):,} new conversations; with the {len(taken):,} you "
            f"already keep (empty ones included) that is more than your limit of {cap:,} "
            "(MAX_MESSAGES_PER_USER caps conversations too). Nothing was imported."
        )


Signature = tuple[str, str, int]


def _signature(role: Role, content: str, created_at: float) -> Signature:
    return role.value, content, round(created_at * 1000)


def _already_here(
    memory: ChatMemory,
    user_id: str,
    conversation_ids: Iterable[str],
    conversations: Sequence[PortableConversation],
) -> dict[int, str]:
    """Which of `conversations` (by position) the user already has, and in which of theirs:
    its messages are the first messages of that conversation (which may have gone on)."""
    if not any(c.messages for c in conversations):
        return {}
    by_first: dict[Signature, list[tuple[str, list[Signature]]]] = {}
    for cid in conversation_ids:
        held = [_signature(m.role, m.content, m.created_at) for m in memory.messages(user_id, cid)]
        if held:
            by_first.setdefault(held[0], []).append((cid, held))
    found: dict[int, str] = {}
    for position, conversation in enumerate(conversations):
        wanted = [_signature(m.role, m.content, m.created_at) for m in conversation.messages]
        if not wanted:
            continue
        for cid, held in by_first.get(wanted[0], []):
            if held[: len(wanted)] == wanted:
                found[position] = cid
                break
    return found


def _write(memory: ChatMemory, user_id: str, cid: str, conversation: PortableConversation) -> None:
    for message in conversation.messages:
        memory.append(
            user_id,
            message.role,
            message.content,
            conversation_id=cid,
            usage=message.usage,
            created_at=message.created_at,
        )
    first = conversation.messages[0].created_at if conversation.messages else None
    if conversation.created_at and round(conversation.created_at * 1000) != round(
        (first or 0) * 1000
    ):
        memory.restore_created_at(user_id, cid, conversation.created_at)
    if conversation.title:
        memory.rename_conversation(user_id, cid, conversation.title)
    if conversation.pinned:
        memory.pin_conversation(user_id, cid, True)
