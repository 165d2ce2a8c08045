"""The JSON shapes the outside world sees: users, conversations, messages, files."""

from __future__ import annotations

from typing import Any

from warbler.store.models import Conversation, Member, Message, StoredFile, User


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "kind": user.kind,
        "role": user.role,
        "avatar_url": user.avatar_url,
        "disabled": user.disabled,
        "created_at": user.created_at,
    }


def file_view(f: StoredFile) -> dict[str, Any]:
    return {
        "id": f.id,
        "conversation_id": f.conversation_id,
        "uploader_id": f.uploader_id,
        "name": f.name,
        "content_type": f.content_type,
        "size": f.size,
        "sha256": f.sha256,
        "created_at": f.created_at,
    }


def message_view(m: Message, file: StoredFile | None = None) -> dict[str, Any]:
    recalled = m.recalled_at is not None
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "sender_id": m.sender_id,
        "client_msg_id": m.client_msg_id,
        "kind": m.kind,
        "text": None if recalled else m.text,
        "data": None if recalled else m.data,
        "file": None if recalled or file is None else file_view(file),
        "reply_to_id": m.reply_to_id,
        "mentions": m.mentions or [],
        "mention_all": m.mention_all,
        "created_at": m.created_at,
        "edited_at": m.edited_at,
        "recalled": recalled,
        "recalled_at": m.recalled_at,
    }


def conversation_view(c: Conversation, me: Member | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id,
        "kind": c.kind,
        "title": c.title,
        "announcement": c.announcement,
        "created_by": c.created_by,
        "last_seq": c.last_seq,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "last_message_at": c.last_message_at,
    }
    if me is not None:
        out["me"] = {
            "role": me.role,
            "muted": me.muted,
            "last_read_seq": me.last_read_seq,
            "unread": max(0, c.last_seq - me.last_read_seq),
        }
    return out


def member_view(m: Member) -> dict[str, Any]:
    return {
        "user_id": m.user_id,
        "role": m.role,
        "muted": m.muted,
        "last_read_seq": m.last_read_seq,
        "joined_at": m.joined_at,
    }
