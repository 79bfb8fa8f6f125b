"""Recall by meaning on a LoCoMo-format file (issue 27), every method over the same Redis:

    python -m bench.recall --dataset FILE [--json OUT] [--max-sessions N] [--questions N]
    python -m bench.recall --memory-at 10000   # bytes a vector adds at that many messages
    python -m bench.recall --dataset FILE --latency-at 10000   # one user with that many

Methods: `words` (BM25 over the content words), `vectors` (KNN over the stored vectors),
`turns` (the hybrid fusion of turns alone, without the conversation-level words score and the
date boost: what the search box ranked with before), `hybrid` (what the search box ranks
with), `recall` (exactly what a request recalls, scope "all my conversations", asked for 10).
Prints turn recall@5/@10, session hit@5, recall@10 per question category, p50/p95 latency of
each method (the question embedded included), the append p50 (embedding is off the write path)
and the background embedding per message, and Redis bytes per message before and after the
vectors. `--json` writes every question's ranked dia_ids per method. `--latency-at N` loads the
file's turns again and again into one user (a new conversation per session) up to N messages
and times, interleaved in random order, the ranking by turns alone against the hybrid ranking
(its per-conversation words queries included), words only, so that only Redis's work differs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import redis

from bench.locomo import Loaded, Question, load
from bench.server import embedded_redis
from chatbot.embedders import OfflineEmbedder
from memory import ChatMemory, SystemInstruction, create_redis_client
from memory.connection import RedisTarget
from memory.hybrid import Candidate, user_scope
from memory.keys import user_tag
from memory.recall import Recall, RecallScope
from memory.vector_store import VectorStore

METHODS = ("words", "vectors", "turns", "hybrid", "recall")
RANKED = 10


def quantile(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else 0.0
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def embed_all(vectors: VectorStore) -> list[float]:
    """Embed the whole backlog in the worker's batches; seconds per message of each batch."""
    per_message: list[float] = []
    while True:
        began = time.perf_counter()
        stored = vectors.embed_batch()
        if not stored:
            return per_message
        per_message += [(time.perf_counter() - began) / stored] * stored


def methods(memory: ChatMemory, client: redis.Redis) -> dict[str, Callable[[Question], list]]:
    vectors = memory.vectors
    assert vectors is not None
    hybrid = memory._hybrid
    recall = Recall(memory, client, memory._layout.index_name, max_messages=RANKED)

    def embedded(question: Question):  # type: ignore[no-untyped-def]
        return vectors.embedder.embed([question.text])[0]

    return {
        "words": lambda q: hybrid.by_words(user_scope(user_tag(q.user)), q.text, RANKED),
        "vectors": lambda q: hybrid.by_vector(
            user_scope(user_tag(q.user)), embedded(q), vectors.vector_field, RANKED
        ),
        "turns": lambda q: hybrid.ranked(
            user_scope(user_tag(q.user)),
            q.text,
            vector=embedded(q),
            vector_field=vectors.vector_field,
            limit=RANKED,
        ),
        "hybrid": lambda q: memory.ranked_messages(q.user, q.text, limit=RANKED),
        "recall": lambda q: list(
            recall.find(q.user, "ffff", q.text, scope=RecallScope.ALL).messages
        ),
    }


def score(loaded: Loaded, runs: dict[str, dict[int, list[str]]]) -> dict[str, dict]:
    results: dict[str, dict] = {}
    for method, ranked in runs.items():
        r5, r10, hit5 = [], [], []
        by_category: dict[int, list[float]] = defaultdict(list)
        for index, question in enumerate(loaded.questions):
            turns = ranked[index]
            wanted = set(question.evidence)
            sessions = {loaded.session_of_turn[f"{question.user}/{t}"] for t in wanted}
            found5 = {loaded.session_of_turn.get(f"{question.user}/{t}") for t in turns[:5]}
            r5.append(len(wanted & set(turns[:5])) / len(wanted))
            r10.append(len(wanted & set(turns[:10])) / len(wanted))
            hit5.append(float(bool(sessions & found5)))
            by_category[question.category].append(r10[-1])
        results[method] = {
            "turn_recall@5": statistics.fmean(r5),
            "turn_recall@10": statistics.fmean(r10),
            "session_hit@5": statistics.fmean(hit5),
            "recall@10_by_category": {
                c: statistics.fmean(v) for c, v in sorted(by_category.items())
            },
        }
    return results


