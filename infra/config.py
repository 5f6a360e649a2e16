"""The configuration file: one TOML file whose keys are the LIENTHONG_* variables, by name.

A key's place in the file spells its variable: `[kafka] bootstrap` is LIENTHONG_KAFKA_BOOTSTRAP,
a top-level `home` is LIENTHONG_HOME (section and key joined by `_`, upper-cased). Applying a
file fills in the process environment for every variable the environment does not already set,
so the environment overrides the file and every reader of a LIENTHONG_* variable (settings,
the compose roots, child processes) sees the same values without knowing a file exists.

SETTINGS is the list of variables lienthong reads; a key naming any other variable is an error.
A new setting is one more line here (tests/unit/infra/test_config.py fails on a LIENTHONG_*
name read in the code and missing from the list).
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from infra.settings import DEFAULT_PLATFORM_AGENCY, DEFAULT_TOPIC_PREFIX

PREFIX = "LIENTHONG_"
CONFIG_ENV = "LIENTHONG_CONFIG"
MASK = "********"

Kind = Literal["str", "path", "url", "int", "float", "bool", "secret"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One LIENTHONG_* variable. `section` only says where `config show` and the docs place it;
    any split of the name into tables reads the same variable."""

    env: str
    section: str | None
    kind: Kind
    help: str
    default: str | None = None  # what the code uses when unset, as the variable would say it

    @property
    def key(self) -> str:
        rest = self.env.removeprefix(PREFIX)
        if self.section:
            rest = rest.removeprefix(self.section.upper() + "_")
        return rest.lower()

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.key}" if self.section else self.key


def _s(env: str, section: str | None, kind: Kind, help: str, default: str | None = None) -> Setting:
    return Setting(PREFIX + env, section, kind, help, default)


