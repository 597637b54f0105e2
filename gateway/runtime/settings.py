"""One settings loader for every service: typed fields, prefixed environment, flags override.

A component declares a frozen dataclass whose fields are made with :func:`setting`: each field
names its environment variable(s), its help text and, when it differs from the field name, its
flag. From that one declaration:

* :func:`load` builds the object from an environment mapping (read once, at the entry point) and
  the parsed flags (a flag given on the command line wins over the environment);
* :func:`add_flags` adds one flag per field to an ``argparse`` parser, its help showing the
  variable and the field's default, so ``--help`` and the defaults cannot drift apart;
* every problem is a :class:`SettingError` naming the variable and the flag, shown as one line
  with exit code 2 (:mod:`gateway.runtime.fatal`).

Values are parsed from the field's type (``str``, ``int``, ``float``, ``bool``, ``Path``,
``X | None``, ``tuple[str, ...]``, ``Literal[...]``) or by the field's own ``parse``. An empty
variable counts as unset. Flags reach the loader as raw strings (booleans excepted), so a bad
flag value gets the same one-line error as a bad variable instead of argparse's usage dump.
Tests build settings from a plain dict: ``load(Settings, {"RPMFLOW_X": "1"})``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.runtime.fatal import EXIT_CONFIG, Fatal
from gateway.runtime.urls import mqtt_url_problem

T = TypeVar("T")
_META = "rpmflow.setting"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingError(Fatal):
    """A missing or invalid setting; the message names the variable and the flag."""

    exit_code = EXIT_CONFIG

    def __init__(self, field: str, reason: str, *, env: str | None = None, flag: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.env = env
        self.flag = flag
        self.key = env or field  # the variable's name (the field's before it is located)
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.env or self.field
        if self.flag:
            where += f" (flag {self.flag})"
        return f"configuration error: {where}: {self.reason}"

    def located(self, env: str, flag: str | None) -> SettingError:
        return SettingError(self.field, self.reason, env=env, flag=flag)


@dataclasses.dataclass(frozen=True)
class Spec:
    """What :func:`setting` records on a field."""

    env: tuple[str, ...]  # the primary variable first, then fallbacks (e.g. RPMFLOW_MQTT_URL)
    help: str
    flag: str | None  # None: no flag for this field
    parse: Callable[[str], Any] | None
    check: Callable[[Any], str | None] | None
    choices: tuple[str, ...] | None
    secret: bool  # a URL with a password: errors never echo the value


def setting(default: Any = dataclasses.MISSING, *, env: str | tuple[str, ...], help: str,
            flag: str | Literal[False] | None = None, parse: Callable[[str], Any] | None = None,
            check: Callable[[Any], str | None] | None = None,
            choices: tuple[str, ...] | None = None, secret: bool = False) -> Any:
    """A settings field. ``flag=None`` derives ``--field-name``; ``flag=False`` means no flag;
    ``check`` returns a reason when a value is not acceptable (``None`` when it is); ``secret``
    values (URLs with passwords) are never echoed in an error."""
    spec = Spec(env=(env,) if isinstance(env, str) else env, help=help,
                flag=None if flag is False else (flag or ""), parse=parse, check=check, choices=choices,
                secret=secret)
    return dataclasses.field(default=default, metadata={_META: spec})


def _spec(f: dataclasses.Field[Any]) -> Spec:
    spec = f.metadata.get(_META)
    if not isinstance(spec, Spec):
        raise TypeError(f"field {f.name} was not declared with setting()")
    return spec


def flag_of(f: dataclasses.Field[Any]) -> str | None:
    spec = _spec(f)
    if spec.flag is None:
        return None
    name = f.name.removesuffix("_s")  # seconds are said in the help, not in every flag
    return spec.flag or "--" + name.replace("_", "-")


def specs(cls: type[Any]) -> list[tuple[dataclasses.Field[Any], Spec]]:
    return [(f, _spec(f)) for f in dataclasses.fields(cls)]


def field_location(cls: type[Any], name: str) -> tuple[str, str | None]:
    """(variable, flag) of a field, for error messages."""
    for f, spec in specs(cls):
        if f.name == name:
            return spec.env[0], flag_of(f)
    return name, None


# -- parsing by type -------------------------------------------------------------------------------

def parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("must be true or false")


def _parser_for(kind: Any) -> tuple[Callable[[str], Any], tuple[str, ...] | None]:
    """A str → value function for a resolved annotation, plus its choices when it is a Literal."""
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(inner) == 1:
            return _parser_for(inner[0])
    if origin is Literal:
        choices = tuple(str(a) for a in typing.get_args(kind))
        return str, choices
    if origin is tuple:
        return (lambda raw: tuple(p.strip() for p in raw.split(",") if p.strip())), None
    if kind is bool:
        return parse_bool, None
    if kind is int:
        return _int, None
    if kind is float:
        return _float, None
    if kind is Path:
        return Path, None
    if kind is str:
        return str, None
    raise TypeError(f"no parser for settings type {kind!r}")


def _int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"not a whole number: {raw!r}") from None


def _float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"not a number: {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {raw!r}")
    return value


def _convert(f: dataclasses.Field[Any], spec: Spec, kind: Any, raw: str) -> Any:
    parse, choices = _parser_for(kind)
    choices = spec.choices or choices
    try:
        value = (spec.parse or parse)(raw)
    except ValueError as exc:
        reason = str(exc) or "invalid value"
        if repr(raw) not in reason and not spec.secret:
            reason += f" (got {raw!r})"
        raise SettingError(f.name, reason) from None
    if choices is not None and str(value) not in choices:
        raise SettingError(f.name, f"must be one of {', '.join(choices)}, got {raw!r}")
    return value


# -- loading ---------------------------------------------------------------------------------------

def load(cls: type[T], environ: Mapping[str, str],
         flags: argparse.Namespace | Mapping[str, Any] | None = None) -> T:
    """Build ``cls`` from ``environ`` and the flags given (``None`` = flag not given)."""
    given = vars(flags) if isinstance(flags, argparse.Namespace) else dict(flags or {})
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f, spec in specs(cls):
        env_name, flag = spec.env[0], flag_of(f)
        try:
            raw_flag = given.get(f.name)
            if raw_flag is not None:
                value = raw_flag
                if isinstance(raw_flag, str):
                    value = _convert(f, spec, hints[f.name], raw_flag)
            else:
                raw = next((environ[k] for k in spec.env if environ.get(k, "") != ""), None)
                if raw is None:
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                        names = " or ".join(spec.env)
                        hint = f" ({names})" if len(spec.env) > 1 else ""
                        raise SettingError(f.name, f"required{hint}: {spec.help}")
                    continue
                value = _convert(f, spec, hints[f.name], raw)
        except SettingError as exc:
            raise exc.located(env_name, flag) from None
        values[f.name] = value
    return construct(cls, values)


def construct(cls: type[T], values: Mapping[str, Any]) -> T:
    """``cls(**values)``, each value checked, with any :class:`SettingError` located."""
    try:
        for f, spec in specs(cls):
            if f.name in values and spec.check is not None:
                value = values[f.name]
                if (reason := spec.check(value)) is not None:
                    raise SettingError(f.name, reason if spec.secret else f"{reason}, got {value!r}")
        obj = cls(**values)
        validate = getattr(obj, "validate", None)
        if callable(validate):
            validate()
    except SettingError as exc:
        if exc.env is not None:
            raise
        env, flag = field_location(cls, exc.field)
        raise exc.located(env, flag) from None
    return obj


def replace(obj: T, **changes: Any) -> T:
    """``dataclasses.replace`` for settings, validated the same way; ``None`` values are ignored."""
    current = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]
    current.update({k: v for k, v in changes.items() if v is not None})
    return construct(type(obj), current)


# -- flags -----------------------------------------------------------------------------------------

def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "(empty)"
    if value is None:
        return "unset"
    return str(value)


def default_text(f: dataclasses.Field[Any]) -> str:
    """The default as ``--help`` and the docs show it."""
    if f.default is not dataclasses.MISSING:
        return _shown(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return _shown(f.default_factory())
    return "required"


def add_flags(parser: argparse.ArgumentParser, cls: type[Any], *, exclude: tuple[str, ...] = ()) -> None:
    """One flag per field (dest = field name, default None = "not given"); help names the
    variable and shows the dataclass default, so the two cannot drift."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group("settings (each flag overrides its environment variable)")
    for f, spec in specs(cls):
        flag = flag_of(f)
        if flag is None or f.name in exclude:
            continue
        env = " or ".join(spec.env)
        _, choices = _parser_for(hints[f.name])
        choices = spec.choices or choices
        extra = f"; one of {', '.join(choices)}" if choices else ""
        text = f"{spec.help} [env {env}; default {default_text(f)}{extra}]".replace("%", "%%")
        if hints[f.name] is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                               help=text)
        else:
            group.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(), help=text)


