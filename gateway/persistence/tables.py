"""gateway's own tables: accounts, profiles and the audit log (SQLAlchemy Core).

An account (``acc_…``, the OAuth ``sub``) is one end user of one client app; a profile
(``pro_…``) is one linked upstream calendar account. Upstream credentials are never stored
here: ``credential_path`` points into the secret store.
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

# The most ``calendars.max_event_seconds`` holds (a 32-bit INTEGER on PostgreSQL, ~68
# years): an event longer than that is recorded as this, which reads take as "unbounded".
MAX_SPAN_SECONDS = 2**31 - 1

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False, index=True),
    Column("email", Text, nullable=True),
    Column("name", Text, nullable=True),
    Column("default_tzid", String(64), nullable=False, default="Etc/UTC"),
    # Browser linking: the hashed value of the persistent linking cookie that created it.
    Column("link_key_hash", String(64), nullable=True),
    Column("data_key_wrapped", Text, nullable=True),
    # Every individual scope ever granted to this account (aggregates expanded): what the
    # mirror may keep (free/busy only, the app's own events only, or everything).
    Column("scope", Text, nullable=False, default=""),
    # Bumped in the same transaction as every change to the account's mirror (events,
    # calendars, profiles): rendered read pages are cached under it (services/pagecache.py).
    Column("mirror_generation", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_accounts_client_link", "client_id", "link_key_hash"),
    # An account the client app owns (an application calendar): the digest its profile's
    # upstream_id holds (of client and the app's name for it). Unique per client, so that
    # simultaneous first calls make one account; None for every linked account.
    Column("owned_key", String(64), nullable=True),
    Index("ux_accounts_client_owned", "client_id", "owned_key", unique=True),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "account_id",
        String(64),
        ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("provider_name", String(40), nullable=False),
    Column("provider_service", String(40), nullable=False),
    Column("profile_name", Text, nullable=False),
    Column("upstream_id", Text, nullable=False),  # SHA-256 of the upstream account's id
    Column("credential_path", Text, nullable=True),
    Column("connected", Boolean, nullable=False, default=True),
    Column("initial_sync_required", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Sync scheduling: due time, a lease so one worker syncs a profile at a time, last error.
    Column("next_sync_at", DateTime(timezone=True), nullable=True),
    Column("sync_lease_until", DateTime(timezone=True), nullable=True),
    Column("sync_failures", Integer, nullable=False, default=0),
    Column("last_sync_error", Text, nullable=True),
    # When the upstream calendar list was last read (it is read on a slower cadence).
    Column("calendars_listed_at", DateTime(timezone=True), nullable=True),
    # Set when the provider pushes a change (webhook): a sync that started before it does
    # not push the next sync back to the regular interval.
    Column("sync_requested_at", DateTime(timezone=True), nullable=True),
    # Why the profile was disconnected (e.g. an upstream's invalid_grant), when it was.
    Column("disconnected_at", DateTime(timezone=True), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("action", String(80), nullable=False),
    Column("subject", String(80), nullable=True),
    Column("detail", JSON, nullable=True),
)

# -- the mirror (issue 3) ------------------------------------------------------------------

calendars = Table(
    "calendars",
    metadata,
    Column("id", String(64), primary_key=True),  # cal_…
    Column("profile_id", String(64), ForeignKey("profiles.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("upstream_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("readonly", Boolean, nullable=False, default=False),
    Column("primary", Boolean, nullable=False, default=False),
    Column("color", String(16), nullable=True),
    Column("tzid", String(64), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("cursor", Text, nullable=True),  # the provider's sync cursor
    # Moved on by every reset of the cursor; a running sync saves its cursor only if the
    # epoch it read is still this one (persistence/cursors.py).
    Column("cursor_epoch", Integer, nullable=False, default=0, server_default="0"),
    Column("synced_at", DateTime(timezone=True), nullable=True),
    # The longest event ever mirrored here (seconds; None until known): lets a window read
    # bound ``start_at`` from below, so the index range is the window, not all that precedes.
    Column("max_event_seconds", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # What the account's client app may do to events it did not create (API.md s6.3):
    # "sandbox" (only its own), or "unrestricted" once the user approved elevated
    # permissions for this calendar (``POST /v1/permissions``).
    Column("permission_level", String(16), nullable=False, default="sandbox",
           server_default="sandbox"),
    Index("ux_calendars_profile_upstream", "profile_id", "upstream_id", unique=True),
)

# One row per event instance inside the sync window (and every managed event). The text of
# an event (summary, description, location, people) is sealed with the account's data key.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("calendar_id", String(64), ForeignKey("calendars.id", ondelete="CASCADE"),
           nullable=False),
    Column("resource_id", Text, nullable=False),
    Column("instance_id", Text, nullable=False),
    Column("event_uid", String(64), nullable=False),  # evt_external_… (public)
    Column("managed_key", Text, nullable=True),
    Column("start_at", DateTime(timezone=True), nullable=False),  # UTC (all-day: midnight)
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("all_day", Boolean, nullable=False, default=False),
    Column("start_tzid", String(64), nullable=True),
    Column("end_tzid", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("transparency", String(16), nullable=False),
    Column("recurring", Boolean, nullable=False, default=False),
    Column("private", Boolean, nullable=False, default=False),
    # The account owner's own answer (accepted, declined, tentative, ...): availability
    # leaves declined invitations out without unsealing the text. None: not known.
    Column("participation", String(16), nullable=True),
    Column("sealed", LargeBinary, nullable=True),  # None when the scope allows no text
    Column("etag", Text, nullable=True),
    Column("fingerprint", String(64), nullable=False),  # digest of the content: no-op syncs
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),  # what last_modified filters
    Index("ux_events_calendar_instance", "calendar_id", "instance_id", unique=True),
    # Covers the window filter of a read (and its count) without touching the rows.
    Index("ix_events_calendar_window", "calendar_id", "deleted", "start_at", "end_at",
          "all_day", "managed_key"),
    Index("ix_events_calendar_updated", "calendar_id", "updated"),
    Index("ix_events_uid", "event_uid"),
)

# A client app's own events: the desired state, and what the worker last applied upstream.
managed_events = Table(
    "managed_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("calendar_id", String(64), ForeignKey("calendars.id", ondelete="CASCADE"),
           nullable=False),
    Column("event_id", Text, nullable=False),  # the client's id
    Column("managed_key", String(80), nullable=False),  # written upstream, unique per calendar
    Column("desired", LargeBinary, nullable=True),  # sealed JSON; None once deleted
    Column("version", Integer, nullable=False, default=1),
    Column("applied_version", Integer, nullable=False, default=0),
    Column("resource_id", Text, nullable=True),
    Column("etag", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ux_managed_calendar_event", "calendar_id", "event_id", unique=True),
    Index("ix_managed_due", "applied_version", "version", "next_attempt_at"),
)

# The account owner's answers to invitations, queued like managed-event writes.
participation_writes = Table(
    "participation_writes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("calendar_id", String(64), ForeignKey("calendars.id", ondelete="CASCADE"),
           nullable=False),
    Column("event_uid", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("applied_version", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ux_participation_calendar_event", "calendar_id", "event_uid", unique=True),
)

# Provider push channels (an upstream's watch channel): one per mirrored calendar of a profile whose
# provider pushes. The verification token is kept only as its SHA-256 digest.
push_channels = Table(
    "push_channels",
    metadata,
    Column("id", String(64), primary_key=True),  # our channel id, also the provider's
    Column("profile_id", String(64), ForeignKey("profiles.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("calendar_id", String(64), ForeignKey("calendars.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("provider_name", String(40), nullable=False),
    Column("resource_id", Text, nullable=False),  # the provider's id of the watched resource
    Column("token_hash", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("messages", Integer, nullable=False, default=0),
)

# -- notifications to client apps (issue 5) ------------------------------------------------

# A client app's notification channel (API.md s9.1): one account, one callback URL, filters.
# ``digest`` makes an identical creation return the existing channel.
channels = Table(
    "channels",
    metadata,
    Column("id", String(64), primary_key=True),  # chn_…
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("client_id", String(64), nullable=False),
    Column("callback_url", Text, nullable=False),
    Column("calendar_ids", JSON, nullable=True),  # None: every calendar
    Column("only_managed", Boolean, nullable=False, default=False),
    Column("digest", String(64), nullable=False),
    # "active", or "failing" once deliveries have failed for the whole retry period.
    Column("status", String(16), nullable=False, default="active"),
    Column("failing_since", DateTime(timezone=True), nullable=True),
    Column("last_delivered_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ux_channels_account_digest", "account_id", "digest", unique=True),
)

# The durable outbox of notifications: delivered at least once, in ``id`` order per channel.
# A pending ``change`` is coalesced with the next one (the earliest ``changes_since`` wins).
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("public_id", String(64), nullable=False, unique=True),  # ntf_…, for de-duplication
    Column("channel_id", String(64), ForeignKey("channels.id", ondelete="CASCADE"),
           nullable=False),
    Column("type", String(40), nullable=False),
    Column("changes_since", DateTime(timezone=True), nullable=True),
    Column("profile_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("first_failed_at", DateTime(timezone=True), nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Index("ix_notifications_channel_pending", "channel_id", "delivered_at", "id"),
)

# Every delivery attempt (kept for ``GET /v1/channels/{id}/deliveries``; pruned by age).
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel_id", String(64), ForeignKey("channels.id", ondelete="CASCADE"),
           nullable=False),
    Column("notification_id", String(64), nullable=False),  # the ntf_… id
    Column("type", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer, nullable=True),  # None: no HTTP answer
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_deliveries_channel_at", "channel_id", "at"),
)

# POST /v1/batch (API.md s11): what each entry became, so its progress can be read later.
batches = Table(
    "batches",
    metadata,
    Column("id", String(64), primary_key=True),  # bat_…
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("client_id", String(64), nullable=False),
    Column("entries", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

batch_entries = Table(
    "batch_entries",
    metadata,
    Column("batch_id", String(64), ForeignKey("batches.id", ondelete="CASCADE"),
           primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("status", Integer, nullable=False),  # the entry's answer (202, 404, 422, …)
    # The write it recorded and its version (None when the entry was refused or a no-op).
    Column("managed_id", Integer, ForeignKey("managed_events.id", ondelete="CASCADE"),
           nullable=True, index=True),
    Column("version", Integer, nullable=True),
    # Or the external event write (event_uid) it recorded; version is that write's.
    Column("external_id", Integer, ForeignKey("external_writes.id", ondelete="CASCADE"),
           nullable=True, index=True),
)

# -- elevated permissions and external events (issue 13) -----------------------------------

# An app's request for elevated permissions (POST /v1/permissions), answered by the user on
# Calgate's page. Only the SHA-256 of the URL's token is kept; it is single-use and expires.
permission_requests = Table(
    "permission_requests",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("client_id", String(64), nullable=False),
    Column("calendar_ids", JSON, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=True),
)

# Writes to events the app did not create (``event_uid``), queued like managed writes: a
# sealed patch of the fields the app sent, or None for a deletion.
external_writes = Table(
    "external_writes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("calendar_id", String(64), ForeignKey("calendars.id", ondelete="CASCADE"),
           nullable=False),
    Column("event_uid", String(64), nullable=False),
    Column("resource_id", Text, nullable=False),  # the upstream's id of the event
    Column("patch", LargeBinary, nullable=True),  # sealed JSON; None: delete the event
    Column("version", Integer, nullable=False, default=1),
    Column("applied_version", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ux_external_calendar_event", "calendar_id", "event_uid", unique=True),
    Index("ix_external_due", "applied_version", "version", "next_attempt_at"),
)

# -- Smart Invites (API.md s11): invitations a client app emails itself, per client app ------

smart_invites = Table(
    "smart_invites",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", String(64), nullable=False),
    Column("smart_invite_id", String(256), nullable=False),  # the app's own id
    Column("uid", String(255), nullable=False, unique=True),  # the iCalendar UID, stable
    Column("sequence", Integer, nullable=False, default=0),
    Column("fingerprint", String(64), nullable=False),  # of the event as last sent
    # The event and organizer, sealed with the server key (they are calendar contents).
    Column("sealed_event", Text, nullable=False),
    Column("callback_url", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ux_smart_invites_client_invite", "client_id", "smart_invite_id", unique=True),
)

smart_invite_recipients = Table(
    "smart_invite_recipients",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invite_id", Integer, ForeignKey("smart_invites.id", ondelete="CASCADE"),
           nullable=False),
    Column("email", String(254), nullable=False),  # as the app wrote it
    Column("email_key", String(254), nullable=False),  # lower case, for matching replies
    Column("status", String(16), nullable=False),  # pending, accepted, tentative, declined
    Column("comment", Text, nullable=True),
    Column("cancelled", Boolean, nullable=False, default=False),
    Column("replied_at", DateTime(timezone=True), nullable=True),
    Index("ux_smart_invite_recipients_key", "invite_id", "email_key", unique=True),
)

# Notifications to a Smart Invite's callback_url, delivered by the worker like channels'.
smart_invite_notifications = Table(
    "smart_invite_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("public_id", String(64), nullable=False, unique=True),  # ntf_…, for de-duplication
    Column("invite_id", Integer, ForeignKey("smart_invites.id", ondelete="CASCADE"),
           nullable=True, index=True),
    # smart_invite, or conferencing_assigned (a managed event's subscription; 0017)
    Column("type", String(40), nullable=False, server_default="smart_invite"),
    Column("managed_event_id", Integer, ForeignKey("managed_events.id", ondelete="CASCADE"),
           nullable=True, index=True),
    Column("dedup_key", String(64), nullable=True, unique=True),  # one per event/uri/url
    Column("client_id", String(64), nullable=False),
    Column("callback_url", Text, nullable=False),
    # smart_invite: the smart_invite object, sealed with the server key;
    # conferencing_assigned: the event object, sealed with the account's data key
    Column("sealed_body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("first_failed_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Index("ix_smart_invite_notifications_pending", "delivered_at", "next_attempt_at"),
)

# POST /v1/link_tokens (API.md s2.5): a short-lived, single-use token that attaches the next
# profile linked with it (``link_token`` on /oauth/authorize) to this account, from any
# device. Only a SHA-256 digest of the token is kept (it is 256 random bits).
link_tokens = Table(
    "link_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("client_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)
