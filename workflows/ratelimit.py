"""A token bucket kept in the database, so a provider's sending limit holds across workers.

Every worker (thread or process, on any host) takes tokens from the same row of
`rate_limit_buckets` before it claims mail, and claims only as many messages as it was
granted. The row is locked while it is read and written (`SELECT … FOR UPDATE` on
PostgreSQL; on SQLite every transaction is BEGIN IMMEDIATE and so already holds the write
lock), so two workers can never spend the same token.

Shape: providers count "messages per minute" and do not forgive a burst on top of that, so
the bucket is sized for a hard ceiling: a burst of `capacity` tokens plus `refill` per second
never add up to more than `per_minute` in any 60-second window (capacity + 60·refill ≤
per_minute). The price is a slightly lower long-run rate (90 % of the limit), which is the
right trade for a limit whose breach gets the account blocked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from db.models import RateLimitBucket
from workflows.clock import now

# Tokens are floats; without this a refill of 0.9999999 would round down to nothing.
_EPSILON = 1e-9


@dataclass(frozen=True)
class BucketShape:
    capacity: float  # the largest burst
    refill_per_second: float

    @classmethod
    def for_limit(cls, per_minute: float) -> BucketShape:
        """The bucket that never lets more than `per_minute` through in any 60 s window."""
        if per_minute <= 0:
            raise ValueError(f"rate limit must be positive, got {per_minute!r} per minute")
        capacity = max(1.0, math.floor(per_minute / 10))
        # For tiny limits (< 2/min) capacity alone fills the minute: refill at half the rate
        # so that one token per window still never becomes two.
        refill = (per_minute - capacity) / 60 if per_minute > capacity else per_minute / 120
        return cls(capacity=capacity, refill_per_second=refill)

    def refilled(self, tokens: float, since: datetime, at: datetime) -> float:
        elapsed = max(0.0, (at - since).total_seconds())  # a clock step back adds nothing
        return min(self.capacity, tokens + elapsed * self.refill_per_second)

    def seconds_until(self, tokens: float, wanted: float = 1.0) -> float:
        """How long until `wanted` tokens are available, starting from `tokens`."""
        missing = min(wanted, self.capacity) - tokens
        return max(0.0, missing / self.refill_per_second)


def take_tokens(db: Session, name: str, per_minute: float, wanted: int) -> int:
    """Take up to `wanted` whole tokens from bucket `name`; returns how many were granted.

    Run it in a transaction of its own and commit right away: the bucket row stays locked
    until the commit, and every other worker waits for it.
    """
    if wanted <= 0:
        return 0
    shape = BucketShape.for_limit(per_minute)
    bucket = _locked_bucket(db, name, shape)
    at = now()
    tokens = shape.refilled(bucket.tokens, bucket.updated_at, at)
    granted = min(wanted, math.floor(tokens + _EPSILON))
    bucket.tokens = max(0.0, tokens - granted)
    bucket.updated_at = max(at, bucket.updated_at)
    db.flush()
    return granted


def return_tokens(db: Session, name: str, per_minute: float, count: int) -> None:
    """Give back tokens that were granted but not used (less was due than was granted)."""
    if count <= 0:
        return
    shape = BucketShape.for_limit(per_minute)
    bucket = _locked_bucket(db, name, shape)
    at = now()
    tokens = shape.refilled(bucket.tokens, bucket.updated_at, at)
    bucket.tokens = min(shape.capacity, tokens + count)
    bucket.updated_at = max(at, bucket.updated_at)
    db.flush()


def seconds_until_token(db: Session, name: str, per_minute: float) -> float:
    """How long a worker that was granted nothing should wait before asking again."""
    shape = BucketShape.for_limit(per_minute)
    bucket = db.get(RateLimitBucket, name)
    if bucket is None:
        return 0.0
    return shape.seconds_until(shape.refilled(bucket.tokens, bucket.updated_at, now()))


def _locked_bucket(db: Session, name: str, shape: BucketShape) -> RateLimitBucket:
    query = select(RateLimitBucket).where(RateLimitBucket.name == name)
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    # populate_existing: a bucket already in this session must not hide the locked row.
    query = query.execution_options(populate_existing=True)
    bucket = db.scalars(query).one_or_none()
    if bucket is None:
        _create_if_missing(db, name, shape)
        bucket = db.scalars(query).one()
    return bucket


def _create_if_missing(db: Session, name: str, shape: BucketShape) -> None:
    """Insert a full bucket; a concurrent worker inserting the same name is not an error."""
    values = {"name": name, "tokens": shape.capacity, "updated_at": now()}
    if db.get_bind().dialect.name == "postgresql":
        db.execute(pg_insert(RateLimitBucket).values(values).on_conflict_do_nothing())
    else:
        db.execute(sqlite_insert(RateLimitBucket).values(values).on_conflict_do_nothing())
