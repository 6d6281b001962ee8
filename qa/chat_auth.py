"""Who may reach the chat: Gradio's login from a ``user:password`` file, and the refusal
to serve beyond this machine without one."""

from __future__ import annotations

from pathlib import Path

from qa.errors import ConfigError

Credentials = list[tuple[str, str]]


def read_auth_file(path: Path) -> Credentials:
    """``user:password`` lines (blank lines and ``#`` comments ignored) for Gradio's login."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the auth file {path} ({exc})") from exc
    pairs: Credentials = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, password = line.partition(":")
        if not colon or not user.strip() or not password:
            raise ConfigError(f"{path} line {number}: expected user:password")
        pairs.append((user.strip(), password))
    if not pairs:
        raise ConfigError(f"{path} holds no user:password line")
    return pairs


def check_exposure(host: str, auth: Credentials | None, allow_no_auth: bool, share: bool) -> None:
    """Refuse to serve the documents beyond this machine without a login, unless told to."""
    from qa.engine import LOCAL_HOSTS

    exposed = share or host not in LOCAL_HOSTS
    if exposed and not auth and not allow_no_auth:
        where = "a public share link" if share else f"--host {host}"
        raise ConfigError(
            f"{where} makes the chat reachable from other machines: give --auth-file FILE "
            "(user:password lines), or --no-auth to serve it without a login"
        )
