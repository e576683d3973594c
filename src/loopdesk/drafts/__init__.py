"""Whole returns made in the conversation, step by step, through Loop's Draft Returns
API (`DraftDesk`): the merchant's switch, legality from Loop's `links`, every step
audited, the drafts kept in the store."""

from loopdesk.drafts.desk import ACTIONS, DraftDesk, DraftResult
from loopdesk.drafts.view import draft_view
from loopdesk.store.drafts import StoredDraft

__all__ = ["ACTIONS", "DraftDesk", "DraftResult", "StoredDraft", "draft_view"]
