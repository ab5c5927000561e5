from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError, describe


def test_embedded_defaults_need_nothing_installed():
    settings = Settings.from_env({})
    assert settings.secret_backend == "local"
    assert settings.worker_mode == "inprocess"
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.effective_database_url.endswith("/.calgate/calgate.db")
    assert settings.issuer == "http://127.0.0.1:8080"


def test_values_are_read_and_typed_from_calgate_variables():
    settings = Settings.from_env({
        "CALGATE_PORT": "9000", "CALGATE_DATA_DIR": "/srv/calgate",
        "CALGATE_PUBLIC_URL": "https://calendar.example.com/",
        "CALGATE_DATABASE_URL": "postgresql+psycopg://gw@db/calgate",
        "CALGATE_VAULT_TOKEN_FILE": "/run/vault-token",
    })
    assert settings.port == 9000
    assert settings.data_dir == Path("/srv/calgate")
    assert settings.issuer == "https://calendar.example.com"
    assert settings.effective_database_url == "postgresql+psycopg://gw@db/calgate"
    assert settings.vault_token_file == Path("/run/vault-token")


def test_settings_are_immutable():
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(("env", "message"), [
    ({"CALGATE_PORT": "eighty"}, "CALGATE_PORT"),
    ({"CALGATE_SECRET_BACKEND": "s3"}, "CALGATE_SECRET_BACKEND"),
    ({"CALGATE_PUBLIC_URL": "http://calendar.example.com"}, "https"),
    ({"CALGATE_PUBLIC_URL": "https://calendar.example.com/gw?x=1"}, "no path"),
    ({"CALGATE_REFRESH_GRACE_SECONDS": "60"}, "GRACE"),
    ({"CALGATE_CODE_TTL": "3600"}, "CODE_TTL"),
    ({"CALGATE_VAULT_AUTH": "userpass"}, "CALGATE_VAULT_AUTH"),
    ({"CALGATE_FORWARDED_ALLOW_IPS": "*"}, "CALGATE_FORWARDED_ALLOW_IPS"),
    ({"CALGATE_FORWARDED_ALLOW_IPS": "10.0.0.0/8, proxy.local"}, "'proxy.local'"),
    ({"CALGATE_FORWARDED_ALLOW_IPS": "127.0.0.1,::/0"}, "'::/0'"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_trusted_proxies_are_addresses_and_networks():
    value = "127.0.0.1, 10.244.0.0/16,fd00::/8"
    assert Settings.from_env({"CALGATE_FORWARDED_ALLOW_IPS": value}).forwarded_allow_ips == value


def test_every_setting_is_documented():
    rows = describe()
    assert len(rows) == len(Settings.__dataclass_fields__)
    for name, _default, help_text in rows:
        assert name.startswith("CALGATE_")
        assert len(help_text) > 10


def test_readme_documents_every_setting():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name, default, help_text in describe():
        assert f"| `{name}` |" in readme, f"{name} is missing from the README's table"
        assert help_text in readme, f"{name}'s help text in the README is out of date"
