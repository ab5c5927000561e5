"""Where well-known CalDAV services live, so a user can pick one instead of typing a URL."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ..errors import InvalidInput

# preset name -> the URL caldav starts discovery from (RFC 6764 s5 / current-user-principal)
FIXED_PRESETS: dict[str, str] = {
    "icloud": "https://caldav.icloud.com",
    "fastmail": "https://caldav.fastmail.com/dav/",
}
# Nextcloud serves DAV under the instance's own URL.
NEXTCLOUD_DAV_PATH = "/remote.php/dav"
PRESETS = (*FIXED_PRESETS, "nextcloud")


def resolve_server_url(server_url: str, preset: str, username: str) -> str:
    """The server the user chose (the profile keeps it as given; connections use
    :func:`normalise_url` of it).

    ``server_url`` alone is used as given: a full URL, or a bare domain (``example.com``)
    that discovery starts at (its root, then ``/.well-known/caldav``, RFC 6764 s5). With
    neither a URL nor a preset, an email-address username's domain is used the same way.
    """
    return _chosen_url(server_url, preset, username)


def normalise_url(url: str) -> str:
    """An absolute http(s) URL with a path for what a user typed: ``example.com``,
    ``alice@example.com``, ``10.0.0.1:8443`` become ``https://…/``. Nothing is looked
    up here: the outbound guard checks the host when (and before) Calgate connects."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url.rsplit("@", 1)[-1]  # an address: its domain
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise InvalidInput("server_url is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidInput("server_url must be an http or https URL or a host name")
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path or "/", parts.query, ""))


def _chosen_url(server_url: str, preset: str, username: str) -> str:
    server_url, preset = server_url.strip(), preset.strip().lower()
    if preset in FIXED_PRESETS:
        return server_url or FIXED_PRESETS[preset]
    if preset == "nextcloud":
        if not server_url:
            raise InvalidInput("the nextcloud preset needs the instance's server_url")
        if server_url.rstrip("/").endswith(NEXTCLOUD_DAV_PATH):
            return server_url
        return server_url.rstrip("/") + NEXTCLOUD_DAV_PATH
    if preset:
        raise InvalidInput(f"unknown CalDAV preset {preset!r}; known: {', '.join(PRESETS)}")
    if server_url:
        return server_url
    if "@" in username:
        return username.rsplit("@", 1)[1]  # discovery on the mail domain
    raise InvalidInput("a CalDAV account needs a server_url or a preset")