def table(cls: type[Any]) -> list[tuple[str, str, str, str]]:
    """(variable, flag, default, meaning) rows, for docs and the test that keeps them in step."""
    return [(" or ".join(spec.env), flag_of(f) or "", default_text(f), spec.help) for f, spec in specs(cls)]


def markdown_table(cls: type[Any]) -> str:
    """The docs' settings table of ``cls`` (tests/test_settings_docs.py keeps the docs equal to it)."""
    lines = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    for env, flag, default, meaning in table(cls):
        flag_cell = f"`{flag}`" if flag else "(none)"
        lines.append(f"| `{env.replace(' or ', '` or `')}` | {flag_cell} | `{default}` | "
                     f"{meaning.replace('|', '/')} |")
    return "\n".join(lines)


# -- common checks ---------------------------------------------------------------------------------

def at_least(minimum: float) -> Callable[[Any], str | None]:
    return lambda v: None if v >= minimum else f"must be at least {minimum:g}"


def between(low: float, high: float) -> Callable[[Any], str | None]:
    return lambda v: None if low <= v <= high else f"must be {low:g}..{high:g}"


def iana_zone(value: Any) -> str | None:
    """A check: the value names an IANA time zone (``America/New_York``), not an offset like "GMT+4"."""
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        return "unknown IANA time zone (e.g. America/New_York)"
    return None


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be more than 0"