SETTINGS: tuple[Setting, ...] = (
    _s("HOME", None, "path", "state directory (keys, local services, router state)", ".lienthong"),
    _s("CACHE", None, "path", "download cache (Kafka jars); default $XDG_CACHE_HOME/lienthong"),
    _s("TOPIC_PREFIX", None, "str", "prefix of every topic and group", DEFAULT_TOPIC_PREFIX),
    _s("PLATFORM_AGENCY", None, "str", "the platform's agency code", DEFAULT_PLATFORM_AGENCY),
    _s("AGENCIES", None, "path", "agency directory YAML; default the one shipped"),
    # A path, or "none" for no national directory: a string, so "none" stays "none".
    _s("NATIONAL_AGENCIES", None, "str", "national agencies YAML beside it; none: without"),
    _s("PKI_DIR", None, "path", "PKI directory; default $LIENTHONG_HOME/pki"),
    _s("TRUST_CONFIG", None, "path", "trust.yaml (anchors, CRLs); default $pki_dir/trust.yaml"),
    _s("CRL_GRACE_HOURS", "crl", "float", "a CRL is believed this long past nextUpdate", "24"),
    _s("CERT_WARN_DAYS", "cert", "float", "warn this long before a certificate expires", "30"),
    _s("LOG_LEVEL", "log", "str", "log level (DEBUG, INFO, WARNING, ERROR)", "INFO"),
    _s("KEY_PASSPHRASE", "key", "secret", "passphrase of the service keys"),
    _s("KEY_PASSPHRASE_FILE", "key", "path", "file holding that passphrase (outside home)"),
    _s("KAFKA_BOOTSTRAP", "kafka", "str", "external brokers host:port,...; unset: local broker"),
    _s("KAFKA_SECURITY_PROTOCOL", "kafka", "str", "PLAINTEXT, SSL or SASL_SSL", "PLAINTEXT"),
    _s("KAFKA_CA_FILE", "kafka", "path", "PEM of the CA(s) that issued the brokers' certificates"),
    _s("KAFKA_CERT_FILE", "kafka", "path", "PEM client certificate (mutual TLS)"),
    _s("KAFKA_KEY_FILE", "kafka", "path", "PEM client key"),
    _s(
        "KAFKA_KEY_PASSWORD_ENV",
        "kafka",
        "str",
        "name of the variable holding the key's passphrase",
    ),
    _s("KAFKA_SASL_USERNAME", "kafka", "str", "SCRAM-SHA-512 user (SASL_SSL)"),
    _s("KAFKA_SASL_PASSWORD_ENV", "kafka", "str", "name of the variable holding its password"),
    _s("KAFKA_CHECK_HOSTNAME", "kafka", "bool", "check the broker's name in its certificate", "1"),
    _s("KAFKA_PORT", "kafka", "int", "local broker's client port (`infra up`)"),
    _s("KAFKA_CONTROLLER_PORT", "kafka", "int", "local broker's controller port (`infra up`)"),
    _s("DATABASE_URL", "database", "url", "external PostgreSQL (postgresql://...); unset: local"),
    _s("ARCHIVE_DATABASE_URL", "archive", "url", "archiver's own connection; default its role"),
    _s("ARCHIVE_PARSE_WORKERS", "archive", "int", "archiver parse processes (0: in-process)", "0"),
    _s("AUDIT_DATABASE_URL", "audit", "url", "auditors' connection; default the auditor role"),
    _s("POSTGRES_PORT", "postgres", "int", "local PostgreSQL's port (`infra up`)"),
    _s("PG_BIN", "pg", "path", "PostgreSQL server binaries for `infra up`"),
    _s("PG_UNSAFE_FAST", "pg", "bool", "local test cluster without fsync (tests only)", "0"),
    # Observability and the console (issue 17's other parts; docs/observability.md).
    _s("METRICS_HOST", "metrics", "str", "address of /metrics, /healthz, /readyz", "127.0.0.1"),
    _s("METRICS_PORT", "metrics", "int", "their port when a command has no --metrics-port", "0"),
    _s("READY_MAX_LAG", "ready", "int", "consumer lag above which a service is not ready", "10000"),
    _s("CERT_CRITICAL_DAYS", "cert", "float", "readiness fails this close to expiry", "1"),
    _s("OTEL_ENDPOINT", "otel", "url", "OpenTelemetry collector for spans; unset: none"),
    _s("CONSOLE_DATABASE_URL", "console", "url", "console's connection; default its role"),
    _s("CONSOLE_PORT", "console", "int", "local console's port (`console start`)"),
)
BY_ENV: dict[str, Setting] = {s.env: s for s in SETTINGS}

_KEY_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
# Names that hold a secret themselves (not *_ENV naming a variable, not *_FILE naming a file).
_SECRET_NAME_RE = re.compile(r"(PASSWORD|PASSPHRASE|SECRET|TOKEN)(?!.*_(ENV|FILE)$)")
_URL_USERINFO_RE = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:@/\s]*):(?P<pw>[^@/\s]*)@")
_URL_QUERY_SECRET_RE = re.compile(r"(?P<head>[?&](?:password|sslpassword)=)(?P<pw>[^&\s]*)", re.I)


class ConfigError(ValueError):
    """The configuration file cannot be used; the message is one line naming file and key."""


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """What a file set and what the environment kept: `config show` says where each came from."""

    path: Path | None
    from_file: dict[str, str] = field(default_factory=dict)  # env name -> value (file's)
    applied: frozenset[str] = frozenset()  # set from the file
    overridden: frozenset[str] = frozenset()  # in the file, but the environment won


def env_name(parts: tuple[str, ...]) -> str:
    return PREFIX + "_".join(parts).upper()


