"""``/models``: the model in use, and what this worker's outcome loop has learned about it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from learning.learner import OutcomeLearner
from core.errors import DecodeError
from learning.trades import TradeResults

if TYPE_CHECKING:
    from streams.app import Pipeline

__all__ = ["attach_model_views", "models_body"]


def _describe(model: Any) -> dict[str, Any]:
    """Identity and, for a bundle, per-member latency p50/p99, batch sizes and provider (``stats()``)."""
    return {"name": getattr(model, "name", None), "version": getattr(model, "version", None),
            "provider": getattr(model, "provider", None), "horizon": getattr(model, "horizon", None),
            "members": dict(getattr(model, "versions", {}) or {}),
            "inference": model.stats() if model is not None else None,
            "training": _profile(getattr(model, "profile", None)),
            "student": _student(getattr(model, "student", None))}


def _student(student: Any) -> dict[str, Any] | None:
    """The distilled student that serves the batches over the latency budget (streams/serving_chain.py)."""
    if student is None:
        return None
    report = getattr(student, "distillation", None) or {}
    return {"version": student.version, "members": dict(getattr(student, "versions", {}) or {}),
            "accuracy_kept": report.get("accuracy_kept"), "us_per_row": report.get("student_us_per_row"),
            "speed_up": report.get("speed_up"),
            "inference": student.stats() if hasattr(student, "stats") else None}


def _profile(profile: Any) -> dict[str, Any] | None:
    """What the drift watches compare the model with (models/profile.py)."""
    if profile is None:
        return None
    return {"accuracy": {f"h{h}": a for h, a in sorted(profile.accuracy.items())},
            "reference_rows": 0 if profile.reference is None else len(profile.reference)}


def _member(partition: str, learner: OutcomeLearner, model: Any, max_weight: float) -> dict[str, Any]:
    online = learner.online
    reference = learner.training_accuracy.get(model.version, {}).get(model.horizon)
    return {"partition": partition, "learned": online.n_learned, "judged": len(online.recent),
            "recent_accuracy": online.recent_accuracy, "reference_accuracy": reference,
            "weight": online.member_weight(max_weight, reference)}


def models_body(model: Any, learner_blobs: list[bytes], candidate: tuple[Any, float] | None = None,
                errors: list[str] | None = None, keys: list[str] | None = None,
                online_weight: float = 0.0, signing_key: bytes | None = None,
                serving: dict[str, Any] | None = None) -> dict[str, Any]:
    """Active model, and per local partition: accuracy per version and horizon, the online model.
    ``learner_blobs``: the learners' table values, sealed with ``signing_key`` (learning/sealed.py);
    ``serving``: the latency budget's chain (:meth:`streams.serving_chain.ServingChain.snapshot`)."""
    readable = []
    for key, blob in zip(keys or [None] * len(learner_blobs), learner_blobs):
        try:
            readable.append((key, OutcomeLearner.from_bytes(blob, signing_key)))
        except DecodeError:  # refused (a tampered value): the candle agent starts that learner afresh too
            continue
    keys = [key for key, _ in readable] if keys is not None else None
    learners = [learner for _, learner in readable]

    armed = sorted({v for learner in learners for v in learner.training_accuracy})  # as the candle agent left them
    for learner in learners:  # the references are the models' (not persisted): as the candle agent arms them
        learner.arm_models([model, candidate[0] if candidate else None])
    accuracy: dict[tuple[str, int], list[int]] = {}
    for learner in learners:
        for row in learner.accuracy.snapshot():
            totals = accuracy.setdefault((row["model_version"], row["horizon"]), [0, 0])
            totals[0] += row["total_n"]
            totals[1] += round((row["total_accuracy"] or 0.0) * row["total_n"])
    return {
        "active": _describe(model),
        "candidate": {**_describe(candidate[0]), "traffic_share": candidate[1]} if candidate else None,
        "load_errors": list(errors or [])[-10:],
        "serving": serving,
        "accuracy": [{"model_version": v, "horizon": h, "outcomes": n, "accuracy": c / n if n else None}
                     for (v, h), (n, c) in sorted(accuracy.items())],
        "online": {"versions": sorted({learner.online.version for learner in learners}),
                   "learned": sum(learner.online.n_learned for learner in learners),
                   # labelled at the partition's current candle time: learned when its next candle time comes
                   "queued": sum(learner.queued for learner in learners),
                   # Its share of the weight where it joins the active model's members in the main horizon,
                   # per partition (streams/online_member.py)
                   "max_weight": online_weight,
                   "members": [_member(key, learner, model, online_weight) for key, learner in zip(keys or [], learners)]},
        "retrain_requests": sum(t.requests for learner in learners for t in learner.triggers.values()),
        # The adaptive signal threshold of each version per local partition (learning/threshold.py)
        "signal_thresholds": [{"partition": key, "model_version": version, **t.state()}
                              for key, learner in zip(keys or [], learners) for version, t in sorted(learner.thresholds.items())],
        "trades": TradeResults.merged([learner.trades for learner in learners]).snapshot(),
        # Per drift watch (version, horizon) of each local partition: where ADWIN, Page-Hinkley, the
        # accuracy floor and the KS test stand, what is latched and the last request.
        "drift": {"armed": armed,
                  "watches": [{"partition": key, **w} for key, learner in zip(keys or [], learners)
                              for w in learner.watches()]},
    }


def attach_model_views(pipeline: Pipeline) -> None:
    @pipeline.app.page("/models")
    class Models(View):
        async def get(self, request: Request) -> Response:
            items = sorted(pipeline.learners.items())
            worker = pipeline.worker
            return self.json(models_body(worker.model, [blob for _, blob in items], worker.candidate,
                                         worker.model_errors, [str(key) for key, _ in items],
                                         pipeline.settings.online_weight, pipeline.settings.signing_key,
                                         pipeline.serving_chain.snapshot()))