def log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return value


# -- the fields every service spells the same way (same variable suffix, same flag) ----------------

def database_url_field(check: Callable[[Any], str | None] | None = None) -> Any:
    return setting(env="RPMFLOW_DATABASE_URL", check=check, secret=True,
                   help="PostgreSQL URL postgresql://user:password@host:port/database")


def mqtt_url_field(prefix: str) -> Any:
    return setting(env=(prefix + "MQTT_URL", "RPMFLOW_MQTT_URL"), check=mqtt_url_problem, secret=True,
                   help="broker URL mqtt://user:password@host:port (mqtts:// for TLS)")


def log_level_field(prefix: str, default: str = "INFO") -> Any:
    return setting(default, env=prefix + "LOG_LEVEL", parse=log_level, help="logging level")


def auth_timeout_field(prefix: str, default: float = 30.0) -> Any:
    return setting(default, env=prefix + "AUTH_TIMEOUT_S", check=at_least(0),
                   help="seconds to keep retrying when a server refuses our credentials, then exit 3")


def startup_timeout_field(prefix: str, default: float = 60.0) -> Any:
    return setting(default, env=prefix + "STARTUP_TIMEOUT_S", check=at_least(0),
                   help="seconds to wait at start-up for a server never reached (down, wrong host or "
                        "port), then exit 3")
