"""User accounts: creation (CLI, first start) and login checks."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_api.models import User, utcnow
from control_api.security import ROLES, hash_password, verify_password

# Verified against when the user does not exist, so a login takes as long for a wrong name as for a
# wrong password and does not reveal which accounts exist.
_DUMMY_HASH = hash_password("voiceflow-no-such-user")


class UserExists(Exception):
    pass


def create_user(session: Session, username: str, password: str, role: str) -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not username or len(username) > 64:
        raise ValueError("username must be 1 to 64 characters")
    if len(password) < 8:
        raise ValueError("password must be at least 8 characters")
    if find_user(session, username) is not None:
        raise UserExists(username)
    user = User(username=username, password_hash=hash_password(password), role=role, created_at=utcnow())
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = find_user(session, username)
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    return user if verify_password(user.password_hash, password) else None


def ensure_admin(session: Session, username: str, password: str) -> bool:
    """Create the configured admin on first start; an existing account (and its password) is left alone."""
    if not password or find_user(session, username) is not None:
        return False
    create_user(session, username, password, "admin")
    return True
