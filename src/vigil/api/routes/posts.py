"""Posts: a collector pushes batches (``POST /v1/posts``), anyone with a role reads a stored
post's scores and explanation (``GET /v1/posts/{platform}/{id}``).

The body is read with a byte cap before it is parsed (a chunked request has no length to check
first) and holds at most ``VIGIL_TEXT_MAX_PUSH_POSTS`` records. A record that is not a post is
rejected with its index; the others are scanned. Pushing the same batch again is safe: stored
posts are skipped by ``platform:id``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from vigil.accounts import Principal
from vigil.api.auth import Require
from vigil.api.errors import ApiError
from vigil.api.uploads import read_capped
from vigil.text.service import PostService

router = APIRouter(prefix="/v1/posts", tags=["posts"])


class PostsIn(BaseModel):
    format: Literal["vigil", "x", "telegram"] = Field(
        default="vigil",
        description="vigil: Post objects; x: X API v2 tweet objects or response pages; "
        "telegram: messages of a Telegram export.",
    )
    platform: str | None = Field(
        default=None, max_length=50, description="Platform name for formats that lack one."
    )
    posts: list[dict[str, Any]] = Field(description="The records, at most the configured cap.")


class Rejected(BaseModel):
    index: int
    reason: str


class PushOut(BaseModel):
    queued: int = Field(
        default=0, description="Posts put on the bus for workers (VIGIL_TEXT_QUEUE); 0 otherwise."
    )
    scanned: int = Field(description="New posts scanned and stored.")
    duplicates: int = Field(description="Posts already stored (a retried push), skipped.")
    alerts: int = Field(description="Alerts raised for single posts.")
    campaign_alerts: int = Field(description="Campaigns that became a queue item.")
    flagged: dict[str, int]
    alert_ids: dict[str, int] = Field(description="Post key (or campaign:<id>) to alert id.")
    rejected: list[Rejected]


class PostOut(BaseModel):
    key: str
    platform: str
    post_id: str
    author_ref: str
    text: str
    language: str
    url: str
    reach: int
    created_at: datetime | None
    scanned_at: datetime
    scores: dict[str, Any]
    flagged: list[str]
    severity: int
    lexicon: list[str]
    links: dict[str, Any]
    campaign_id: str | None
    alert_id: int | None


def service(request: Request) -> PostService:
    posts: PostService = request.app.state.posts
    return posts


Posts = Annotated[PostService, Depends(service)]


@router.post(
    "",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PostsIn.model_json_schema()}},
        }
    },
)
async def push(
    request: Request,
    response: Response,
    _: Annotated[Principal, Depends(Require("post:push"))],
    posts: Posts,
) -> PushOut:
    """Scan a batch of posts; flagged ones go to the review queue. With VIGIL_TEXT_QUEUE the
    posts go on the bus for workers instead (202, counted as ``queued``)."""
    settings = posts.settings
    body = await read_capped(request, settings.text_max_push_bytes)
    try:
        batch = PostsIn.model_validate(json.loads(body))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, "invalid_json", str(error)) from None
    except ValidationError as error:
        raise ApiError(422, "invalid_request", error.errors(include_url=False)) from None
    if len(batch.posts) > settings.text_max_push_posts:
        raise ApiError(
            413, "too_many_posts", f"at most {settings.text_max_push_posts} posts per request"
        )
    pushed = await run_in_threadpool(posts.push, batch.posts, batch.format, batch.platform)
    rejected = [Rejected(index=bad.line, reason=bad.reason) for bad in pushed.rejected]
    result = pushed.result
    if result is None:
        response.status_code = 202
        return PushOut(
            queued=pushed.queued,
            scanned=0,
            duplicates=0,
            alerts=0,
            campaign_alerts=0,
            flagged={},
            alert_ids={},
            rejected=rejected,
        )
    return PushOut(
        scanned=result.scanned,
        duplicates=result.duplicates,
        alerts=result.alerts,
        campaign_alerts=result.campaign_alerts,
        flagged=dict(result.flagged),
        alert_ids=result.alert_ids,
        rejected=rejected,
    )


@router.get("/{platform}/{post_id}")
def get_post(
    platform: Annotated[str, Path(max_length=50)],
    post_id: Annotated[str, Path(max_length=200)],
    _: Annotated[Principal, Depends(Require("post:read"))],
    posts: Posts,
) -> PostOut:
    """A stored post with its scores, the labels flagged, lexicon hits and campaign."""
    record = posts.get(f"{platform}:{post_id}")
    if record is None:
        raise ApiError(404, "not_found", f"no post {platform}:{post_id}")
    return PostOut.model_validate(record, from_attributes=True)
