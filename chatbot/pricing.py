"""What a reply costs, from configurable per-million-token prices."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prices:
    """USD per one million tokens; defaults are GPT-4o list prices."""

    input_per_mtok: float = 2.50
    output_per_mtok: float = 10.00

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok
        ) / 1_000_000
