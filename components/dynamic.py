"""Plumbing shared by bluegreen's dynamic providers.

The engine hands a provider property bags in which numbers are floats and, in a preview, values not
known yet are `pulumi.output.Unknown` objects (a stack's first preview has many). check and diff
accept them: an unknown value is "will change", never iterated or compared.
"""

from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult
from pulumi.output import contains_unknowns


def is_known(value: Any) -> bool:
    return not contains_unknowns(value)


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
    """The fields of `owned` whose new value differs from the old one, or is not known yet."""
    return [
        name
        for name in owned
        if not is_known(news.get(name)) or normalized(olds.get(name)) != normalized(news.get(name))
    ]


class BluegreenProvider(ResourceProvider):
    """create and update run `apply` and keep every input beside its outputs; diff looks at `intent` only."""

    intent: tuple[str, ...] = ()
    """Inputs whose change re-runs `apply`; the others (timeouts, poll intervals) only ride along."""

    def resource_id(self, props: dict[str, Any]) -> str:
        raise NotImplementedError

    def apply(self, props: dict[str, Any]) -> dict[str, Any]:
        """Does the work; returns the outputs."""
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=self.resource_id(props), outs={**props, **self.apply(props)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=bool(changed_fields(olds, news, self.intent)), replaces=[])

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={**news, **self.apply(news)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)
