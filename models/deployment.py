"""What should serve: the active model and an optional candidate with its traffic share, as the
``model-events`` topic says. Pure: the worker applies events here, then loads what changed.

Event (JSON, key = model name): ``{"event_id", "name", "version", "action", "artifact_dir",
"traffic_share", "previous_version", "reason", "time"}`` with ``action`` one of ``activate`` (this
version serves everyone), ``candidate`` (it serves ``traffic_share`` of the symbols; 0 removes it),
``rollback`` (``version`` serves everyone again; the candidate is dropped) and ``retire`` (a retired
candidate stops serving; retiring the active version is refused: something must serve).

>>> d = Deployment()
>>> d.apply({"version": "v1", "action": "activate", "artifact_dir": "/m/v1"})
True
>>> d.apply({"version": "v2", "action": "candidate", "artifact_dir": "/m/v2", "traffic_share": 0.2})
True
>>> (d.active.version, d.candidate.version, d.candidate.share)
('v1', 'v2', 0.2)
>>> d.apply({"version": "v2", "action": "activate", "artifact_dir": "/m/v2"}), d.active.version, d.candidate
(True, 'v2', None)
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from core.errors import InvalidInput

__all__ = ["Deployment", "DeploymentTimeline", "Slot", "ACTIONS"]

log = logging.getLogger(__name__)

ACTIONS = ("activate", "candidate", "rollback", "retire")


@dataclass(frozen=True)
class Slot:
    version: str
    artifact_dir: str
    share: float = 1.0


class Deployment:
    def __init__(self) -> None:
        self.active: Slot | None = None
        self.candidate: Slot | None = None
        self.applied = 0

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Apply one event; True when what serves changed. InvalidInput for a malformed event."""
        action, version = event.get("action"), event.get("version")
        if action not in ACTIONS or not isinstance(version, str) or not version:
            raise InvalidInput(f"model event needs an action in {ACTIONS} and a version, got {dict(event)!r:.200}")
        before = (self.active, self.candidate)
        if action in ("activate", "rollback"):
            self.active = Slot(version, self._dir(event))
            if action == "rollback" or (self.candidate and self.candidate.version == version):
                self.candidate = None
        elif action == "candidate":
            share = float(event.get("traffic_share") or 0.0)
            if not 0.0 <= share <= 1.0:
                raise InvalidInput(f"traffic_share must be within 0..1, got {share}")
            self.candidate = Slot(version, self._dir(event), share) if share > 0 else None
        elif self.candidate and self.candidate.version == version:  # retire
            self.candidate = None
        self.applied += 1
        return (self.active, self.candidate) != before

    @staticmethod
    def _dir(event: Mapping[str, Any]) -> str:
        path = event.get("artifact_dir")
        if not isinstance(path, str) or not path:
            raise InvalidInput(f"model event for {event.get('version')} has no artifact_dir")
        return path


class DeploymentTimeline:
    """What served when: the deployment after each ``model-events`` event, by the event's message time.

    A replay scores each candle with the deployment in effect when the candle's message was produced,
    as a worker following the topic served it (a worker takes a moment to load a new model: candles
    produced within that moment of a change may have been scored live by the models before it).
    Malformed events are skipped, as a worker skips them.

    >>> t = DeploymentTimeline([(100, {"version": "v1", "action": "activate", "artifact_dir": "/m/v1"}),
    ...                         (150, {"action": "promote"}),
    ...                         (200, {"version": "v2", "action": "candidate", "artifact_dir": "/m/v2", "traffic_share": 0.5})])
    >>> t.at(50), t.at(150)[0].version, t.at(200)[1].share, len(t)
    ((None, None), 'v1', 0.5, 2)
    """

    def __init__(self, events: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
        deployment = Deployment()
        self.times: list[int] = []
        self.states: list[tuple[Slot | None, Slot | None]] = []
        for ms, event in sorted(events, key=lambda e: e[0]):  # stable: one model's events keep their order
            try:
                changed = deployment.apply(event)
            except (InvalidInput, TypeError, ValueError) as exc:
                log.warning("replay ignores a model event: %s", exc)
                continue
            if changed:
                self.times.append(ms)
                self.states.append((deployment.active, deployment.candidate))

    def __len__(self) -> int:
        return len(self.states)

    def at(self, ms: int | None) -> tuple[Slot | None, Slot | None]:
        """(active, candidate) in effect at message time ``ms`` (None: the latest)."""
        i = len(self.times) if ms is None else bisect.bisect_right(self.times, ms)
        return self.states[i - 1] if i else (None, None)
