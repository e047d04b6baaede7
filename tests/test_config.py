"""Configuration: every failure mode is a fixture file with its exact message."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import DEFAULT_IDENTITY_URL, ConfigError, load, load_environment, load_file

FIXTURES = Path(__file__).parent / "fixtures" / "config"
ALL_KEYS = (
    "name, username, api_key, api_key_file, password, password_file, identity_url, "
    "regions, generations, rackconnect, managed, metadata_labels, rackconnect_v3"
)


def test_good_file_is_read_into_frozen_accounts() -> None:
    config = load_file(str(FIXTURES / "good.yml"))
    production, staging = config.accounts
    assert production.name == "production"
    assert production.api_key == "prod-api-key-0123456789"
    assert production.password is None
    assert production.regions == ("ORD", "DFW")  # upper-cased
    assert production.rackconnect is True
    assert production.managed is None  # auto: from the token's roles
    assert production.identity_url == DEFAULT_IDENTITY_URL
    assert staging.name == "staging-user"  # defaults to the user name
    assert staging.password == "staging-password-from-file"  # newline stripped
    assert staging.regions is None
    assert staging.generations == ("next",)
    assert config.secrets() == ["prod-api-key-0123456789", "staging-password-from-file"]


def test_secrets_are_not_in_the_repr() -> None:
    config = load_file(str(FIXTURES / "good.yml"))
    assert "prod-api-key" not in repr(config)
    assert "staging-password" not in repr(config)


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("unknown_key.yml", f":4: accounts[0].regoins: unknown key (expected one of: {ALL_KEYS})"),
        ("top_level_unknown.yml", ":4: poll_interval: unknown key (expected: accounts)"),
        (
            "missing_credentials.yml",
            ":2: accounts[0].api_key: missing: give api_key, api_key_file, password or "
            "password_file",
        ),
        (
            "bad_region.yml",
            ":4: accounts[0].regions: unknown region 'XYZ' (expected some of: ORD, DFW, IAD, "
            "LON, SYD, HKG)",
        ),
        (
            "both_secret_forms.yml",
            ":4: accounts[0].api_key_file: give either api_key or api_key_file, not both",
        ),
        (
            "bad_managed.yml",
            ":4: accounts[0].managed: must be auto, true or false, not 'sometimes'",
        ),
        ("duplicate_key.yml", ":4: invalid YAML: duplicate key 'username'"),
        ("invalid_yaml.yml", ":3: invalid YAML: mapping values are not allowed here"),
        ("empty_accounts.yml", ": accounts: must be a non-empty list of accounts"),
        ("duplicate_names.yml", ": accounts: the name 'same' is used twice"),
        (
            "bad_generation.yml",
            ":4: accounts[0].generations: unknown generation 'second' "
            "(expected some of: next, first)",
        ),
        (
            "v1_next_gen.yml",
            ":5: accounts[0].generations: Identity v1.0 reaches first-generation servers only: "
            "use generations: [first]",
        ),
        (
            "v1_password.yml",
            ":3: accounts[0].password: Identity v1.0 takes an API key, not a password",
        ),
    ],
)
def test_bad_file_names_the_key(fixture: str, message: str) -> None:
    path = str(FIXTURES / fixture)
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    assert caught.value.problems == [f"{path}{message}"]


def test_unreadable_secret_file_names_key_and_path() -> None:
    path = str(FIXTURES / "missing_secret_file.yml")
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    missing = FIXTURES / "does-not-exist.txt"
    assert caught.value.problems == [
        f"{path}:3: accounts[0].password_file: cannot read '{missing}': No such file or directory"
    ]


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as caught:
        load_file("/nonexistent/config.yml")
    assert caught.value.problems == [
        "/nonexistent/config.yml: cannot read the file: No such file or directory"
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "many.yml"
    path.write_text(
        "accounts:\n  - username: a\n    colour: red\n    regions: [MARS]\n"
        "  - name: b\n    api_key: k\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_file(str(path))
    assert [p.split(": ", 1)[1] for p in caught.value.problems] == [
        f"accounts[0].colour: unknown key (expected one of: {ALL_KEYS})",
        "accounts[0].api_key: missing: give api_key, api_key_file, password or password_file",
        "accounts[0].regions: unknown region 'MARS' (expected some of: ORD, DFW, IAD, LON, SYD, "
        "HKG)",
        "accounts[1].username: missing (the Rackspace user name)",
    ]


def test_environment_single_account() -> None:
    config = load_environment(
        {
            "RACKSPACE_USERNAME": "alice",
            "RACKSPACE_API_KEY": "key-1",
            "RACKSPACE_PASSWORD": "pw-1",
            "RACKSPACE_REGIONS": "ord, dfw",
            "RACKSPACE_ACCOUNT_NAME": "prod",
            "RACKSPACE_IDENTITY_URL": "http://127.0.0.1:1/v2.0/",
        }
    )
    (account,) = config.accounts
    assert (account.name, account.username, account.api_key, account.password) == (
        "prod",
        "alice",
        "key-1",
        "pw-1",
    )
    assert account.regions == ("ORD", "DFW")
    assert account.identity_url == "http://127.0.0.1:1/v2.0/"


def test_environment_secret_files(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("from-file\n")
    config = load_environment({"RACKSPACE_USERNAME": "alice", "RACKSPACE_API_KEY_FILE": str(key)})
    assert config.accounts[0].api_key == "from-file"
    assert config.accounts[0].name == "alice"


@pytest.mark.parametrize(
    ("environ", "problems"),
    [
        ({}, ["RACKSPACE_USERNAME: not set (or give --config.file)"]),
        (
            {"RACKSPACE_USERNAME": "alice"},
            [
                "RACKSPACE_API_KEY: not set (set RACKSPACE_API_KEY, RACKSPACE_API_KEY_FILE, "
                "RACKSPACE_PASSWORD or RACKSPACE_PASSWORD_FILE)"
            ],
        ),
        (
            {"RACKSPACE_USERNAME": "a", "RACKSPACE_API_KEY": "k", "RACKSPACE_API_KEY_FILE": "/x"},
            ["RACKSPACE_API_KEY and RACKSPACE_API_KEY_FILE are both set: give only one"],
        ),
        (
            {"RACKSPACE_USERNAME": "a", "RACKSPACE_API_KEY": "k", "RACKSPACE_REGIONS": "ORD,ATL"},
            [
                "RACKSPACE_REGIONS: unknown region 'ATL' (expected some of: ORD, DFW, IAD, LON, "
                "SYD, HKG)"
            ],
        ),
        (
            {"RACKSPACE_USERNAME": "a", "RACKSPACE_API_KEY": "k", "RACKSPACE_IDENTITY_URL": "x"},
            ["RACKSPACE_IDENTITY_URL: must be an http:// or https:// URL"],
        ),
    ],
)
def test_environment_errors(environ: dict[str, str], problems: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_environment(environ)
    assert caught.value.problems == problems


def test_load_prefers_the_file() -> None:
    config = load(str(FIXTURES / "good.yml"), {"RACKSPACE_USERNAME": "ignored"})
    assert [a.name for a in config.accounts] == ["production", "staging-user"]


def test_both_generations_and_identity_v1(tmp_path: Path) -> None:
    path = tmp_path / "gens.yml"
    path.write_text(
        "accounts:\n  - username: a\n    api_key: k\n    generations: [next, first]\n"
        "  - username: b\n    api_key: k\n    identity_url: https://auth.example/v1.0\n"
    )
    both, legacy = load_file(str(path)).accounts
    assert both.generations == ("next", "first")
    assert legacy.generations == ("first",)  # v1.0 reaches nothing else
    env = load_environment(
        {
            "RACKSPACE_USERNAME": "u",
            "RACKSPACE_API_KEY": "k",
            "RACKSPACE_IDENTITY_URL": "https://auth.api.rackspacecloud.com/v1.0",
        }
    )
    assert env.accounts[0].generations == ("first",)
    with pytest.raises(ConfigError) as caught:
        load_environment(
            {
                "RACKSPACE_USERNAME": "u",
                "RACKSPACE_PASSWORD": "p",
                "RACKSPACE_IDENTITY_URL": "https://auth.api.rackspacecloud.com/v1.0/",
            }
        )
    assert caught.value.problems == [
        "RACKSPACE_PASSWORD: Identity v1.0 takes an API key, not a password (set RACKSPACE_API_KEY)"
    ]


def test_rackconnect_takes_a_list_of_regions(tmp_path: Path) -> None:
    path = tmp_path / "rc.yml"
    path.write_text(
        "accounts:\n"
        "  - username: a\n    api_key: k\n    rackconnect: [ord, DFW]\n"
        "  - username: b\n    api_key: k\n    rackconnect: [XYZ]\n"
        "  - username: c\n    api_key: k\n    rackconnect: maybe\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_file(str(path))
    assert caught.value.problems == [
        f"{path}:7: accounts[1].rackconnect: unknown region 'XYZ' "
        "(expected some of: ORD, DFW, IAD, LON, SYD, HKG)",
        f"{path}:10: accounts[2].rackconnect: must be auto, true or false, or a list of "
        "regions, not 'maybe'",
    ]
    path.write_text("accounts:\n  - username: a\n    api_key: k\n    rackconnect: [ord, DFW]\n")
    account = load_file(str(path)).accounts[0]
    assert (account.rackconnect, account.rackconnect_regions) == (True, ("ORD", "DFW"))


def test_the_environment_and_a_file_give_the_same_account(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("k-1\n")
    path = tmp_path / "one.yml"
    path.write_text(
        "accounts:\n  - name: prod\n    username: alice\n    api_key_file: key\n"
        "    identity_url: https://auth.example/v1.0\n    regions: ord, dfw\n"
    )
    environ = {
        "RACKSPACE_ACCOUNT_NAME": "prod",
        "RACKSPACE_USERNAME": "alice",
        "RACKSPACE_API_KEY_FILE": str(key),
        "RACKSPACE_IDENTITY_URL": "https://auth.example/v1.0",
        "RACKSPACE_REGIONS": "ord, dfw",
    }
    assert load_file(str(path)) == load_environment(environ)
    assert load_environment(environ).accounts[0].generations == ("first",)
