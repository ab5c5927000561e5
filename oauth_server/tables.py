"""The authorization server's tables (SQLAlchemy Core).

Nothing secret is stored in clear: client secrets, codes and tokens are kept as keyed
digests (see ``hashing.py``). gateway's Alembic history creates these tables alongside its
own; nothing here imports gateway.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("secret_hash", String(128), nullable=True),  # None for public clients
    Column("name", String(200), nullable=False),
    Column("redirect_uris", JSON, nullable=False),
    Column("allowed_scopes", Text, nullable=False),
    Column("public", Boolean, nullable=False, default=False),
    Column("legacy_no_pkce", Boolean, nullable=False, default=False),
    Column("verified", Boolean, nullable=False, default=False),
    Column("logo_url", Text, nullable=True),
    Column("accent_color", String(16), nullable=True),
    Column("privacy_policy_url", Text, nullable=True),
    Column("support_url", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("secret_rotated_at", DateTime(timezone=True), nullable=True),
    # During a rotation the previous secret stays valid until ``previous_secret_until``.
    Column("previous_secret_hash", String(128), nullable=True),
    Column("previous_secret_until", DateTime(timezone=True), nullable=True),
    # A confidential client keeps one refresh token per grant unless it opted into rotation
    # (public clients always rotate): see registry.Client.rotates_refresh_tokens.
    Column("rotate_refresh_tokens", Boolean, nullable=False, default=False,
           server_default="0"),
)

# One family per code exchange: every access and refresh token of that grant belongs to it,
# so reuse detection and revocation kill exactly one grant.
families = Table(
    "oauth_token_families",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "client_id",
        String(64),
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("subject", String(64), nullable=False, index=True),
    Column("scope", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_reason", String(40), nullable=True),
)

tokens = Table(
    "oauth_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),  # "access" | "refresh"
    Column(
        "family_id",
        String(40),
        ForeignKey("oauth_token_families.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("scope", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # Refresh tokens only: when rotated, and the successor pair sealed with a key derived
    # from this token, so a retry inside the grace window gets the same pair back.
    Column("rotated_at", DateTime(timezone=True), nullable=True),
    Column("successor", LargeBinary, nullable=True),
    # The rotation that issued this pair (0 for the code exchange's). A rotation deletes
    # the family's rows older than the token it consumed: what reuse detection needs of
    # them is carried by the refresh tokens themselves (crypto.ServerKeys.refresh_token).
    Column("generation", Integer, nullable=False, server_default="0"),
)

codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column(
        "client_id",
        String(64),
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("subject", String(64), nullable=False),
    Column("linking_profile", JSON, nullable=True),  # provider/profile names, no secrets
    Column("code_challenge", String(128), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("family_id", String(40), nullable=True),  # what the first redemption issued
)

# A consent flow in progress, held server-side so hidden form fields cannot change it.
transactions = Table(
    "oauth_consent_transactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("session_hash", String(64), nullable=False),
    Column(
        "client_id",
        String(64),
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("state", Text, nullable=True),
    Column("code_challenge", String(128), nullable=True),
    Column("provider_name", String(40), nullable=True),
    Column("avoid_linking", Boolean, nullable=False, default=False),
    # The host's reference of the link_token the request carried (explicit linking), if any.
    Column("link_key_hash", String(64), nullable=True),
    Column("linked", JSON, nullable=True),  # what the connect step linked (no secrets)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # A relink flow (the host's profile_relink_url): the profile it reconnects; no code is
    # issued at its end.
    Column("relink_profile_id", String(64), nullable=True),
)

# Rate limiting of wrong client secrets, shared by every API process through the database.
auth_failures = Table(
    "oauth_client_auth_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("bucket", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_oauth_client_auth_failures_bucket_at", "bucket", "at"),
)
