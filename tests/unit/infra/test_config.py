"""The TOML configuration file: keys spell LIENTHONG_* variables, the environment wins, unknown
keys and broken files are one-line errors, and `config show` never prints a secret."""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli.main import build_app
from infra.config import (
    BY_ENV,
    MASK,
    SETTINGS,
    ConfigError,
    apply_config,
    effective,
    env_name,
    mask_value,
    read_config_file,
)
from infra.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("schemas", "signing", "producers", "consumers", "infra")
PASSWORD = "hunter2-Zq9"
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def clean_env() -> Iterator[None]:
    """The CLI fills os.environ from the file: put back exactly what was there."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("LIENTHONG_")]:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "lienthong.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


FULL = f"""
home = "/var/lib/lienthong"
cache = "/var/cache/lienthong"
topic_prefix = "city."
platform_agency = "000.00.10.H26"
agencies = "agencies.yaml"
pki_dir = "/etc/lienthong/pki"
trust_config = "/etc/lienthong/pki/trust.yaml"

[crl]
grace_hours = 12

[cert]
warn_days = 45.5

[log]
level = "WARNING"

[key]
passphrase_file = "/run/credentials/key-passphrase"

[kafka]
bootstrap = "k1.city:9093,k2.city:9093"
security_protocol = "SASL_SSL"
ca_file = "/etc/lienthong/kafka-ca.pem"
sasl_username = "lienthong-router"
sasl_password_env = "ROUTER_SCRAM"
check_hostname = false
port = 19092
controller_port = 19093

[database]
url = "postgresql://lienthong:{PASSWORD}@db.city:5432/lienthong?sslmode=verify-full"

[archive]
database_url = "postgresql://lienthong_archiver@db.city/lienthong"
parse_workers = 2

[audit]
database_url = "postgresql://lienthong_auditor@db.city/lienthong"

[postgres]
port = 15432

