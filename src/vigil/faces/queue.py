"""The ``faces`` queue: face searches taken off the request path, run by ``vigil worker --role
faces``.

With ``VIGIL_FACES_QUEUE`` the API checks a search as it would run it, stores it ``queued`` with
its probe media sealed in the probe media folder (shared storage when workers run elsewhere),
and publishes ``{"search_id": N}`` here under the message id ``face-search-N``. A worker runs
the search as the person who asked for it (:meth:`FaceSearcher.run`).

Delivery is at least once, and handling is idempotent: a message for a search that is over
does nothing; one for a search left ``running`` by a worker that died runs it again from
scratch (candidates are written only in the transaction that ends a search). A malformed
message or an unknown search is logged and dropped. A search that a rule now forbids (the
requester's rights, a watchlist suspended or expired, a closed case) fails with the reason. Any
other error (the database away, the probe media folder not mounted) raises, so the bus delivers
the message again; on its last delivery the search is failed with that error instead, since
nothing would run it after the bus dead-letters the message.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vigil.accounts import Principal
from vigil.bus import Bus, BusSettings, Handler, Message
from vigil.faces.search import ProbeMedia, SearchRequest
from vigil.faces.service import FaceService
from vigil.logs import get_logger
from vigil.review import NotFound

log = get_logger(__name__)

QUEUE = "faces"


class SearchMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    search_id: int = Field(ge=1)


class NotQueued(RuntimeError):
    """The bus refused a search, which is failed for it: nothing would ever run it."""

    def __init__(self, search_id: int, error: str) -> None:
        super().__init__(f"search {search_id} could not be queued and has failed: {error}")
        self.search_id = search_id


def message_id(search_id: int) -> str:
    """The bus's duplicate check drops a second publish of the same search."""
    return f"face-search-{search_id}"


def enqueue(
    service: FaceService,
    bus: Bus,
    principal: Principal,
    request: SearchRequest,
    media: Sequence[ProbeMedia],
) -> int:
    """Check and store a search for the workers (:meth:`FaceSearcher.queue`) and publish it;
    returns its id. Raises :class:`NotQueued` when the bus refuses it."""
    search_id = service.searcher.queue(principal, request, media)
    data = SearchMessage(search_id=search_id).model_dump_json().encode()
    try:
        bus.publish(QUEUE, data, msg_id=message_id(search_id))
    except Exception as exc:  # whatever the bus's client raises, the search must not wait
        error = f"the work bus refused it: {exc}"
        service.searcher.fail(search_id, error)
        raise NotQueued(search_id, error) from exc
    return search_id


def faces_handler(service: FaceService) -> Handler:
    """Runs the search of each message in turn; see the module docstring for what is retried.

    Run it one message per fetch (``batch=1``): a search can take minutes, and a batch that
    fails is handled again message by message."""
    max_deliver = BusSettings.of(service.settings).bus_max_deliver

    def handle(messages: Sequence[Message]) -> None:
        for message in messages:
            try:
                search_id = SearchMessage.model_validate_json(message.data).search_id
            except ValidationError as exc:
                log.warning("faces.message_dropped", sequence=message.sequence, reason=str(exc))
                continue
            try:
                state = service.searcher.run(search_id)
            except NotFound as exc:
                log.warning("faces.message_dropped", sequence=message.sequence, reason=str(exc))
                continue
            except Exception as exc:
                if message.deliveries < max_deliver:
                    raise
                service.searcher.fail(search_id, f"gave up after {message.deliveries} tries: {exc}")
                log.error("faces.search_given_up", search_id=search_id, exc_info=True)
                continue
            log.info("faces.search", search_id=search_id, state=state)

    return handle
