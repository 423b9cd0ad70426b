"""What every adapter shares: turning mapped fields into a validated post, with the reason a
row is not one."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from vigil.text.posts import Post


def validated_post(**fields: Any) -> Post:
    """A :class:`Post` from ``fields``; a ValueError naming the field that is wrong."""
    try:
        return Post.model_validate(fields)
    except ValidationError as error:
        raise ValueError(validation_reason(error)) from None


def validation_reason(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'post'}: {problem['msg']}"
        for problem in error.errors()
    )