def run(memory: ChatMemory, client: redis.Redis, loaded: Loaded) -> tuple[dict, dict]:
    runs: dict[str, dict[int, list[str]]] = {m: {} for m in METHODS}
    latency: dict[str, list[float]] = {m: [] for m in METHODS}
    named = methods(memory, client)
    for index, question in enumerate(loaded.questions):
        for method in METHODS:
            began = time.perf_counter()
            found: list[Candidate] = named[method](question)
            latency[method].append(time.perf_counter() - began)
            runs[method][index] = [loaded.turn_of_key.get(c.key, "?") for c in found]
    return runs, latency


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


class RandomUnitVectors:
    """Vectors of the offline model's shape without running it (memory is all it measures)."""

    model, dimensions = "random-unit", 384

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.random.default_rng(len(texts)).random((len(texts), 384), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def memory_at(messages: int) -> dict[str, float]:
    """Redis bytes per message without and with vectors, at `messages` messages of ~300
    characters (100 per user), after RediSearch's garbage collection: a small data set
    overstates what a vector costs (the FLAT index reserves 256 vectors at a time)."""
    with embedded_redis() as server:
        client = create_redis_client(RedisTarget(url=server.url))
        memory = ChatMemory(client, default_system=SystemInstruction("x"), index_name="mem",
                            embedder=RandomUnitVectors())  # fmt: skip
        words, start = [f"w{n}" for n in range(5000)], used_memory(client)
        for n in range(messages):
            text = " ".join(words[(n * 7 + k * 13) % 5000] for k in range(60))
            role = "user" if n % 2 == 0 else "assistant"
            memory.append(f"user{n // 100}", role, text, conversation_id="abc")
        plain = _collected(client)
        assert memory.vectors is not None
        while memory.vectors.embed_batch(500):
            pass
        embedded = _collected(client)
        client.close()
    return {"without_vectors": (plain - start) / messages,
            "vectors_add": (embedded - plain) / messages}  # fmt: skip


def latency_at(dataset: Path, messages: int, rounds: int = 300) -> dict[str, dict[str, float]]:
    """p50/p95 ms of `turns` and `hybrid` (words only) for one user with `messages` messages."""
    samples = json.loads(dataset.read_text(encoding="utf-8"))
    sessions = [
        turns
        for sample in samples
        for name, turns in sample["conversation"].items()
        if name.startswith("session_") and isinstance(turns, list)
    ]
    questions = [str(item["question"]) for sample in samples for item in sample.get("qa", [])]
    with embedded_redis() as server:
        client = create_redis_client(RedisTarget(url=server.url))
        memory = ChatMemory(client, default_system=SystemInstruction("x"), index_name="lat")
        written, round_ = 0, 0
        while written < messages:
            for number, turns in enumerate(sessions):
                cid = f"{round_:04x}{number:04x}"
                for turn in turns[: messages - written]:
                    memory.append("heavy", "user", f"{turn['speaker']}: {turn['text']}",
                                  conversation_id=cid)  # fmt: skip
                    written += 1
            round_ += 1
        time.sleep(1)  # the index catches up
        scope = user_scope(user_tag("heavy"))
        contenders: dict[str, Callable[[str], object]] = {
            "turns": lambda q: memory._hybrid.ranked(scope, q, limit=RANKED),
            "hybrid": lambda q: memory.ranked_messages("heavy", q, limit=RANKED),
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        rng = random.Random(27)
        for round_ in range(rounds + 20):
            question = rng.choice(questions)
            for name in rng.sample(list(contenders), len(contenders)):
                began = time.perf_counter()
                contenders[name](question)
                if round_ >= 20:  # warm-up discarded
                    times[name].append(time.perf_counter() - began)
        client.close()
    return {name: ms(values) for name, values in times.items()}


def _collected(client: redis.Redis) -> int:
    time.sleep(1)
    for _ in range(3):
        client.execute_command("FT.DEBUG", "GC_FORCEINVOKE", "mem")
    time.sleep(1)
    return used_memory(client)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--memory-at", type=int, metavar="MESSAGES")
    parser.add_argument("--latency-at", type=int, metavar="MESSAGES")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--max-sessions", type=int)
    parser.add_argument("--questions", type=int, help="score only the first N questions")
    args = parser.parse_args(argv)
    if args.memory_at:
        sizes = memory_at(args.memory_at)
        print(f"{args.memory_at} messages: {sizes['without_vectors']:.0f} B per message, "
              f"vectors add {sizes['vectors_add']:.0f} B")  # fmt: skip
        return sizes
    if args.dataset is None:
        parser.error("--dataset FILE (or --memory-at N) is needed")
    if args.latency_at:
        timed = latency_at(args.dataset, args.latency_at)
        ratio = timed["hybrid"]["p50"] / timed["turns"]["p50"]
        print(f"one user, {args.latency_at} messages, words only (ms): "
              + ", ".join(f"{n} p50 {t['p50']:.2f} p95 {t['p95']:.2f}" for n, t in timed.items())
              + f"; hybrid/turns p50 {ratio:.2f}x")  # fmt: skip
        return timed
    with embedded_redis() as server:
        client = create_redis_client(RedisTarget(url=server.url))
        memory = ChatMemory(client, default_system=SystemInstruction("You help."),
                            index_name="recallbench", embedder=OfflineEmbedder())  # fmt: skip
        assert memory.vectors is not None
        memory.vectors.embedder.embed(["warm up"])
        before = used_memory(client)
        loaded = load(memory, args.dataset, args.max_sessions)
        time.sleep(0.5)  # the index catches up with the last writes
        words_only = used_memory(client)
        embedding = embed_all(memory.vectors)
        with_vectors = used_memory(client)
        loaded.questions = loaded.questions[: args.questions]
        runs, latency = run(memory, client, loaded)
        memory_use = (before, words_only, with_vectors)
        report = summary(args.dataset, loaded, runs, latency, embedding, memory_use)
        client.close()
    print_report(report)
    if args.json:
        ranked = [
            {"question": q.text, "category": q.category, "evidence": list(q.evidence)}
            | {m: runs[m][i] for m in METHODS}
            for i, q in enumerate(loaded.questions)
        ]
        args.json.write_text(json.dumps({"summary": report, "ranked": ranked}, indent=1))
    return report


def ms(samples: list[float]) -> dict[str, float]:
    return {"p50": quantile(samples, 50) * 1000, "p95": quantile(samples, 95) * 1000}


def summary(dataset: Path, loaded: Loaded, runs: dict, latency: dict, embedding: list[float],
            memory_use: tuple[int, int, int]) -> dict:  # fmt: skip
    before, words_only, with_vectors = memory_use
    messages = len(loaded.turn_of_key)
    return {
        "dataset": str(dataset),
        "messages": messages,
        "questions": len(loaded.questions),
        "questions_skipped_without_evidence": loaded.skipped_questions,
        "evidence_ids_dropped": loaded.dropped_evidence,
        "methods": score(loaded, runs),
        "latency_ms": {m: ms(v) for m, v in latency.items()},
        "append_ms": ms(loaded.append_seconds),
        "background_embed_ms_per_message": ms(embedding),
        "redis_bytes_per_message": {
            "without_vectors": (words_only - before) / messages,
            "vectors_add": (with_vectors - words_only) / messages,
        },
    }


def print_report(report: dict) -> None:
    print(f"{report['dataset']}: {report['messages']} messages, {report['questions']} questions "
          f"({report['questions_skipped_without_evidence']} without evidence skipped, "
          f"{report['evidence_ids_dropped']} evidence ids dropped)")  # fmt: skip
    print(f"{'method':8} {'r@5':>6} {'r@10':>6} {'sess@5':>7} {'p50 ms':>7} {'p95 ms':>7}  "
          "r@10 by category")  # fmt: skip
    for method, m in report["methods"].items():
        lat = report["latency_ms"][method]
        cats = " ".join(f"{c}:{v:.0%}" for c, v in m["recall@10_by_category"].items())
        print(f"{method:8} {m['turn_recall@5']:6.1%} {m['turn_recall@10']:6.1%} "
              f"{m['session_hit@5']:7.1%} {lat['p50']:7.2f} {lat['p95']:7.2f}  {cats}")  # fmt: skip
    b = report["redis_bytes_per_message"]
    print(f"append p50 {report['append_ms']['p50']:.2f} ms (no embedding on the write path); "
          f"background embedding {report['background_embed_ms_per_message']['p50']:.1f} ms per "
          f"message; Redis {b['without_vectors']:.0f} B per message, vectors add "
          f"{b['vectors_add']:.0f} B")  # fmt: skip


if __name__ == "__main__":
    main()
