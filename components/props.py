"""Helpers for the property bags the engine hands to dynamic providers."""

from typing import Any


def normalized(value: Any) -> Any:
    """Numbers arrive as floats from the engine and as ints from Python: compare them alike."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: normalized(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [normalized(item) for item in value]
    return value


def changed_fields(olds: dict[str, Any], news: dict[str, Any], owned: tuple[str, ...]) -> list[str]:
    """The fields of `owned` whose values differ between old state and new inputs."""
    return [field for field in owned if normalized(olds.get(field)) != normalized(news.get(field))]
