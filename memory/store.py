"""ChatMemory: every read and write of chat history, per user, over redisvl's MessageHistory.

Each message is a redisvl `MessageHistory` document (a hash under the index's prefix, with
`role`, `content`, `session_tag`, `timestamp`, ...), so the search index and any redisvl reader
see the conversation. Two things redisvl does not give us are added beside it:

- a per-user *timeline* (sorted set of message keys scored by a per-user sequence number), so
  reading the last N messages costs the same for 10 or 10,000 stored messages and several
  messages written in one millisecond keep their order (`timestamp` holds that sequence);
- a per-user *settings* hash (system instruction, retention, usage totals) that no trimming or
  expiry ever touches.

Writes and reads are Lua scripts over keys that share the user's hash tag: one round trip each,
atomic, and valid on a Redis Cluster. Every message has its id before the first write attempt
and a message key derived from it, so a retried or resent write is stored at most once. No
script's work grows with a user's history: clear, retention and expiry pruning run in bounded
batches looped from here, and clear-all walks a registry of users instead of the keyspace.
"""

from __future__ import annotations

import time
import unicodedata
from typing import Any, ParamSpec, TypeVar, cast

import redis
from redis.cluster import RedisCluster
from redis.commands.search.index_definition import IndexDefinition, IndexType
from redisvl.extensions.message_history import MessageHistory
from redisvl.index import SearchIndex
from redisvl.schema import IndexSchema

from memory.branches import MAX_BRANCH_TAIL, switch_refusal
from memory.connection import RedisClient, may_have_reached_redis
from memory.errors import storage_errors
from memory.hybrid import Candidate, HybridSearch, content_words, conversation_scope, user_scope
from memory.keys import (
    LEGACY_CONVERSATION_ID,
    KeyLayout,
    check_conversation_id,
    check_message_id,
    conversation_of_tag,
    conversation_tag,
    new_conversation_id,
    new_message_id,
    user_tag,
)
from memory.limits import LimitPolicy
from memory.listing import conversation_info, conversation_list, listing_head
from memory.models import (
    ContextWindow,
    Conversation,
    ConversationInfo,
    ConversationList,
    IndexUnavailable,
    InvalidInput,
    Message,
    PageView,
    Retention,
    Role,
    SearchHit,
    StaleTarget,
    StorageLimits,
    SystemInstruction,
    TitleSource,
    TurnStart,
    Usage,
    WriteOutcomeUnknown,
    summary_state,
)
from memory.reading import MESSAGE_FIELDS, ROLES, MessageReader, pairs
from memory.scripts import PER_USER, lua_script
from memory.search import snippet
from memory.tokens import TokenCounter
from memory.turns import TurnAsk, begin_refusal, turn_start
from memory.vector_store import VectorStore
from memory.vectors import Embedder, EmbedderUnavailable, text_to_embed
from memory.writing import (
    MessageWriter,
    NewMessage,
    check_content,
    check_created_at,
    limit_reached,
)

MAX_WINDOW = 1000
DEFAULT_WINDOW = 5
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600
_READ_BATCH = 500
# Messages one script call may delete, re-expire or prune: measured to stay well under ~10 ms
# of Redis time with the search index updating every deleted document (bench/scale.py).
WORK_BATCH = 50
_USERS_PAGE = 500
_CONVERSATIONS_PAGE = 500
MAX_TITLE_CHARS = 120
MAX_REMOVED_AT_ONCE = 2  # remove_last: a prompt and its reply
_INDEX_CHECK_SECONDS = 30.0
_INDEX_PAUSE_SECONDS = 300  # renewed every 0.2 s while clear-all runs
# A forked child (RediSearch's GC, an AOF rewrite, a snapshot) makes Redis copy each page that
# bulk deletes touch: clear-all waits for none to be alive, at most this long each time.
_FORK_FIELDS = ("module_fork_in_progress", "aof_rewrite_in_progress", "rdb_bgsave_in_progress")
_FORK_WAIT_SECONDS = 60.0
_FORK_CHECK_SECONDS = 0.2
INDEX_PAUSED = (
    "Search is paused while an administrator clears all chat history; it is back as soon as "
    "that finishes."
)

_HIT_FIELDS = ("content", "session_tag", "timestamp", "role", "created_at")  # bench/conversations
_INDEX_FIELDS: list[dict[str, Any]] = [
    {"name": "session_tag", "type": "tag"},
    {"name": "timestamp", "type": "numeric", "attrs": {"sortable": True}},
    {"name": "role", "type": "tag"},
    {"name": "user_tag", "type": "tag"},
    {"name": "content", "type": "text"},
]

P = ParamSpec("P")
T = TypeVar("T")


def _never_sent(error: redis.RedisError) -> bool:
    """True when no attempt of a write reached Redis (every one failed to connect)."""
    return not may_have_reached_redis(error)


def one_line(title: str) -> str:
    """A title as the list shows it: one line, runs of whitespace and control characters
    (a NUL would cut the list's row) made single spaces."""
    return " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in title).split())


