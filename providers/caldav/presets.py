"""Where well-known CalDAV services live, so a user can pick one instead of typing a URL."""

from __future__ import annotations

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
    """The URL to start discovery from.

    ``server_url`` alone is used as given: a full URL, or a bare domain (``example.com``)
    that caldav resolves with RFC 6764 (SRV/TXT records, then ``/.well-known/caldav``).
    With neither a URL nor a preset, an email-address username is resolved the same way.
    """
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
        return username.rsplit("@", 1)[1]  # RFC 6764 discovery on the mail domain
    raise InvalidInput("a CalDAV account needs a server_url or a preset")
