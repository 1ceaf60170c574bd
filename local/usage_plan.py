"""API Gateway's usage plan, enforced by the local gateway: per API key, a token bucket (rate and
burst) and a daily quota, read from ``template.yaml`` so the local API throttles as the deployed
one does. Past them API Gateway answers 429 ``Too Many Requests`` (throttle) or ``Limit Exceeded``
(quota); so does this."""

from __future__ import annotations

import datetime
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

# Environment variables that override the template's values (tests, load tests).
OVERRIDES = {"rate": "ONCOSERVE_THROTTLE_RATE_LIMIT", "burst": "ONCOSERVE_THROTTLE_BURST_LIMIT",
             "quota_per_day": "ONCOSERVE_QUOTA_PER_DAY"}
THROTTLED = "Too Many Requests"
QUOTA_EXCEEDED = "Limit Exceeded"


@dataclass(frozen=True)
class Limits:
    rate: float  # requests per second, steady state
    burst: int  # bucket size
    quota_per_day: int

    @classmethod
    def from_template(cls, template: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> "Limits":
        """The usage plan of the template's API (``!Ref`` parameters resolved to their defaults),
        each value overridable by its ``OVERRIDES`` variable."""
        parameters = template.get("Parameters", {})

        def resolve(value: Any) -> Any:
            if isinstance(value, dict) and "Ref" in value:
                return parameters[value["Ref"]]["Default"]
            return value

        plan = next(resource["Properties"]["Auth"]["UsagePlan"] for resource in template["Resources"].values()
                    if resource["Type"] == "AWS::Serverless::Api")
        if plan["Quota"].get("Period", "DAY") != "DAY":
            raise ValueError("the local gateway models a daily quota only")
        values = {"rate": resolve(plan["Throttle"]["RateLimit"]), "burst": resolve(plan["Throttle"]["BurstLimit"]),
                  "quota_per_day": resolve(plan["Quota"]["Limit"])}
        for field, variable in OVERRIDES.items():
            if environ.get(variable):
                values[field] = environ[variable]
        return cls(rate=float(values["rate"]), burst=int(values["burst"]), quota_per_day=int(values["quota_per_day"]))


class _Bucket:
    def __init__(self, burst: int, now: float) -> None:
        self.tokens, self.updated = float(burst), now
        self.day: datetime.date | None = None
        self.used_today = 0


class UsagePlan:
    """``admit(key)`` → ``None`` when the request may go on, else the 429 message API Gateway sends.
    A throttled request does not count against the quota; a request let through does."""

    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.monotonic,
                 today: Callable[[], datetime.date] = lambda: datetime.datetime.now(datetime.timezone.utc).date()) -> None:
        self.limits = limits
        self._clock, self._today = clock, today
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def admit(self, api_key: str) -> str | None:
        with self._lock:
            now, day = self._clock(), self._today()  # the quota resets at midnight UTC, as API Gateway's
            bucket = self._buckets.setdefault(api_key, _Bucket(self.limits.burst, now))
            bucket.tokens = min(float(self.limits.burst), bucket.tokens + (now - bucket.updated) * self.limits.rate)
            bucket.updated = now
            if bucket.day != day:
                bucket.day, bucket.used_today = day, 0
            if bucket.tokens < 1.0:
                return THROTTLED
            if bucket.used_today >= self.limits.quota_per_day:
                return QUOTA_EXCEEDED
            bucket.tokens -= 1.0
            bucket.used_today += 1
            return None
