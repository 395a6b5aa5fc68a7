"""Push-to-deploy path filters (`settings.gitHub.paths`), matched the way Pulumi Deployments documents them.

Each filter is a glob matched against the whole path of a changed file, relative to the repository root;
`infrastructure/**` matches every file under `infrastructure/`. A filter starting with `!` excludes. A
file matches when it matches an include filter (or there is none) and no exclude filter; a push deploys
when any changed file matches (pulumi.com/docs/deployments/concepts/settings/path-filtering).

The wildcards are those of Go's doublestar globs, which the documented examples follow: `*` any run of
characters within one path segment, `?` one character but `/`, `[...]` a class (`[!...]` or `[^...]`
negated), `{a,b}` alternatives, `\\` escapes, and `**` as a whole segment any number of segments (none
included), so `a/**` also matches `a` and `**/b` matches `b`.
"""

import re
from functools import cache

DOUBLE_STAR = "**"


def _closing(text: str, start: int, opening: str, closing: str) -> int:
    """Index of the bracket that closes the one at `start`, skipping nested ones and escapes."""
    depth, index = 0, start
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        depth += text[index] == opening
        depth -= text[index] == closing
        if depth == 0:
            return index
        index += 1
    raise ValueError(f"unclosed {opening!r} in glob {text!r}")


def _alternatives(body: str) -> list[str]:
    """`a,b{c,d}` -> ["a", "b{c,d}"]: split on the commas outside nested braces."""
    parts, depth, current, index = [], 0, "", 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            current += body[index : index + 2]
            index += 2
            continue
        depth += char == "{"
        depth -= char == "}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    return [*parts, current]


def _segment(glob: str) -> str:
    """Regex of one path segment's glob: nothing in it matches `/`."""
    regex, index = "", 0
    while index < len(glob):
        char = glob[index]
        if char == "\\" and index + 1 < len(glob):
            regex += re.escape(glob[index + 1])
            index += 2
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = _closing(glob, index, "[", "]")
            body = glob[index + 1 : end]
            negated = body[:1] in ("!", "^")
            members = re.sub(r"([\\\]\[^])", r"\\\1", body[1:] if negated else body)
            regex += f"(?!/)[{'^' if negated else ''}{members}]"
            index = end
        elif char == "{":
            end = _closing(glob, index, "{", "}")
            regex += "(?:" + "|".join(_segment(part) for part in _alternatives(glob[index + 1 : end])) + ")"
            index = end
        else:
            regex += re.escape(char)
        index += 1
    return regex


@cache
def glob_regex(glob: str) -> re.Pattern[str]:
    """The whole-path regex of a filter's glob (without its `!`)."""
    segments = glob.split("/")
    regex = ""
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment != DOUBLE_STAR:
            regex += _segment(segment)
            trailing_double_star_next = index + 1 == len(segments) - 1 and segments[-1] == DOUBLE_STAR
            if not last and not trailing_double_star_next:
                regex += "/"
        elif len(segments) == 1:
            regex += ".*"
        elif last:
            regex += "(?:/.*)?"
        else:
            regex += "(?:[^/]+/)*"
    return re.compile(regex)


def file_matches(filters: list[str], path: str) -> bool:
    """Whether a changed file counts: it matches an include filter (or there is none) and no exclude."""
    includes = [glob for glob in filters if not glob.startswith("!")]
    excludes = [glob[1:] for glob in filters if glob.startswith("!")]
    included = not includes or any(glob_regex(glob).fullmatch(path) for glob in includes)
    return included and not any(glob_regex(glob).fullmatch(path) for glob in excludes)


def push_deploys(filters: list[str], changed: list[str]) -> bool:
    """Whether a push that changed these files triggers a deployment."""
    return any(file_matches(filters, path) for path in changed)
