"""What a reply costs: configured prices, or the list price of a model we know, else nothing.

A local or unknown model shows no cost at all rather than a made-up one.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatbot.config import Environment

# USD per 1M (prompt, completion) tokens, standard list prices; the longest prefix match wins.
LIST_PRICES = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
}


@dataclass(frozen=True)
class Prices:
    """USD per one million tokens and whose prices they are."""

    input_per_mtok: float
    output_per_mtok: float
    source: str

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok
        ) / 1_000_000

    @classmethod
    def from_env(cls, env: Environment, model: str, vendor: str | None) -> Prices | None:
        """PRICE_*_PER_MTOK when set; else `vendor`'s list price for a model we know (vendor
        None: a server of unknown price, such as a local one); else None."""
        names = ("PRICE_INPUT_PER_MTOK", "PRICE_OUTPUT_PER_MTOK")
        if any(env.is_set(name) for name in names):
            prompt, completion = (env.get_float(n) if env.is_set(n) else 0.0 for n in names)
            return cls(prompt, completion, source="prices set in PRICE_*_PER_MTOK")
        name = model.strip().lower()
        matches = [prefix for prefix in LIST_PRICES if name.startswith(prefix)]
        if vendor is None or not matches:
            return None
        prefix = max(matches, key=len)
        prompt, completion = LIST_PRICES[prefix]
        return cls(prompt, completion, f"{vendor} list price of {prefix}")
