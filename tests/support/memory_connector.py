"""An in-memory calendar connector, registered only in tests, so the consent screen's connect
step works end to end before the real provider issues land."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.services.linking import FormField, VerificationFailed, VerifiedAccount
from providers.memory.provider import WORLD

PASSWORD = "correct horse"


class MemoryConnector:
    name = "memory"
    display_name = "Test Calendar"
    provider_name = "memory"
    provider_service = "memory"
    fields = (
        FormField("username", "Email address", "email", autocomplete="username"),
        FormField("password", "Password", "password", help="Use the test password.",
                  autocomplete="current-password"),
    )

    def __init__(self) -> None:
        self.verified: list[str] = []

    def configured(self, client_id: str) -> bool:
        return True

    def verify(self, values: Mapping[str, str]) -> VerifiedAccount:
        if values.get("password") != PASSWORD:
            raise VerificationFailed("The test calendar did not accept that password.")
        self.verified.append(values["username"])
        # The upstream is the in-memory reference provider, so linked profiles really sync.
        if values["username"] not in WORLD.accounts:
            WORLD.add_account(values["username"], PASSWORD)
        return VerifiedAccount(profile_name=values["username"],
                               upstream_id=values["username"].lower(),
                               credentials={"account": values["username"],
                                            "password": values["password"]})