def read_config_file(path: Path) -> dict[str, str]:
    """The file's settings as variable values; ConfigError (one line) for anything wrong."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, str] = {}
    for parts, value in _leaves(document, ()):
        where = _where(parts)
        for part in parts:
            if not _KEY_RE.match(part):
                raise ConfigError(
                    f"{path}: key {where}: use lower-case letters, digits and _ (as in "
                    "[kafka] bootstrap)"
                )
        name = env_name(parts)
        setting = BY_ENV.get(name)
        if setting is None:
            raise ConfigError(
                f"{path}: unknown key {where} ({name} is not a lienthong setting; "
                "`lienthong config show` lists them)"
            )
        if name in values:
            raise ConfigError(f"{path}: {name} is set twice (once as {where})")
        values[name] = _as_text(setting, value, path, where)
    secrets = [n for n, v in values.items() if mask_value(n, v) != v]
    if secrets and _readable_by_others(path):
        raise ConfigError(
            f"{path} holds a secret ({', '.join(BY_ENV[n].dotted for n in secrets)}) but others "
            f"may read it: chmod 600 {path}, or keep the secret in the environment"
        )
    return values


def apply_config(path: Path | None, environ: MutableMapping[str, str]) -> LoadedConfig:
    """Fill `environ` from the file for every setting it does not hold already."""
    if path is None:
        return LoadedConfig(None)
    path = path.absolute()
    values = read_config_file(path)
    applied = {n for n in values if n not in environ}
    for name in applied:
        environ[name] = values[name]
    return LoadedConfig(
        path,
        from_file=values,
        applied=frozenset(applied),
        overridden=frozenset(set(values) - applied),
    )


@dataclass(frozen=True, slots=True)
class Effective:
    setting: Setting
    value: str | None  # masked
    source: Literal["default", "file", "env"]
    note: str = ""


def effective(loaded: LoadedConfig, environ: Mapping[str, str]) -> list[Effective]:
    """Every setting with its value (secrets masked) and where it came from."""
    rows = []
    for setting in SETTINGS:
        raw = environ.get(setting.env)
        if raw is None or (raw == "" and setting.env not in loaded.applied):
            rows.append(Effective(setting, setting.default, "default"))
        elif setting.env in loaded.applied:
            rows.append(Effective(setting, mask_value(setting.env, raw), "file"))
        else:
            note = "overrides the file" if setting.env in loaded.overridden else ""
            rows.append(Effective(setting, mask_value(setting.env, raw), "env", note))
    return rows


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """LIENTHONG_* variables set here that no code reads: most often a typo."""
    return sorted(
        n for n in environ if n.startswith(PREFIX) and n not in BY_ENV and n != CONFIG_ENV
    )


def mask_value(name: str, value: str) -> str:
    """The value as it may be shown: a secret whole, a password inside a URL, masked."""
    if not value:
        return value
    setting = BY_ENV.get(name)
    if (setting is not None and setting.kind == "secret") or _SECRET_NAME_RE.search(
        name.removeprefix(PREFIX)
    ):
        return MASK
    value = _URL_USERINFO_RE.sub(lambda m: f"{m['head']}:{MASK}@", value)
    return _URL_QUERY_SECRET_RE.sub(lambda m: f"{m['head']}{MASK}", value)


def _leaves(table: dict[str, Any], parts: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for key, value in table.items():
        if isinstance(value, dict):
            found += _leaves(value, (*parts, key))
        else:
            found.append(((*parts, key), value))
    return found


def _where(parts: tuple[str, ...]) -> str:
    return f"[{'.'.join(parts[:-1])}] {parts[-1]}" if len(parts) > 1 else parts[0]


def _as_text(setting: Setting, value: Any, path: Path, where: str) -> str:
    """TOML values become the variable's text; relative paths count from the file's folder."""
    kind = setting.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {where} must be true or false, not {value!r}")
        return "true" if value else "false"
    if kind in ("int", "float"):
        ok = isinstance(value, int) or (kind == "float" and isinstance(value, float))
        if isinstance(value, bool) or not ok:
            noun = "an integer" if kind == "int" else "a number"
            raise ConfigError(f"{path}: {where} must be {noun}, not {value!r}")
        return str(value)
    if not isinstance(value, str):
        raise ConfigError(f"{path}: {where} must be a string, not {value!r}")
    if kind == "path" and value and not Path(value).is_absolute():
        return str(path.parent / value)
    return value


def _readable_by_others(path: Path) -> bool:
    return bool(os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO))
