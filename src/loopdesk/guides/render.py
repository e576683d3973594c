"""One reply, three renderings: the guide's wording, from Jinja2 templates.

Templates live at `templates/<channel>/<message>.j2` in the package; a merchant's folder
with the same layout (`LOOPDESK_GUIDE_TEMPLATES_DIR`) overrides any of them, file by
file. Per channel, `_layout.j2` frames a message (the email's greeting and sign-off, the
SMS's shop name), `sms/_quick_replies.j2` words the quick replies in an SMS, and any
other `_*.j2` file holds macros the templates import.

`Renderer.load` checks every template before the guide answers anyone: each message of
the catalogue (`guides.messages`) has a template on every channel, each parses, reads no
variable its message's sample lacks (also in branches the sample does not take, and keys
inside the variables) and renders with the sample and its variants. Any problem is a
`ConfigError` naming the file, the line and the variable.

Output is plain text on every channel (no HTML, no markup, nothing escaped). A URL in the
output is one the reply's links or variables carry (flows fill them from Loop's data) or
one a merchant wrote in a template: the renderer never makes one up.
"""

from __future__ import annotations

import difflib
import re
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
    nodes,
)

from loopdesk.errors import ConfigError, LoopdeskError
from loopdesk.guides.messages import GLOBALS, MESSAGES, MessageSpec, missing_keys
from loopdesk.guides.reply import CHANNELS, Channel, Link, Reply
from loopdesk.guides.sms import SMS_LIMIT, fit_sms

SUFFIX = ".j2"
LAYOUT = "_layout.j2"
SMS_QUICK_REPLIES = "_quick_replies.j2"
# What a layout reads besides: the rendered message, the reply's links it does not
# print, and the customer's first name ("" when unknown).
LAYOUT_VARS = ("body", "extra_links", "first_name")

# What the check renders the layouts with, besides each message's sample.
_CHECK_LINKS = (
    Link("https://company.loopreturns.com/#/return/3f1c9a52-8d7e-5b6a-9c41", "Your return"),
)
_CHECK_QUICK_REPLIES = ("Where's my return?", "Start a return", "Talk to a person")
_CHECK_NAME = "Jane Doe"

_LIST_ITEM = re.compile(r"(?:[-*•]|\d{1,2}[.)])\s")


class RenderError(LoopdeskError):
    """A reply could not be rendered: the flow's variables break the message's contract
    or a template failed; `details` name the message, the template and the line."""

    code = "render_error"


@dataclass(frozen=True)
class TemplateProblem:
    path: str
    line: int | None
    reason: str
    variable: str | None = None

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.reason}"
            if self.line
            else f"{self.path}: {self.reason}"
        )


