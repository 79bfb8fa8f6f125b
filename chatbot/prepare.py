"""`python -m chatbot.prepare`: check the configuration and start the local Redis if none is
configured, before `streamlit run` (the Makefile's `run` target calls it)."""

from __future__ import annotations

import sys

from dotenv import load_dotenv

from chatbot.config import ConfigError, Environment
from chatbot.llm import ModelConfig
from chatbot.services import resolve_redis_target
from memory.embedded import EmbeddedRedisError


def main() -> int:
    load_dotenv(override=False)
    env = Environment.current()
    try:
        target = resolve_redis_target(env)
        model = ModelConfig.from_env(env)
    except (ConfigError, EmbeddedRedisError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Redis: {target.safe_url or target.describe()}")  # never the password
    print(f"Model: {model.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
