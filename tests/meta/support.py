"""What the meta contract tests share: a clock the test moves, and a user to act as."""

from __future__ import annotations

from collab.meta import Users

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def add_user(meta: Users, subject: str = "alice", email: str | None = None) -> str:
    user = await meta.upsert_oidc_user(
        "https://idp", subject, name=subject, email=email, email_verified=True, picture=None
    )
    return user.id