class TemplatesError(ConfigError):
    """The guide's templates are unusable; `problems` lists each, in file order."""

    def __init__(self, problems: Sequence[TemplateProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(
            f"guide templates: {len(self.problems)} problem(s)\n{lines}",
            details={"problems": [asdict(p) for p in self.problems]},
        )


@dataclass(frozen=True)
class TemplateSource:
    """Which file words a message on a channel."""

    message: str
    channel: Channel
    path: str
    overridden: bool


def join_words(items: Sequence[Any], last: str = " and ", sep: str = ", ") -> str:
    """`["a", "b", "c"]|join_words(" or ")` reads "a, b or c" (the words are the template's)."""
    words = [str(item) for item in items]
    if len(words) <= 1:
        return "".join(words)
    return sep.join(words[:-1]) + last + words[-1]


class Renderer:
    """The checked templates of every channel; `render` is pure and thread-safe."""

    def __init__(
        self,
        environments: dict[Channel, Environment],
        override_dir: Path | None,
        shop_name: str,
    ) -> None:
        self._environments = environments
        self._override_dir = override_dir
        self.shop_name = shop_name

    @classmethod
    def load(cls, *, override_dir: Path | None, shop_name: str) -> Renderer:
        """The built-in templates, with `override_dir`'s in their place; checked.

        Raises `TemplatesError` (a `ConfigError`) listing every problem found."""
        problems = _folder_problems(override_dir) if override_dir is not None else []
        if override_dir is not None and not override_dir.is_dir():
            raise TemplatesError(problems)
        environments = {
            channel: _environment(channel, override_dir, shop_name) for channel in CHANNELS
        }
        renderer = cls(environments, override_dir, shop_name)
        problems += renderer._check()
        if problems:
            raise TemplatesError(list(dict.fromkeys(problems)))
        return renderer

    @staticmethod
    def messages() -> dict[str, MessageSpec]:
        """The catalogue the templates are checked against."""
        return dict(MESSAGES)

    def templates(self) -> list[TemplateSource]:
        """Every message's template per channel, and whether the merchant's folder gave it."""
        sources = []
        for name in MESSAGES:
            for channel in CHANNELS:
                path = self._path(channel, name + SUFFIX)
                overridden = self._override_dir is not None and Path(path).is_relative_to(
                    self._override_dir
                )
                sources.append(TemplateSource(name, channel, path, overridden))
        return sources

    def render(self, reply: Reply, channel: Channel, *, customer_name: str = "") -> str:
        """The reply's text on `channel`. Raises `RenderError` when the reply's variables
        lack what its message's sample has, or a template fails."""
        spec = MESSAGES.get(reply.message)
        if spec is None:
            raise RenderError(f"no message is named {reply.message!r}")
        missing = missing_keys(spec.sample, reply.vars)
        if missing:
            raise RenderError(
                f"{reply.message}: the reply's vars lack {', '.join(missing)}",
                details={"message": reply.message, "missing": missing},
            )
        environment = self._environments[channel]
        context: dict[str, Any] = {
            **reply.vars,
            "customer_name": customer_name,
            "links": reply.links,
            "quick_replies": reply.quick_replies,
        }
        body = _tidy(self._run(environment, reply.message + SUFFIX, context), channel, wrap=True)
        if not body:  # never an empty message to a customer
            path = self._path(channel, reply.message + SUFFIX)
            raise RenderError(f"{path}: renders no text", details={"template": path})
        # The greeting's name: the first word of the profile's name, unless it is an address.
        names = [word for word in customer_name.split() if "@" not in word]
        text = self._run(
            environment,
            LAYOUT,
            {
                **context,
                "body": body,
                "extra_links": tuple(link for link in reply.links if link.url not in body),
                "first_name": names[0] if names else "",
            },
        )
        text = _tidy(text, channel, wrap=False)
        if channel != "sms":
            return text
        text = fit_sms(text, [link.url for link in reply.links], SMS_LIMIT)
        if reply.quick_replies and not _numbered(text, len(reply.quick_replies)):
            # Only in room left over: never at the cost of the answer or its links, and
            # not when the text numbers its choices itself ("1) Refund, 2) ...").
            offer = _tidy(self._run(environment, SMS_QUICK_REPLIES, context), channel, wrap=True)
            if offer and len(text) + 1 + len(offer) <= SMS_LIMIT:
                text = f"{text}\n{offer}"
        return text

    def _run(self, environment: Environment, name: str, context: dict[str, Any]) -> str:
        try:
            template: Template = environment.get_template(name)
            return template.render(context)
        except TemplateNotFound:
            raise RenderError(f"no template {name}", details={"template": name}) from None
        except Exception as exc:  # a template's failure, whatever it raised
            path, line = _template_frame(exc)
            where = f"{path or name}:{line}" if line else (path or name)
            raise RenderError(
                f"{where}: {_reason(exc)}",
                details={"template": path or name, "line": line},
            ) from exc

    def _path(self, channel: Channel, name: str) -> str:
        environment = self._environments[channel]
        assert environment.loader is not None
        _, filename, _ = environment.loader.get_source(environment, name)
        return filename or name

    # The start-up check.

    def _check(self) -> list[TemplateProblem]:
        problems: list[TemplateProblem] = []
        for channel, environment in self._environments.items():
            frames = [LAYOUT] + ([SMS_QUICK_REPLIES] if channel == "sms" else [])
            frame_problems: list[TemplateProblem] = []
            for frame in frames:
                frame_problems += _static_problems(
                    environment, frame, allowed=(*GLOBALS, *LAYOUT_VARS), sample=None
                )
            partials = [
                name
                for name in environment.list_templates(extensions=["j2"])
                if name.startswith("_") and name not in frames
            ]
            for partial in partials:
                frame_problems += _static_problems(
                    environment, partial, allowed=GLOBALS, sample=None
                )
            problems += frame_problems
            for name, spec in MESSAGES.items():
                static = _static_problems(
                    environment, name + SUFFIX, allowed=(*GLOBALS, *spec.sample), sample=spec.sample
                )
                problems += static
                if not static and not frame_problems:
                    problems += self._render_problems(channel, name, spec)
        return problems

    def _render_problems(
        self, channel: Channel, name: str, spec: MessageSpec
    ) -> list[TemplateProblem]:
        problems = []
        for number, variables in enumerate((spec.sample, *spec.variants)):
            trial = f"variant {number} of its sample" if number else "its sample"
            for links, quick_replies, customer in (
                (_CHECK_LINKS, _CHECK_QUICK_REPLIES, _CHECK_NAME),
                ((), (), ""),
            ):
                reply = Reply(name, variables, links, quick_replies)
                try:
                    self.render(reply, channel, customer_name=customer)
                except RenderError as exc:
                    template = str(exc.details.get("template") or name + SUFFIX)
                    line = exc.details.get("line")
                    cause = exc.__cause__
                    reason = _reason(cause) if cause else exc.message.removeprefix(f"{template}: ")
                    problems.append(
                        TemplateProblem(
                            template, line, f"{name}, with {trial}: {reason}", _variable(reason)
                        )
                    )
        return problems


def _environment(channel: Channel, override_dir: Path | None, shop_name: str) -> Environment:
    loaders: list[BaseLoader] = []
    if override_dir is not None and (override_dir / channel).is_dir():
        loaders.append(FileSystemLoader(override_dir / channel))
    loaders.append(PackageLoader("loopdesk.guides", f"templates/{channel}"))
    environment = Environment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - plain text for chat, email and SMS, never HTML
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.globals.update(shop_name=shop_name, channel=channel)
    environment.filters["join_words"] = join_words
    return environment


def _folder_problems(root: Path) -> list[TemplateProblem]:
    """What in a merchant's folder is not a channel's template: a typo would otherwise
    leave the built-in wording in place without anyone noticing."""
    if not root.is_dir():
        return [TemplateProblem(str(root), None, "the guide templates folder is not a directory")]
    problems = []
    channels = ", ".join(f"{c}/" for c in CHANNELS)
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and entry.name not in CHANNELS:
            problems.append(TemplateProblem(str(entry), None, f"not a channel folder ({channels})"))
        elif entry.is_dir():
            problems += _channel_folder_problems(entry)
        elif entry.name.endswith(SUFFIX):
            problems.append(
                TemplateProblem(
                    str(entry), None, f"a template goes in a channel folder ({channels})"
                )
            )
    return problems


def _channel_folder_problems(folder: Path) -> list[TemplateProblem]:
    problems = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        name = entry.name.removesuffix(SUFFIX)
        if entry.is_dir():
            problems.append(TemplateProblem(str(entry), None, "a channel folder holds no folders"))
        elif not entry.name.endswith(SUFFIX):
            problems.append(
                TemplateProblem(
                    str(entry), None, f"not a template (a template's name ends in {SUFFIX})"
                )
            )
        elif not name.startswith("_") and name not in MESSAGES:
            close = difflib.get_close_matches(name, list(MESSAGES), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(TemplateProblem(str(entry), None, f"no message is named {name}{hint}"))
    return problems


def _static_problems(
    environment: Environment,
    name: str,
    *,
    allowed: Sequence[str],
    sample: dict[str, Any] | None,
) -> list[TemplateProblem]:
    """A template's problems found without rendering it: missing, unreadable, a syntax
    error, a variable it may read that is not allowed, a key its sample lacks."""
    assert environment.loader is not None
    try:
        source, filename, _ = environment.loader.get_source(environment, name)
    except TemplateNotFound:
        path = f"templates/{environment.globals['channel']}/{name}"
        return [TemplateProblem(path, None, "missing: every message needs a template per channel")]
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return [TemplateProblem(name, None, f"cannot read: {reason}")]
    path = filename or name
    try:
        tree = environment.parse(source, name, path)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(path, exc.lineno, f"syntax error: {exc.message}")]
    known = set(allowed) | set(environment.globals)
    problems = []
    for variable in sorted(meta.find_undeclared_variables(tree) - known):
        message = name.removesuffix(SUFFIX)
        offered = ", ".join(sorted(set(allowed) - set(GLOBALS))) or "none"
        problems.append(
            TemplateProblem(
                path,
                _first_line(tree, variable),
                f"`{variable}` is not a variable of {message} (its variables: {offered};"
                f" every template's: {', '.join(GLOBALS)})",
                variable,
            )
        )
    if sample is not None:
        for dotted, line, keys in _KeyCheck(tree, sample).problems:
            problems.append(
                TemplateProblem(
                    path,
                    line,
                    f"`{dotted}` is not in the sample of {name.removesuffix(SUFFIX)}"
                    f" (it has: {', '.join(keys) or 'nothing'})",
                    dotted,
                )
            )
    return problems


def _first_line(tree: nodes.Template, variable: str) -> int | None:
    for node in tree.find_all(nodes.Name):
        if node.name == variable and node.ctx == "load":
            return int(node.lineno)
    return None


class _Unknown:
    """The shape of a value the sample does not tell (a macro's argument, a `set`...)."""


_UNKNOWN = _Unknown()
# Reading these is how a template asks whether a value is there: never a problem.
_LENIENT_TESTS = {"defined", "undefined", "none"}
_LENIENT_FILTERS = {"default", "d"}


class _KeyCheck:
    """The keys a template reads inside its variables (`ret.carrier`, `r.estimate.date`
    in `for r in returns`) that the sample does not have, in branches taken or not."""

    def __init__(self, tree: nodes.Template, sample: dict[str, Any]) -> None:
        self.problems: list[tuple[str, int, list[str]]] = []
        self._rebound = _rebound_names(tree)
        scope = {k: v for k, v in sample.items() if k not in self._rebound}
        self._walk(tree, scope, strict=True, guards=frozenset())

    def _walk(
        self, node: nodes.Node, scope: dict[str, Any], *, strict: bool, guards: frozenset[str]
    ) -> Any:
        def walk(child: nodes.Node, scope: dict[str, Any] = scope, **change: Any) -> Any:
            return self._walk(child, scope, **{"strict": strict, "guards": guards, **change})

        if isinstance(node, nodes.Name):
            return scope.get(node.name, _UNKNOWN) if node.ctx == "load" else _UNKNOWN
        if isinstance(node, nodes.Getattr):
            return self._step(node, walk(node.node), node.attr, strict, guards)
        if isinstance(node, nodes.Getitem):
            base = walk(node.node)
            walk(node.arg)
            key = node.arg.value if isinstance(node.arg, nodes.Const) else _UNKNOWN
            return self._step(node, base, key, strict, guards)
        if isinstance(node, nodes.Test) and node.name in _LENIENT_TESTS:
            strict = False
        if isinstance(node, nodes.Filter) and node.name in _LENIENT_FILTERS:
            strict = False
        if isinstance(node, nodes.If | nodes.CondExpr):
            # `{% if ret.note is defined %}{{ ret.note }}`: the branch may read it.
            tests = [node.test, *node.test.find_all(nodes.Test)]
            tested = {
                _dotted(t.node) for t in tests if isinstance(t, nodes.Test) and t.name == "defined"
            }
            inner = guards | tested
            walk(node.test, guards=inner)
            if isinstance(node, nodes.If):
                for child in node.body:
                    walk(child, guards=inner)
                for child in [*node.elif_, *node.else_]:
                    walk(child)
            else:
                walk(node.expr1, guards=inner)
                if node.expr2 is not None:
                    walk(node.expr2)
            return _UNKNOWN
        if isinstance(node, nodes.For):
            items = walk(node.iter)
            inner_scope = dict(scope)
            if isinstance(node.target, nodes.Name) and node.target.name not in self._rebound:
                first = items[0] if isinstance(items, list) and items else _UNKNOWN
                inner_scope[node.target.name] = first
            for child in [*node.body, *([node.test] if node.test else [])]:
                walk(child, inner_scope)
            for child in node.else_:
                walk(child)
            return _UNKNOWN
        if isinstance(node, nodes.Macro | nodes.CallBlock):
            # A macro's arguments hide the template's variables of the same name.
            hidden = {arg.name for arg in node.args}
            scope = {k: v for k, v in scope.items() if k not in hidden}
        for child in node.iter_child_nodes():
            walk(child, scope)
        return _UNKNOWN

    def _step(
        self, node: nodes.Node, base: Any, key: Any, strict: bool, guards: frozenset[str]
    ) -> Any:
        if isinstance(base, dict) and isinstance(key, str):
            if key in base:
                return base[key]
            dotted = _dotted(node)
            guarded = any(dotted == g or dotted.startswith((g + ".", g + "[")) for g in guards)
            if strict and not guarded and not hasattr(dict, key):  # `ret.items()` is dict's
                self.problems.append((dotted, int(node.lineno), sorted(base)))
            return _UNKNOWN
        if isinstance(base, list) and isinstance(key, int) and -len(base) <= key < len(base):
            return base[key]
        return _UNKNOWN


def _rebound_names(tree: nodes.Template) -> set[str]:
    """Names a template assigns itself (`set`, `with`, imports, loop targets), which may
    then hold anything: their keys are not checked against the sample."""
    names: set[str] = set()
    targets: list[nodes.Node] = []
    for node in tree.find_all(nodes.Stmt):
        if isinstance(node, nodes.Assign | nodes.AssignBlock):
            targets.append(node.target)
        elif isinstance(node, nodes.With):
            targets += node.targets
        elif isinstance(node, nodes.For) and not isinstance(node.target, nodes.Name):
            targets.append(node.target)
        elif isinstance(node, nodes.Import):
            names.add(node.target)
        elif isinstance(node, nodes.FromImport):
            names |= {alias if isinstance(alias, str) else alias[-1] for alias in node.names}
    for target in targets:
        found = [target, *target.find_all(nodes.Name)]
        names |= {n.name for n in found if isinstance(n, nodes.Name)}
    return names


def _dotted(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return str(node.name)
    if isinstance(node, nodes.Getattr):
        return f"{_dotted(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        key = node.arg.value if isinstance(node.arg, nodes.Const) else "..."
        return f"{_dotted(node.node)}[{key!r}]"
    return "(expression)"


def _template_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """The template file and line an exception was raised at: Jinja puts the template's
    own lines in the traceback."""
    found: tuple[str | None, int | None] = (None, None)
    for frame, line in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename.endswith(SUFFIX):
            found = (frame.f_code.co_filename, line)
    return found


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc) or type(exc).__name__


def _variable(reason: str) -> str | None:
    """The variable an undefined-error names (`'ret' is undefined`, `... no attribute 'x'`)."""
    match = re.search(r"'([^']+)' is undefined|has no attribute '([^']+)'", reason)
    return (match[1] or match[2]) if match else None


def _tidy(text: str, channel: Channel, *, wrap: bool) -> str:
    """Whitespace as each channel wants it. Spaces and tabs run together; a blank line
    ends a paragraph: email keeps one blank line between paragraphs, chat and SMS none.
    With `wrap` (a message's own text), a paragraph's lines join into one, so templates
    can wrap long sentences, except a line starting a list item (`- `, `• `, `1. `)."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [" ".join(line.split()) for line in block.splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            continue
        if wrap:
            lines = list(_joined(lines))
        paragraphs.append("\n".join(lines))
    return ("\n\n" if channel == "email" else "\n").join(paragraphs)


def _joined(lines: Sequence[str]) -> Iterator[str]:
    current = ""
    for line in lines:
        if current and not _LIST_ITEM.match(line):
            current = f"{current} {line}"
        else:
            if current:
                yield current
            current = line
    if current:
        yield current


def main(argv: Sequence[str]) -> int:
    """`python -m loopdesk.guides.render [DIR]`: check a merchant's folder (or the
    built-in templates) as `serve` would at start-up; list which file words what."""
    folder = Path(argv[0]) if argv else None
    try:
        renderer = Renderer.load(override_dir=folder, shop_name="Your shop")
    except TemplatesError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    for source in renderer.templates():
        where = source.path if source.overridden else "built-in"
        print(f"{source.channel}\t{source.message}\t{where}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def _numbered(text: str, count: int) -> bool:
    """True when an SMS already offers choices 1 to `count` as "1) ...", "2) ..."."""
    return all(f"{n}) " in text for n in range(1, count + 1))
