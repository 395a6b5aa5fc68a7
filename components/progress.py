"""Progress lines for long provider operations.

Dynamic providers have no connection to the engine's log, but the engine streams each
line a provider process writes to stderr to the user, so that is where progress goes.
"""

import sys


def report(source: str, message: str) -> None:
    print(f"[{source}] {message}", file=sys.stderr, flush=True)


def masked(text: str, secrets: list[str]) -> str:
    """The text with every secret value replaced, for anything that reaches the user."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    return text
