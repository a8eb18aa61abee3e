"""Site admins: ``COLLAB_ADMINS`` lists verified emails or ``issuer:sub`` pairs.

An email only counts when the identity provider said it is verified: anyone can put any
address in an unverified profile. ``issuer:sub`` names one account at one provider exactly
(``https://idp.example.com:248289761001``; the dev user is ``collab:dev:dev``).
"""

from __future__ import annotations

from collab.meta import User
from collab.settings import Settings


def admin_entries(settings: Settings) -> list[str]:
    return [e.strip() for e in settings.admins.split(",") if e.strip()]


def is_admin(user: User, settings: Settings) -> bool:
    if user.disabled:
        return False
    entries = admin_entries(settings)
    if not entries:
        return False
    # Compare against the pair as written rather than parsing entries: issuers contain colons.
    if f"{user.issuer}:{user.subject}" in entries:
        return True
    if user.email and user.email_verified:
        email = user.email.casefold()
        return any("@" in e and ":" not in e and e.casefold() == email for e in entries)
    return False