[pg]
bin = "/usr/lib/postgresql/15/bin"
unsafe_fast = false
"""


def test_every_setting_spells_its_variable() -> None:
    for setting in SETTINGS:
        parts = (setting.section, setting.key) if setting.section else (setting.key,)
        assert env_name(parts) == setting.env, setting
    assert len(BY_ENV) == len(SETTINGS)


def test_every_variable_the_code_reads_is_a_setting() -> None:
    """A helper adding LIENTHONG_NEW to the code without a line in SETTINGS fails here: the
    file could not set it and `config show` would call it a typo."""
    read = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    if re.fullmatch(r"LIENTHONG_[A-Z0-9_]*[A-Z0-9]", node.value):
                        read.add(node.value)
    read.discard("LIENTHONG_CONFIG")  # names the file itself
    missing = sorted(read - set(BY_ENV))
    assert not missing, f"add these to infra.config.SETTINGS: {missing}"
    assert "LIENTHONG_KAFKA_BOOTSTRAP" in read  # the scan does find the variables


def test_a_full_file_reaches_every_field_of_settings(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    env: dict[str, str] = {"ROUTER_SCRAM": PASSWORD}
    loaded = apply_config(path, env)
    assert loaded.applied == set(read_config_file(path))
    settings = load_settings(env)
    assert settings.home == Path("/var/lib/lienthong")
    assert settings.cache_dir == Path("/var/cache/lienthong")
    assert settings.topic_prefix == "city."
    assert settings.agencies_file == tmp_path / "agencies.yaml"  # relative to the file
    assert settings.pki_dir == Path("/etc/lienthong/pki")
    assert settings.crl_grace_hours == 12.0 and settings.cert_warn_days == 45.5
    assert settings.external_kafka == "k1.city:9093,k2.city:9093"
    assert settings.kafka_port == 19092 and settings.kafka_controller_port == 19093
    assert settings.postgres_port == 15432 and settings.postgres_unsafe_fast is False
    assert settings.external_database and PASSWORD in settings.external_database
    security = settings.kafka_security
    assert security.protocol.value == "SASL_SSL" and security.sasl_password == PASSWORD
    assert security.check_hostname is False
    assert env["LIENTHONG_ARCHIVE_PARSE_WORKERS"] == "2"
    assert env["LIENTHONG_LOG_LEVEL"] == "WARNING"


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'topic_prefix = "f."\n[kafka]\nbootstrap = "file:9092"\n')
    env = {"LIENTHONG_KAFKA_BOOTSTRAP": "env:9092"}
    loaded = apply_config(path, env)
    assert env["LIENTHONG_KAFKA_BOOTSTRAP"] == "env:9092"
    assert loaded.overridden == {"LIENTHONG_KAFKA_BOOTSTRAP"}
    rows = {r.setting.env: r for r in effective(loaded, env)}
    assert rows["LIENTHONG_KAFKA_BOOTSTRAP"].source == "env"
    assert rows["LIENTHONG_KAFKA_BOOTSTRAP"].note == "overrides the file"
    assert rows["LIENTHONG_TOPIC_PREFIX"].source == "file"
    assert rows["LIENTHONG_TOPIC_PREFIX"].value == env["LIENTHONG_TOPIC_PREFIX"] == "f."
    assert rows["LIENTHONG_HOME"].source == "default"


def test_a_key_after_a_table_header_belongs_to_that_table(tmp_path: Path) -> None:
    # TOML puts `topic_prefix` under [kafka] above: LIENTHONG_KAFKA_TOPIC_PREFIX, no setting.
    path = write(tmp_path, '[kafka]\nbootstrap = "b:1"\ntopic_prefix = "f."\n')
    with pytest.raises(ConfigError, match=r"unknown key \[kafka\] topic_prefix"):
        read_config_file(path)


def test_any_split_of_a_name_reads_the_same_variable(tmp_path: Path) -> None:
    flat = write(tmp_path, 'kafka_bootstrap = "b:1"\n')
    assert read_config_file(flat) == {"LIENTHONG_KAFKA_BOOTSTRAP": "b:1"}
    both = write(tmp_path, 'kafka_bootstrap = "b:1"\n[kafka]\nbootstrap = "b:2"\n')
    with pytest.raises(ConfigError, match="LIENTHONG_KAFKA_BOOTSTRAP is set twice"):
        read_config_file(both)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[kafka]\nbootstarp = "b:1"\n',
            r"unknown key \[kafka\] bootstarp \(LIENTHONG_KAFKA_BOOTSTARP",
        ),
        ('homedir = "/x"\n', r"unknown key homedir"),
        ('config = "/other.toml"\n', r"unknown key config"),
        ('[Kafka]\nbootstrap = "b:1"\n', r"lower-case"),
        ('[kafka]\nport = "9092"\n', r"\[kafka\] port must be an integer"),
        ("[kafka]\nport = true\n", r"\[kafka\] port must be an integer"),
        ('[kafka]\ncheck_hostname = "no"\n', r"must be true or false"),
        ('[crl]\ngrace_hours = "a day"\n', r"must be a number"),
        ("home = 3\n", r"home must be a string"),
        ('[kafka]\nbootstrap = ["a", "b"]\n', r"must be a string"),
    ],
)
def test_bad_keys_and_values_name_the_key_and_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        read_config_file(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_malformed_toml_is_one_line_with_the_position(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\nbootstrap = "b:1\nport = 1\n')
    with pytest.raises(ConfigError) as caught:
        read_config_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid TOML:") and "line 2" in message
    assert "\n" not in message


def test_a_missing_or_binary_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(tmp_path / "nope.toml")
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"home = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_config_file(binary)


def test_a_secret_in_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    text = f'[database]\nurl = "postgresql://u:{PASSWORD}@db/x"\n'
    with pytest.raises(ConfigError, match=r"holds a secret \(database.url\).*chmod 600") as caught:
        read_config_file(write(tmp_path, text, mode=0o644))
    assert PASSWORD not in str(caught.value)
    assert read_config_file(write(tmp_path, text, mode=0o600))  # private: fine
    # No secret: a world-readable file (a ConfigMap) is fine.
    assert read_config_file(write(tmp_path, '[kafka]\nbootstrap = "b:1"\n', mode=0o644))


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("LIENTHONG_KEY_PASSPHRASE", PASSPHRASE, MASK),
        ("LIENTHONG_DATABASE_URL", f"postgresql://u:{PASSWORD}@db:5432/x", f"postgresql://u:{MASK}@db:5432/x"),
        ("LIENTHONG_DATABASE_URL", f"postgresql://u@db/x?sslmode=verify-full&password={PASSWORD}", f"postgresql://u@db/x?sslmode=verify-full&password={MASK}"),
        ("LIENTHONG_AUDIT_DATABASE_URL", f"postgres://a:{PASSWORD}@h/x", f"postgres://a:{MASK}@h/x"),
        # A setting added later is masked by its name alone.
        ("LIENTHONG_OTEL_EXPORTER_TOKEN", PASSWORD, MASK),
        ("LIENTHONG_CONSOLE_SESSION_SECRET", PASSWORD, MASK),
        # Names of variables and of files are not secrets.
        ("LIENTHONG_KAFKA_SASL_PASSWORD_ENV", "ROUTER_SCRAM", "ROUTER_SCRAM"),
        ("LIENTHONG_KEY_PASSPHRASE_FILE", "/run/pw", "/run/pw"),
        ("LIENTHONG_DATABASE_URL", "postgresql://u@db/x", "postgresql://u@db/x"),
    ],
)  # fmt: skip
def test_secrets_are_masked(name: str, value: str, shown: str) -> None:
    assert mask_value(name, value) == shown


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), args, env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("clean_env")
def test_config_show_says_where_each_value_came_from(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    code, out, err = _run(
        ["--config", str(path), "config", "show", "--format", "json"],
        env={"ROUTER_SCRAM": PASSWORD, "LIENTHONG_TOPIC_PREFIX": "env.", "LIENTHONG_TYPO": "1"},
    )
    assert code == 0, err
    shown = json.loads(out)
    rows = {r["env"]: r for r in shown["settings"]}
    assert shown["config_file"] == str(path) and shown["valid"] is True
    assert rows["LIENTHONG_TOPIC_PREFIX"] == {
        "key": "topic_prefix", "env": "LIENTHONG_TOPIC_PREFIX", "value": "env.",
        "source": "env", "note": "overrides the file",
    }  # fmt: skip
    assert rows["LIENTHONG_KAFKA_BOOTSTRAP"]["source"] == "file"
    assert rows["LIENTHONG_KEY_PASSPHRASE"]["source"] == "default"
    assert rows["LIENTHONG_DATABASE_URL"]["value"].startswith(f"postgresql://lienthong:{MASK}@")
    assert shown["unknown_env"] == ["LIENTHONG_TYPO"]
    assert set(rows) == set(BY_ENV)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_config_show_never_prints_a_secret(tmp_path: Path, fmt: str) -> None:
    # The passphrase itself in the (private) file, a password in a URL from the environment.
    with_passphrase = FULL.replace(
        'passphrase_file = "/run/credentials/key-passphrase"', f'passphrase = "{PASSPHRASE}"'
    )
    assert PASSPHRASE in with_passphrase
    path = write(tmp_path, with_passphrase)
    env = {
        "ROUTER_SCRAM": PASSWORD,
        "LIENTHONG_AUDIT_DATABASE_URL": f"postgresql://aud:{PASSWORD}@db/x",
        "LIENTHONG_SOMETHING_TOKEN": PASSWORD,  # unknown, still never printed
    }
    code, out, err = _run(["--config", str(path), "config", "show", "--format", fmt], env=env)
    assert code == 0, err
    for secret in (PASSWORD, PASSPHRASE, "hunter2", "horse"):
        assert secret not in out and secret not in err
    assert MASK in out


@pytest.mark.usefixtures("clean_env")
def test_the_cli_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\nbootstarp = "b:1"\n')
    code, _, err = _run(["--config", str(path), "config", "show"])
    assert code == 2
    assert err.strip() == (
        f"error: {path}: unknown key [kafka] bootstarp (LIENTHONG_KAFKA_BOOTSTARP is not a "
        "lienthong setting; `lienthong config show` lists them)"
    )
    code, _, err = _run(["config", "show"], env={"LIENTHONG_CONFIG": str(tmp_path / "x.toml")})
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1


@pytest.mark.usefixtures("clean_env")
def test_config_show_reports_an_invalid_result(tmp_path: Path) -> None:
    path = write(tmp_path, '[kafka]\nsecurity_protocol = "TLS"\n')
    code, out, err = _run(["--config", str(path), "config", "show"])
    assert code == 2
    assert "LIENTHONG_KAFKA_SECURITY_PROTOCOL" in out  # the table still prints
    assert err.startswith("error: LIENTHONG_KAFKA_SECURITY_PROTOCOL='TLS'")


@pytest.mark.usefixtures("clean_env")
def test_the_log_level_option_reads_the_file(tmp_path: Path) -> None:
    """--log-level's own variable is read before the file is applied; the file still counts,
    and the environment and the flag still win over it."""
    path = write(tmp_path, '[log]\nlevel = "NOTSET_LEVEL"\n')
    code, _, err = _run(["--config", str(path), "config", "show"])
    # The file's value reached configure_logging, which refuses it in one line.
    assert code == 2 and err.strip() == "error: unknown log level 'NOTSET_LEVEL'"
    code, _, err = _run(["--config", str(path), "--log-level", "INFO", "config", "show"])
    assert code == 0, err


def test_the_shipped_example_is_a_valid_configuration(tmp_path: Path) -> None:
    example = ROOT / "infra" / "deploy" / "lienthong.example.toml"
    path = write(tmp_path, example.read_text(encoding="utf-8"), mode=0o644)
    env: dict[str, str] = {}
    apply_config(path, env)
    settings = load_settings(env)
    assert settings.home == Path("/var/lib/lienthong")
    assert settings.external_kafka and settings.kafka_security.protocol.value == "SSL"
    assert settings.external_database and "verify-full" in settings.external_database
