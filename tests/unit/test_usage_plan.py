"""The usage plan the local gateway enforces: API Gateway's token bucket and daily quota, per key."""

import datetime

import pytest

from local.template import load_template
from local.usage_plan import OVERRIDES, QUOTA_EXCEEDED, THROTTLED, Limits, UsagePlan


class Clock:
    def __init__(self):
        self.now, self.day = 0.0, datetime.date(2026, 12, 2)

    def __call__(self):
        return self.now


def plan(rate=2.0, burst=3, quota=100):
    clock = Clock()
    return UsagePlan(Limits(rate=rate, burst=burst, quota_per_day=quota), clock=clock, today=lambda: clock.day), clock


def test_a_burst_is_admitted_then_throttled():
    usage, _ = plan(burst=3)
    assert [usage.admit("k") for _ in range(4)] == [None, None, None, THROTTLED]


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst():
    usage, clock = plan(rate=2.0, burst=3)
    for _ in range(3):
        usage.admit("k")
    clock.now += 0.49  # 0.98 of a token
    assert usage.admit("k") == THROTTLED
    clock.now += 0.02
    assert usage.admit("k") is None and usage.admit("k") == THROTTLED
    clock.now += 3600  # a long pause refills to the burst, not to 7,200 tokens
    assert [usage.admit("k") for _ in range(4)] == [None, None, None, THROTTLED]


def test_each_key_has_its_own_bucket():
    usage, _ = plan(burst=1)
    assert (usage.admit("a"), usage.admit("b"), usage.admit("a")) == (None, None, THROTTLED)


def test_the_daily_quota_answers_limit_exceeded_until_the_next_utc_day():
    usage, clock = plan(rate=1000.0, burst=1000, quota=2)
    assert [usage.admit("k") for _ in range(3)] == [None, None, QUOTA_EXCEEDED]
    clock.day += datetime.timedelta(days=1)
    assert usage.admit("k") is None


def test_throttled_requests_do_not_use_the_quota():
    usage, clock = plan(rate=1.0, burst=1, quota=2)
    assert [usage.admit("k") for _ in range(5)] == [None] + [THROTTLED] * 4
    clock.now += 1.0
    assert usage.admit("k") is None  # the second of two, although six were sent
    clock.now += 1.0
    assert usage.admit("k") == QUOTA_EXCEEDED


def test_limits_are_the_templates_usage_plan():
    template = load_template()
    parameters = template["Parameters"]
    limits = Limits.from_template(template, environ={})
    assert limits == Limits(rate=float(parameters["ThrottleRateLimit"]["Default"]),
                            burst=int(parameters["ThrottleBurstLimit"]["Default"]),
                            quota_per_day=int(parameters["QuotaPerDay"]["Default"]))


def test_environment_variables_override_the_template():
    environ = {OVERRIDES["rate"]: "0.5", OVERRIDES["burst"]: "7", OVERRIDES["quota_per_day"]: "9"}
    assert Limits.from_template(load_template(), environ=environ) == Limits(rate=0.5, burst=7, quota_per_day=9)


def test_a_quota_period_other_than_a_day_is_refused():
    template = load_template()
    api = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Api")
    api["Properties"]["Auth"]["UsagePlan"]["Quota"]["Period"] = "WEEK"
    with pytest.raises(ValueError, match="daily"):
        Limits.from_template(template, environ={})