def _validate_window(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_WINDOW:
        raise InvalidInput(f"The window size must be a whole number from 0 to {MAX_WINDOW}.")
    return size


def _validate_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_WINDOW:
        raise InvalidInput(f"A result limit must be a whole number from 0 to {MAX_WINDOW}.")
    return limit


def _validate_ttl(ttl_seconds: int | None) -> int | None:
    if ttl_seconds is None:
        return None
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
        raise InvalidInput("Retention must be a whole number of seconds, or None to keep forever.")
    if not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise InvalidInput(
            f"Retention must be between 1 second and {MAX_TTL_SECONDS} seconds (10 years), "
            "or None to keep forever."
        )
    return ttl_seconds


class ChatMemory:
    """Per-user chat history, system instruction, retention and usage, stored in Redis.

    Building it creates the search index when absent and never deletes anything.
    """

    def __init__(
        self,
        redis_client: RedisClient,
        *,
        default_system: SystemInstruction,
        index_name: str = "chat",
        token_counter: TokenCounter | None = None,
        limits: StorageLimits | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self._redis = redis_client
        self._layout = KeyLayout(index_name)
        self._tokens = token_counter or TokenCounter()
        self._limits = limits or StorageLimits()
        self._reader = MessageReader(self._tokens, default_system)
        self._writer = MessageWriter(self._layout, self._tokens, self._limits)

        def script(name: str) -> Any:
            return lua_script(redis_client, *PER_USER, name)

        self._append = script("append.lua")
        self._read = script("read.lua")
        self._retention = script("retention.lua")
        self._clear = script("clear.lua")
        self._list = script("list.lua")
        self._meta = script("meta.lua")
        self._remove_last = script("remove_last.lua")
        self._branch = script("branch.lua")
        self._page = script("page.lua")
        self._begin_turn = lua_script(
            redis_client, *PER_USER, "limits.lua", "begin_turn.lua", all_or_nothing=True
        )
        self._finish_turn = lua_script(
            redis_client, *PER_USER, "limits.lua", "finish_turn.lua", all_or_nothing=True
        )
        self._index = self._lean_index(index_name)
        self._index_missing_reason = self._index_cannot_span_cluster()
        self._index_due = 0.0
        self._index_paused = False
        self._history: MessageHistory | None = None
        self._vectors = VectorStore(redis_client, self._layout, embedder) if embedder else None
        self._hybrid = HybridSearch(redis_client, index_name)
        self._ensure_index()

    def _lean_index(self, index_name: str) -> SearchIndex:
        """Only the fields a reader queries: a conversation's messages by tag (redisvl's
        `session_tag`), a user's by `user_tag`, in order, by role, and `content` as full text
        for search."""
        schema = IndexSchema.from_dict(
            {
                "index": {"name": index_name, "prefix": self._layout.message_prefix},
                "fields": _INDEX_FIELDS,
            }
        )
        return SearchIndex(schema=schema, redis_client=self._redis)

    @storage_errors
    def _index_cannot_span_cluster(self) -> str | None:
        """On a Redis Cluster, open-source RediSearch (no coordinator, no FT.CLUSTERINFO) keeps
        an index on one shard that sees only that shard's messages: say so instead."""
        if not isinstance(self._redis, RedisCluster):
            return None
        try:
            self._redis.execute_command(
                "FT.CLUSTERINFO", target_nodes=self._redis.get_random_node()
            )
        except redis.ResponseError:
            return (
                "Search is unavailable: the search index cannot span this Redis Cluster (its "
                "RediSearch has no cluster coordinator, so an index would see one shard's "
                "messages only). Chat memory works without it; search needs Redis Enterprise / "
                "Azure Managed Redis (Enterprise clustering policy) or a single Redis."
            )
        return None

    @storage_errors
    def _ensure_index(self) -> None:
        """Create the index when missing (first start, or Redis restarted empty); checked at
        most every 30 s, so a write pays for it rarely."""
        if self._index_missing_reason is not None or time.monotonic() < self._index_due:
            return
        self._index_paused = False
        if self._index.exists():
            self._add_missing_fields()
        elif self._redis.exists(self._layout.index_pause_key):
            self._index_paused = True  # clear-all recreates it when done
            self._index_due = time.monotonic() + 1
            return
        else:
            self._create_index()
            self._add_missing_fields()  # the vector fields
        self._index_due = time.monotonic() + _INDEX_CHECK_SECONDS

    def _require_index(self) -> None:
        """Raise IndexUnavailable where no index covers every message: a cluster without a
        coordinator, or clear-all running with the index dropped."""
        if self._index_missing_reason is not None:
            raise IndexUnavailable(self._index_missing_reason)
        self._index_due = 0.0
        self._ensure_index()
        if self._index_paused:
            raise IndexUnavailable(INDEX_PAUSED)

    def _create_index(self) -> None:
        """FT.CREATE without term offsets and per-field flags: search matches words and builds
        its snippets in Python (no phrase queries, no highlighting) and `content` is the one
        TEXT field, so both would be memory spent on nothing (-23% of the index, measured).
        An index another instance created first is left as it is."""
        try:
            self._redis.ft(self._layout.index_name).create_index(
                fields=self._index.schema.redis_fields,
                definition=IndexDefinition(
                    prefix=[self._layout.message_prefix], index_type=IndexType.HASH
                ),
                no_term_offsets=True,
                no_field_flags=True,
            )
        except redis.ResponseError as error:
            if "already exists" not in str(error).lower():
                raise

    def _add_missing_fields(self) -> None:
        """An index created by an earlier release lacks fields added since: add them in place
        (FT.ALTER; RediSearch then re-indexes the stored messages in the background). Never
        dropped, so nothing is lost and the index keeps answering meanwhile."""
        info = self._redis.ft(self._layout.index_name).info()
        present = {str(attribute[1]) for attribute in info.get("attributes", [])}
        for field in _INDEX_FIELDS:
            if field["name"] not in present:
                self._redis.execute_command(
                    "FT.ALTER",
                    self._layout.index_name,
                    "SCHEMA",
                    "ADD",
                    field["name"],
                    str(field["type"]).upper(),
                )
        if self._vectors is not None:
            self._vectors.add_missing_fields(present)

    @property
    def token_counter(self) -> TokenCounter:
        return self._tokens

    @property
    def history(self) -> MessageHistory:
        """The redisvl MessageHistory over the same documents (search, interop). Raises
        IndexUnavailable where the index cannot cover every message."""
        self._require_index()
        if self._history is None:
            self._history = MessageHistory(
                name=self._layout.index_name,
                prefix=self._layout.message_prefix,
                redis_client=self._redis,
                create_index=False,
            )
        return self._history

    @property
    def limits(self) -> StorageLimits:
        return self._limits

    def _user_keys(self, tag: str) -> list[str]:
        return self._layout.user_keys(tag)

    # --- writing -------------------------------------------------------------------------

    @storage_errors
    def append(
        self,
        user_id: str,
        role: Role | str,
        content: str,
        *,
        conversation_id: str,
        usage: Usage | None = None,
        message_id: str | None = None,
        created_at: float | None = None,
    ) -> Message:
        """Store one message at the end of a conversation and return it. The conversation's
        record is created with its first message, so an id minted for a "New chat" costs
        nothing until a prompt is sent; every message makes it the most recently active.

        `message_id` (default: a fresh one) makes the write idempotent: a message id already
        stored returns the stored message unchanged, so retry or resend after an unknown
        outcome (WriteOutcomeUnknown) with the same id. Past a per-user cap (over all the
        user's conversations) the write is refused whole (StorageLimitReached). `created_at`
        (seconds) keeps an imported message's original time; messages still go in order, and
        its usage stays on the message but is not added to the user's totals (it was not
        spent here)."""
        tag = user_tag(user_id)
        cid = check_conversation_id(conversation_id)
        new = self._writer.new(
            user_id,
            tag,
            cid,
            role,
            content,
            message_id=message_id,
            usage=usage,
            created_at=created_at,
        )
        args = [cid, WORK_BATCH, *new.args]
        self._ensure_index()
        return self._stored(tag, new, self._write(tag, self._append, new.key, args))

    def _stored(self, tag: str, new: NewMessage, result: list[Any]) -> Message:
        """An append.lua-shaped reply as the stored message (registering a new user), or the
        storage cap that refused it."""
        if result[0] == "limit":
            raise limit_reached(str(result[1]), int(result[3]))
        _, seq, stored_ms, _, registered = result
        if not int(registered):
            self._register_stored(tag, int(stored_ms))
        return new.stored(int(seq), int(stored_ms))

    def _write(self, tag: str, script: Any, key: str, args: list[Any]) -> list[Any]:
        """Run a per-user script that writes `key` (KEYS[12]) exactly once; expired messages it
        says must go first are pruned and it runs again."""
        result = self._write_once(script, [*self._user_keys(tag), key], args)
        if result[0] == "prune":
            self._prune(tag)
            result = self._write_once(script, [*self._user_keys(tag), key], args)
        return result

    @staticmethod
    def _write_once(script: Any, keys: list[str], args: list[Any]) -> list[Any]:
        try:
            return list(script(keys=keys, args=args))
        except (redis.ConnectionError, redis.TimeoutError) as error:
            if _never_sent(error):
                raise
            raise WriteOutcomeUnknown(
                "Chat storage (Redis) did not answer in time: the message may or may not have "
                "been saved. Checking by its id tells which; resending it cannot store it twice."
            ) from error

    def _register(self, tag: str, first_ms: int) -> None:
        """Add the user to the registry clear-all walks (a separate key: on a cluster it lives
        in another slot, so the append script cannot do it); retried until it succeeds."""
        self._redis.zadd(self._layout.user_registry_key, {tag: first_ms}, nx=True)
        self._redis.hset(self._layout.settings_key(tag), "registered", 1)

    def _register_stored(self, tag: str, first_ms: int) -> None:
        """Register the user of a message just stored. If Redis fails now, the message is
        stored but the registry may not have them: that is an unknown outcome, so the caller
        checks by id (`saved_message`) or resends, and either registers them (the scripts
        tell a resend the user is still unregistered)."""
        try:
            self._register(tag, first_ms)
        except redis.RedisError as error:
            raise WriteOutcomeUnknown(
                "Chat storage (Redis) stopped answering just after the message was stored: it "
                "may not be complete yet. Checking by its id, or resending it, completes it; "
                "resending cannot store it twice."
            ) from error

    @storage_errors
    def saved_message(self, user_id: str, message_id: str) -> Message | None:
        """The stored message with this id, or None: answers "was it saved?" after an
        unknown outcome, and completes a write whose registration was cut short."""
        tag = user_tag(user_id)
        key = self._layout.message_key(tag, check_message_id(message_id))
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(key, *MESSAGE_FIELDS)
        pipe.hexists(self._layout.settings_key(tag), "registered")
        values, registered = pipe.execute()
        if values[0] is None:
            return None
        message = self._reader.messages([key, values])[0]
        if not registered:  # stored by a write whose registration was cut short
            self._register(tag, round(message.created_at * 1000))
        return message

    @storage_errors
    def set_system_instruction(
        self, user_id: str, text: str, *, preset: str | None = None
    ) -> SystemInstruction:
        """Replace the user's system instruction; `preset` names it when it came from one."""
        tag = user_tag(user_id)
        check_content(text)
        instruction = SystemInstruction(
            text=text, preset=preset, token_count=self._tokens.count_message("system", text)
        )
        self._redis.hset(
            self._layout.settings_key(tag),
            mapping={
                "user_id": user_id,
                "system_text": text,
                "system_preset": preset or "",
                "system_tokens": instruction.token_count,
                "system_encoding": self._tokens.encoding_name,
            },
        )
        return instruction

    @storage_errors
    def reset_system_instruction(self, user_id: str) -> SystemInstruction:
        """Forget the user's choice so the default preset applies again."""
        tag = user_tag(user_id)
        self._redis.hdel(
            self._layout.settings_key(tag),
            "system_text",
            "system_preset",
            "system_tokens",
            "system_encoding",
        )
        return self._reader.default_system()

    @storage_errors
    def set_window_size(self, user_id: str, size: int) -> None:
        """Remember how many messages this user wants in the context window."""
        tag = user_tag(user_id)
        _validate_window(size)
        self._redis.hset(self._layout.settings_key(tag), mapping={"window_size": size})

    @storage_errors
    def set_retention(self, user_id: str, ttl_seconds: int | None) -> Retention:
        """Messages already stored, in every conversation of the user, and all written later
        live `ttl_seconds`; None keeps them. New messages follow the policy at once; stored
        ones are updated in bounded batches, conversation by conversation."""
        tag = user_tag(user_id)
        ttl = _validate_ttl(ttl_seconds)
        keys = self._user_keys(tag)
        policy = "" if ttl is None else ttl
        generation, expire_at, last_seq = self._retention(keys=keys, args=["start", policy])
        for cid in self._conversation_ids(tag):
            for messages in ("", "hidden"):  # the timeline, then the branches not shown
                after, more = 0, 1
                while int(more):
                    after, more = self._retention(
                        keys=keys,
                        args=["apply", policy, generation, expire_at, last_seq, after,
                              WORK_BATCH, cid, messages],
                    )  # fmt: skip
        return self.retention(user_id)

    def _conversation_ids(self, tag: str) -> list[str]:
        """Every conversation id of a user (legacy data adopted first), read in pages."""
        ids: list[str] = []
        while True:
            page = self._list(
                keys=self._user_keys(tag), args=["ids", _CONVERSATIONS_PAGE, 0, len(ids)]
            )
            ids.extend(str(cid) for cid in page)
            if len(page) < _CONVERSATIONS_PAGE:
                return ids

    @storage_errors
    def conversation_ids(self, user_id: str) -> list[str]:
        """Every conversation id of the user, least recently active first (export, import)."""
        return self._conversation_ids(user_tag(user_id))

    @storage_errors
    def most_recent_conversation(self, user_id: str) -> str | None:
        """The user's most recently active conversation, pinned or not (the one a page opens
        when the URL names none), or None: the newest entry of the list, one round trip."""
        ids = self._list(keys=self._user_keys(user_tag(user_id)), args=["ids", 1, 0, -1])
        return str(ids[0]) if ids else None

    # --- conversations ---------------------------------------------------------------------

    @storage_errors
    def conversations(self, user_id: str, *, limit: int = 50) -> ConversationList:
        """A page of the user's list: up to `limit` conversations, pinned ones first, then the
        most recently active. One native ZREVRANGE of the precomputed listing while its head
        vouches for it (every conversation listed, no message past its retention); else the
        list script prunes, adopts data from before conversations, or rebuilds the listing,
        in bounded calls. (The head's next expiry is compared with this machine's clock.)"""
        tag = user_tag(user_id)
        _validate_limit(limit)
        page = cast(list[str], self._redis.zrevrange(self._layout.listing_key(tag), 0, limit))
        total, next_expiry = listing_head(page[0] if page else "")
        if total < 0 or 0 < next_expiry <= time.time() * 1000:
            total, page = self._listing_from_script(tag, limit)
        return conversation_list(page, limit, total)

    def _listing_from_script(self, tag: str, limit: int) -> tuple[int, list[str]]:
        start = 0
        while True:
            reply = self._list(keys=self._user_keys(tag), args=["page", limit, WORK_BATCH, start])
            if reply[0] == "ok":
                return int(reply[1]), reply[2]
            if reply[0] == "pending":
                self._prune(tag)
            else:
                start = int(reply[1])

    @storage_errors
    def rename_conversation(
        self, user_id: str, conversation_id: str, title: str
    ) -> ConversationInfo:
        """Give a conversation the user's own title; automatic titles never replace it."""
        line = one_line(title) if isinstance(title, str) else ""
        if not 1 <= len(line) <= MAX_TITLE_CHARS:
            raise InvalidInput(f"A title must have 1 to {MAX_TITLE_CHARS} characters.")
        _, info = self._change(user_id, conversation_id, "rename", line)
        return info

    @storage_errors
    def set_auto_title(
        self, user_id: str, conversation_id: str, title: str, source: TitleSource | str
    ) -> bool:
        """Set an automatic title (`words` or `model`) unless a better one is there: a model's
        title replaces the first words, nothing replaces the user's. True when it was set."""
        checked = TitleSource(source)
        if checked not in (TitleSource.WORDS, TitleSource.MODEL):
            raise InvalidInput("An automatic title comes from 'words' or 'model'.")
        flat = one_line(str(title))[:MAX_TITLE_CHARS]
        if not flat:
            raise InvalidInput("A title must not be empty.")
        changed, _ = self._change(user_id, conversation_id, "auto", flat, checked.value)
        return changed

    @storage_errors
    def restore_created_at(self, user_id: str, conversation_id: str, created_at: float) -> None:
        """Give an imported conversation its own creation time (seconds): it may be before
        its first message's, as for one cleared and continued."""
        created_ms = check_created_at(created_at)
        self._change(user_id, conversation_id, "created", str(created_ms))

    @storage_errors
    def pin_conversation(self, user_id: str, conversation_id: str, pinned: bool) -> None:
        self._change(user_id, conversation_id, "pin", "1" if pinned else "0")

    def _change(
        self, user_id: str, conversation_id: str, op: str, value: str, source: str = ""
    ) -> tuple[bool, ConversationInfo]:
        tag = user_tag(user_id)
        cid = check_conversation_id(conversation_id)
        changed, row = self._meta(keys=self._user_keys(tag), args=[op, cid, value, source])
        if not row:
            raise InvalidInput("There is no such conversation (it may have been deleted).")
        return bool(int(changed)), conversation_info(row)

    @storage_errors
    def clear(
        self, user_id: str, conversation_id: str, *, expect_last_seq: int | None = None
    ) -> int:
        """Delete one conversation's messages and its summary checkpoint; the conversation
        stays (empty), and so do the user's instruction, retention and usage totals. Messages
        written after the clear began (another tab) stay too. `expect_last_seq`: the seq of
        the newest message the page showed (0: none); when the conversation's newest is
        another, nothing is removed and StaleTarget is raised."""
        cid = check_conversation_id(conversation_id)
        return self._clear_conversation(
            user_tag(user_id), cid, cutoff_ms=None, expect_last_seq=expect_last_seq
        )

    @storage_errors
    def delete_conversation(
        self, user_id: str, conversation_id: str, *, expect_last_seq: int | None = None
    ) -> int:
        """Delete a conversation: its messages, timeline, record, list and pin entries and
        summary checkpoint. Returns the messages deleted. `expect_last_seq` as for `clear`."""
        cid = check_conversation_id(conversation_id)
        return self._clear_conversation(
            user_tag(user_id), cid, cutoff_ms=None, delete=True, expect_last_seq=expect_last_seq
        )

    def _clear_conversation(
        self,
        tag: str,
        cid: str,
        cutoff_ms: int | None,
        *,
        delete: bool = False,
        expect_last_seq: int | None = None,
    ) -> int:
        """The clear script in a loop of bounded calls; the first one checks `expect_last_seq`
        and carries an operation id, so a re-sent first call goes on where it was."""
        expect = _expected_seq(expect_last_seq)
        deleted, more, cutoff = 0, 1, "" if cutoff_ms is None else cutoff_ms
        mode, op = "delete" if delete else "clear", new_message_id()
        while int(more):
            count, more, cutoff = self._clear(
                keys=self._user_keys(tag), args=[cutoff, WORK_BATCH, cid, mode, expect, op]
            )
            if int(count) == -1:
                raise StaleTarget(int(expect), int(more))
            deleted += int(count)
            expect, op = "", ""
        return deleted

    @storage_errors
    def erase_user(self, user_id: str) -> int:
        """Delete every key of the user: all conversations (messages, timelines, records,
        summaries), the conversation and pin lists, settings, usage totals, expiry set and
        limit counters, then the registry entry. Bounded batches. Returns messages deleted."""
        tag = user_tag(user_id)
        deleted = 0
        while True:
            ids = self._conversation_ids(tag)
            for cid in ids:
                deleted += self._clear_conversation(tag, cid, cutoff_ms=None, delete=True)
            done = self._meta(keys=self._user_keys(tag), args=["erase", "0", WORK_BATCH, ""])
            if int(done[0]):
                break
        self._redis.zrem(self._layout.user_registry_key, tag)
        return deleted

    @storage_errors
    def remove_last(
        self,
        user_id: str,
        conversation_id: str,
        from_seq: int,
        *,
        expect_last_seq: int | None = None,
    ) -> int:
        """Remove a conversation's messages with seq >= `from_seq` in one atomic step (edit
        the last prompt: prompt and reply; regenerate: the reply), and the summary checkpoint
        if it covers one of them. More than two would be more than a last exchange, so that
        is refused and nothing is removed. `expect_last_seq`: the seq of the newest message
        the page showed; when the conversation's newest is another (a prompt sent since, in
        another tab), nothing is removed and StaleTarget is raised. A call re-sent after a
        stall removes nothing more."""
        tag = user_tag(user_id)
        cid = check_conversation_id(conversation_id)
        _validate_seq(from_seq)
        expect = _expected_seq(expect_last_seq)
        args = [cid, from_seq, MAX_REMOVED_AT_ONCE, WORK_BATCH, expect, new_message_id()]
        result = self._remove_last(keys=self._user_keys(tag), args=args)
        if int(result[0]) == -1:
            self._prune(tag)
            result = self._remove_last(keys=self._user_keys(tag), args=args)
        if int(result[0]) == -3:
            raise StaleTarget(int(expect), int(result[1]))
        if int(result[0]) == -2:
            raise InvalidInput(
                f"Only the last {MAX_REMOVED_AT_ONCE} messages can be replaced; nothing was "
                "removed."
            )
        return int(result[0])

    @storage_errors
    def switch_branch(
        self,
        user_id: str,
        conversation_id: str,
        parent_seq: int,
        alternative: int,
        *,
        expect_last_seq: int | None = None,
    ) -> int:
        """Show alternative `alternative` (1-based) of the fork point after message
        `parent_seq` (0: the start) in one atomic step: the version shown now is kept and
        hidden, the chosen one and its replies come back (memory/branches.py). Refused with
        nothing changed: StaleTarget (the newest message is no longer `expect_last_seq`),
        BranchBusy (a reply of the conversation is streaming), InvalidInput (no such version,
        or too long a tail). Re-sent after a stall, it switches once. Returns the newest seq."""
        tag = user_tag(user_id)
        cid = check_conversation_id(conversation_id)
        if parent_seq != 0:
            _validate_seq(parent_seq)
        if isinstance(alternative, bool) or not isinstance(alternative, int) or alternative < 1:
            raise InvalidInput("A version is numbered from 1.")
        expect = _expected_seq(expect_last_seq)
        args = [cid, parent_seq, alternative, expect, new_message_id(), MAX_BRANCH_TAIL, WORK_BATCH]
        reply = self._branch(keys=self._user_keys(tag), args=args)
        if reply[0] == "prune":
            self._prune(tag)
            reply = self._branch(keys=self._user_keys(tag), args=args)
        refused = switch_refusal(reply, expect)
        if refused is not None:
            raise refused
        return int(reply[1])

    @storage_errors
    def clear_all(self) -> int:
        """Admin only: delete every user's messages, in every conversation, that existed when
        it started, user by user from the registry (no keyspace scan). Conversations (now
        empty) and settings stay. Returns messages deleted.

        The search index is dropped first (its documents stay) and created again at the end
        over what is left: deleting through an index makes RediSearch's garbage collector
        fork and then hold the index lock while it repairs every inverted index, and each
        write waiting for that lock stalls all of Redis (hundreds of ms at 300k messages,
        measured). Search says it is paused meanwhile; messages written during it are
        indexed when the index comes back."""
        seconds, micros = self._redis.time()
        cutoff_ms = int(seconds) * 1000 + int(micros) // 1000
        self._wait_for_no_fork()
        paused = self._pause_index()
        try:
            deleted, start, check_at = 0, 0, time.monotonic() + _FORK_CHECK_SECONDS
            while True:
                tags = self._redis.zrange(
                    self._layout.user_registry_key, start, start + _USERS_PAGE - 1
                )
                for tag in tags:
                    for cid in self._conversation_ids(str(tag)):
                        deleted += self._clear_conversation(str(tag), cid, cutoff_ms)
                    if time.monotonic() > check_at:  # every 0.2 s: no fork child, pause kept
                        self._wait_for_no_fork()
                        if paused:
                            self._redis.expire(self._layout.index_pause_key, _INDEX_PAUSE_SECONDS)
                        check_at = time.monotonic() + _FORK_CHECK_SECONDS
                if len(tags) < _USERS_PAGE:
                    return deleted
                start += _USERS_PAGE
        finally:
            if paused:
                self._resume_index()

    def _wait_for_no_fork(self) -> None:
        """Wait (at most a minute) while Redis has a forked child: bulk deletes or freeing the
        dropped index then make it copy every page they touch, and another client waited
        319-544 ms with no command or event of Redis's own over 77 ms (measured at 300k
        messages, bench/README.md). Where INFO is refused, or on a cluster (one child per
        shard), it does not wait."""
        if isinstance(self._redis, RedisCluster):
            return
        deadline = time.monotonic() + _FORK_WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                info = self._redis.info("persistence")
            except redis.ResponseError:
                return
            if not any(int(info.get(field, 0)) for field in _FORK_FIELDS):
                return
            time.sleep(_FORK_CHECK_SECONDS / 2)

    def _pause_index(self) -> bool:
        """Drop the index for clear-all (FT.DROPINDEX without DD: RediSearch frees it on a
        background thread and no document is touched). False where there is none to drop."""
        if self._index_missing_reason is not None:
            return False
        self._redis.set(self._layout.index_pause_key, "clear-all", ex=_INDEX_PAUSE_SECONDS)
        try:
            self._redis.execute_command("FT.DROPINDEX", self._layout.index_name)
        except redis.ResponseError as error:
            if "unknown index" not in str(error).lower():
                self._redis.delete(self._layout.index_pause_key)
                raise
        return True

    def _resume_index(self) -> None:
        self._redis.delete(self._layout.index_pause_key)
        self._index_due = 0.0
        self._ensure_index()

    @storage_errors
    def register_existing_users(self) -> int:
        """One-off upgrade step for data written before the user registry existed: SCANs the
        settings keys once and registers their users. Returns how many were added."""
        added = 0
        for key in self._redis.scan_iter(match=self._layout.settings_key("*"), count=1000):
            tag = key[key.index("{") + 1 : key.rindex("}")]
            added += int(self._redis.zadd(self._layout.user_registry_key, {tag: 0}, nx=True) or 0)
            self._redis.hset(key, "registered", 1)
        return added

    def _prune(self, tag: str) -> None:
        """Remove every expired message of a user, in bounded batches."""
        while int(self._read(keys=self._user_keys(tag), args=_prune_only())[6]):
            pass

    # --- searching -------------------------------------------------------------------------

    @property
    def redis_client(self) -> RedisClient:
        return self._redis

    @property
    def index_name(self) -> str:
        return self._layout.index_name

    @property
    def search_unavailable(self) -> str | None:
        """Why no search index can cover every message here (a cluster without a search
        coordinator), or None."""
        return self._index_missing_reason

    @property
    def vectors(self) -> VectorStore | None:
        """The message vectors of the configured embedder (None: no embedder)."""
        return self._vectors

    @storage_errors
    def search(self, user_id: str, text: str, *, limit: int = 20) -> list[SearchHit]:
        """The user's messages, in any of their conversations, best match first: BM25 over
        the words of `text` (stopwords dropped) fused with nearness in meaning when an
        embedder is configured (memory/hybrid.py). Whatever `text` holds is searched as
        words, never parsed as query syntax; text without a content word finds nothing.
        Raises IndexUnavailable where the index cannot cover every message (a cluster
        without a coordinator, or clear-all running)."""
        tag = user_tag(user_id)
        if not isinstance(text, str):
            raise InvalidInput("Search text must be text.")
        _validate_limit(limit)
        found = self.ranked_messages(user_id, text, limit=limit)
        hits = []
        for candidate in found:
            cid = conversation_of_tag(tag, candidate.session_tag)
            if cid is not None and candidate.role in ROLES:
                hits.append((cid, candidate))
        titles = self._titles(tag, {cid for cid, _ in hits})
        terms = content_words(text)
        return [
            SearchHit(
                conversation_id=cid,
                title=titles.get(cid, ""),
                seq=candidate.seq,
                role=ROLES[candidate.role],
                snippet=snippet(candidate.content, terms),
                created_at=candidate.created_at,
            )
            for cid, candidate in hits
        ]

    @storage_errors
    def ranked_messages(
        self,
        user_id: str,
        text: str,
        *,
        conversation_id: str | None = None,
        limit: int = 10,
        exclude_keys: frozenset[str] = frozenset(),
        query_vector: Any = None,
        embed_query: bool = True,
    ) -> list[Candidate]:
        """The user's messages (of one conversation, or all) that best match `text`, best
        first, none of `exclude_keys`. `query_vector` is `text` already embedded (recall
        embeds the prompt once); without it (and with `embed_query`) the configured embedder
        embeds `text`; an unavailable embedder leaves the words alone. Raises
        IndexUnavailable like search."""
        tag = user_tag(user_id)
        if self._index_missing_reason is not None:
            raise IndexUnavailable(self._index_missing_reason)
        if not content_words(text) or not limit:
            return []
        self._ensure_index()
        if self._index_paused:
            self._require_index()  # checked again now: raises while clear-all still runs
        scope = user_scope(tag)
        conversations: str | None = self._layout.conversations_key(tag)
        if conversation_id is not None:
            cid = check_conversation_id(conversation_id)
            scope, conversations = conversation_scope(conversation_tag(tag, cid)), None
        vectors = self._vectors
        if vectors is not None and query_vector is None and embed_query:
            try:
                query_vector = vectors.embedder.embed([text_to_embed(text)])[0]
            except EmbedderUnavailable:
                query_vector = None
        field = vectors.vector_field if vectors is not None else None
        try:
            return self._hybrid.ranked(
                scope, text, vector=query_vector, vector_field=field, limit=limit,
                exclude=exclude_keys, conversations_key=conversations, dated=True,
            )  # fmt: skip
        except redis.ResponseError as error:
            if "no such index" not in str(error).lower():
                raise
            self._require_index()  # paused by clear-all, or gone and now recreated
            return self._hybrid.ranked(
                scope, text, vector=query_vector, vector_field=field, limit=limit,
                exclude=exclude_keys, conversations_key=conversations, dated=True,
            )  # fmt: skip

    def _titles(self, tag: str, ids: set[str]) -> dict[str, str]:
        ordered = sorted(ids)
        pipe = self._redis.pipeline(transaction=False)
        for cid in ordered:
            pipe.hget(self._layout.conversation_key(tag, cid), "title")
        return {cid: title or "" for cid, title in zip(ordered, pipe.execute(), strict=True)}

    # --- reading -------------------------------------------------------------------------

    @storage_errors
    def conversation(
        self,
        user_id: str,
        conversation_id: str,
        *,
        window_size: int | None = None,
        page_size: int = 50,
    ) -> Conversation:
        """What a page render needs, read in one round trip: the conversation's newest
        `page_size` messages, its context window (of `window_size`, or the user's stored size
        when None), counts, its record, the user's settings and usage."""
        tag = user_tag(user_id)
        cid = check_conversation_id(conversation_id)
        if window_size is not None:
            _validate_window(window_size)
        _validate_window(page_size)
        wanted = "" if window_size is None else window_size
        args = ["recent", page_size, 0, wanted, DEFAULT_WINDOW, WORK_BATCH, cid]
        reply = self._read(keys=self._user_keys(tag), args=args)
        if int(reply[6]):
            self._prune(tag)
            reply = self._read(keys=self._user_keys(tag), args=args)
        return self._reader.conversation(user_id, cid, reply, page_size)

    @storage_errors
    def page_view(
        self, user_id: str, conversation_id: str | None, *, page_size: int, list_limit: int
    ) -> PageView:
        """Everything a page render reads, in one script call: the conversation (its newest
        `page_size` messages, window of the user's stored size, settings, retention, usage,
        row), a page of up to `list_limit` conversations of the list and the summary state.
        `conversation_id=None` opens the user's most recently active conversation or, when
        there is none, a fresh id (nothing is stored until its first prompt). Expired
        messages past one batch, or a list of an earlier release, cost further calls."""
        tag = user_tag(user_id)
        cid = "" if conversation_id is None else check_conversation_id(conversation_id)
        _validate_window(page_size)
        _validate_limit(list_limit)
        args = [cid, new_conversation_id(), page_size, DEFAULT_WINDOW, WORK_BATCH, list_limit]
        reply = self._page(keys=self._user_keys(tag), args=args)
        if int(reply[1][6]):
            self._prune(tag)
            reply = self._page(keys=self._user_keys(tag), args=args)
        opened, view, page, enabled, checkpoint = reply
        if page is None:
            listing = self.conversations(user_id, limit=list_limit)
        else:
            total = listing_head(page[0])[0] if page else 0
            listing = conversation_list(page, list_limit, total)
        return PageView(
            conversation=self._reader.conversation(user_id, str(opened), view, page_size),
            conversations=listing,
            summary=summary_state(enabled, pairs(checkpoint)),
        )

    # --- a chat turn: two script calls -----------------------------------------------------

    @storage_errors
    def begin_turn(
        self,
        user_id: str,
        conversation_id: str,
        *,
        policy: LimitPolicy,
        reply_tokens: int,
        prompt: str | None = None,
        message_id: str | None = None,
        replace_from: int | None = None,
        expect_last_seq: int | None = None,
        window_size: int | None = None,
        request_id: str | None = None,
        keep_replaced: bool = False,
    ) -> TurnStart:
        """Begin a chat turn in one atomic script call: admit one model request under the
        user's limits (`policy`, already scaled for admins), reserving the window's tokens
        plus `reply_tokens`; remove what an edit or regenerate replaces (the messages with
        seq >= `replace_from`, at most two); store `prompt` (None: ask for a reply again)
        under `message_id`; and read the request's window (`window_size`, None: the user's
        stored size) and summary state. Settle it with finish_turn, whatever the model does.
        `keep_replaced` (an edit of any prompt: `replace_from` is its seq): what it replaces,
        the prompt and everything after it, is kept as the earlier version of a branch
        (memory/branches.py) instead of removed, up to MAX_BRANCH_TAIL messages.

        Refused with nothing reserved or written: LimitExceeded, StaleTarget (the newest
        message is no longer `expect_last_seq`), StorageLimitReached, InvalidInput.
        `request_id` (default: the prompt's message id, else a fresh one) makes it
        exactly-once: begun again with the same ids (after WriteOutcomeUnknown), it holds one
        reservation and stores the prompt once, and returns the same start."""
        tag = user_tag(user_id)
        ask = self._turn_ask(
            user_id, tag, conversation_id, policy, reply_tokens, prompt, message_id,
            replace_from, expect_last_seq, window_size, request_id, keep_replaced,
        )  # fmt: skip
        default_system = self._reader.default_system().token_count
        args = ask.args(WORK_BATCH, DEFAULT_WINDOW, default_system)
        key = ask.prompt.key if ask.prompt else self._layout.settings_key(tag)
        if ask.prompt:
            self._ensure_index()
        reply = self._write(tag, self._begin_turn, key, args)
        refused = begin_refusal(reply, ask)
        if refused is not None:
            raise refused
        if ask.prompt and not int(reply[6]):
            self._register_stored(tag, int(reply[4]))
        return turn_start(self._reader, user_id, ask, reply, new_message_id())

    def _turn_ask(
        self,
        user_id: str,
        tag: str,
        conversation_id: str,
        policy: LimitPolicy,
        reply_tokens: int,
        prompt: str | None,
        message_id: str | None,
        replace_from: int | None,
        expect_last_seq: int | None,
        window_size: int | None,
        request_id: str | None,
        keep_replaced: bool = False,
    ) -> TurnAsk:
        cid = check_conversation_id(conversation_id)
        new = None
        if prompt is not None:
            new = self._writer.new(user_id, tag, cid, Role.USER, prompt, message_id=message_id)
        if replace_from is not None:
            _validate_seq(replace_from)
        if keep_replaced and (replace_from is None or new is None):
            raise InvalidInput("Keeping a branch needs the prompt edited and its new text.")
        if isinstance(reply_tokens, bool) or not isinstance(reply_tokens, int) or reply_tokens < 0:
            raise InvalidInput("The tokens reserved for a reply are a whole number from 0.")
        return TurnAsk(
            conversation_id=cid,
            request_id=check_message_id(
                request_id or (new.message_id if new else new_message_id())
            ),
            window_size="" if window_size is None else _validate_window(window_size),
            replace_from="" if replace_from is None else replace_from,
            expect_last_seq=_expected_seq(expect_last_seq),
            policy=policy,
            reply_tokens=reply_tokens,
            prompt=new,
            keep_replaced=keep_replaced,
        )

    @storage_errors
    def finish_turn(
        self,
        start: TurnStart,
        *,
        reply: str | None,
        used_tokens: int,
        usage: Usage | None = None,
    ) -> Message | None:
        """Finish a turn begun by begin_turn in one atomic script call: settle its reservation
        to `used_tokens` (what the model reported, or the app's count; 0 when it failed before
        any) and store `reply` with its `usage` under `start.reply_id`. `reply=None` (the
        model failed or was stopped) only settles. Exactly-once: finished again with the same
        start (after WriteOutcomeUnknown), it settles once and stores the reply once.

        Returns the stored reply, or None. The settling stands when the reply cannot be
        stored: StorageLimitReached, InvalidInput (e.g. an empty reply)."""
        tag = user_tag(start.user_id)
        try:
            new = None if reply is None else self._writer.new(
                start.user_id, tag, start.conversation_id, Role.ASSISTANT, reply,
                message_id=start.reply_id, usage=usage,
            )  # fmt: skip
        except InvalidInput:
            self.finish_turn(start, reply=None, used_tokens=used_tokens)
            raise
        held = start.reservation
        args = [
            start.conversation_id, held.request_id, held.day, max(int(used_tokens), 0),
            held.tokens, WORK_BATCH, *(new.args if new else ()),
        ]  # fmt: skip
        if new is None:
            self._write(tag, self._finish_turn, self._layout.settings_key(tag), args)
            return None
        self._ensure_index()
        return self._stored(tag, new, self._write(tag, self._finish_turn, new.key, args))

    def context_window(self, user_id: str, conversation_id: str, size: int) -> ContextWindow:
        """The system instruction plus the conversation's last `size` messages, exactly as
        the model gets them."""
        return self.conversation(user_id, conversation_id, window_size=size, page_size=0).window

    def count(self, user_id: str, conversation_id: str) -> int:
        return self.conversation(
            user_id, conversation_id, window_size=0, page_size=0
        ).total_messages

    def system_instruction(self, user_id: str) -> SystemInstruction:
        return self._settings_view(user_id).window.system

    def retention(self, user_id: str) -> Retention:
        """The user's policy and, with one set, when their oldest message expires."""
        return self._settings_view(user_id).retention

    def _settings_view(self, user_id: str) -> Conversation:
        """A read of the user's settings alone (no conversation's messages)."""
        return self.conversation(user_id, LEGACY_CONVERSATION_ID, window_size=0, page_size=0)

    @storage_errors
    def messages(self, user_id: str, conversation_id: str) -> list[Message]:
        """The whole conversation, oldest first, read in batches."""
        tag = user_tag(user_id)
        cid = check_conversation_id(conversation_id)
        keys = self._user_keys(tag)
        result: list[Message] = []
        after = 0
        self._prune(tag)
        while True:
            args = ["after", _READ_BATCH, after, 0, 0, WORK_BATCH, cid]
            rows = self._read(keys=keys, args=args)[2]
            batch = self._reader.messages(rows)
            result.extend(batch)
            if len(rows) < 2 * _READ_BATCH:
                return result
            after = batch[-1].seq if batch else after + _READ_BATCH


def _prune_only() -> list[Any]:
    return ["recent", 0, 0, 0, 0, WORK_BATCH, LEGACY_CONVERSATION_ID]


def _validate_seq(seq: int) -> int:
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise InvalidInput("A message sequence number is a whole number from 1.")
    return seq


def _expected_seq(expect_last_seq: int | None) -> int | str:
    """The stale check's argument: the seq the page showed, or '' for no check."""
    if expect_last_seq is None:
        return ""
    if (
        isinstance(expect_last_seq, bool)
        or not isinstance(expect_last_seq, int)
        or expect_last_seq < 0
    ):
        raise InvalidInput("The newest message's sequence number is a whole number from 0.")
    return expect_last_seq
