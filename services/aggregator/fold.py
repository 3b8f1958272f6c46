"""Folding results into their batches in Redis, exactly once per job id.

One Lua script folds a whole slice of results atomically: for each result it adds the job
id to the batch's ``seen`` set and only when that is new updates the counters and the
latency histogram, so a redelivered result changes nothing. It checks every result of the
slice before it writes anything: a script that fails halfway keeps its earlier writes, and
the redelivered slice would then be all duplicates. A result it refuses is written
nowhere and reported back, to be dead-lettered. Each batch touched gets its TTL renewed, so
state expires ``ttl`` after a batch's last activity, never mid-run. A batch whose last job
lands is marked done and announced on the pub/sub channel inside the same script, so no
waiter misses it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from shared.batches import LATENCY_FIELD, LATENCY_MAX_FIELD, WORKER_FIELD
from shared.histogram import LATENCY_BUCKETS
from shared.jobs import MAX_RESULT_VALUE, Result
from shared.names import Names

ARGS_PER_RESULT = 7

FOLD_SCRIPT = """
local ttl = tonumber(ARGV[1])
local channel = ARGV[2]
local now = ARGV[3]
local max_value = tonumber(ARGV[4])
local buckets = tonumber(ARGV[5])
local worker_field, latency_field, latency_max_field = ARGV[6], ARGV[7], ARGV[8]
local per_result = tonumber(ARGV[9])
local index_key = KEYS[1]
local count = (#KEYS - 1) / 2

local function integer_within(text, low, high)
  if not string.match(text, '^%d+$') or #text > 15 then return false end
  local v = tonumber(text)
  return v >= low and v <= high
end

local valid, invalid = {}, {}
for i = 0, count - 1 do
  local a = 10 + per_result * i
  local ok, value, latency, bucket = ARGV[a+2], ARGV[a+3], ARGV[a+4], ARGV[a+5]
  local lat = tonumber(latency)
  if (ok == '1' or ok == '0') and integer_within(value, 0, max_value)
      and lat ~= nil and lat == lat and lat >= 0 and lat < math.huge
      and integer_within(bucket, 0, buckets - 1) then
    valid[i] = true
  else
    invalid[#invalid + 1] = i
  end
end

local folded, duplicates, orphans = 0, 0, 0
local touched, order = {}, {}
for i = 0, count - 1 do
  if valid[i] then
    local batch_key, seen_key = KEYS[2*i+2], KEYS[2*i+3]
    local a = 10 + per_result * i
    local batch_id, job_id, ok, value = ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3]
    local latency, bucket, worker = ARGV[a+4], ARGV[a+5], ARGV[a+6]
    if redis.call('EXISTS', batch_key) == 0 then
      orphans = orphans + 1
    elseif redis.call('SADD', seen_key, job_id) == 0 then
      duplicates = duplicates + 1
    else
      folded = folded + 1
      if ok == '1' then
        redis.call('HINCRBY', batch_key, 'completed', 1)
        redis.call('HINCRBY', batch_key, 'sum', value)
        local v = tonumber(value)
        local low = redis.call('HGET', batch_key, 'min')
        if not low or v < tonumber(low) then redis.call('HSET', batch_key, 'min', value) end
        local high = redis.call('HGET', batch_key, 'max')
        if not high or v > tonumber(high) then redis.call('HSET', batch_key, 'max', value) end
      else
        redis.call('HINCRBY', batch_key, 'failed', 1)
      end
      redis.call('HINCRBY', batch_key, worker_field .. worker, 1)
      redis.call('HINCRBY', batch_key, latency_field .. bucket, 1)
      local slowest = redis.call('HGET', batch_key, latency_max_field)
      if not slowest or tonumber(latency) > tonumber(slowest) then
        redis.call('HSET', batch_key, latency_max_field, latency)
      end
      if not touched[batch_id] then
        touched[batch_id] = {batch_key, seen_key}
        order[#order + 1] = batch_id
      end
    end
  end
end

local done = {}
for _, batch_id in ipairs(order) do
  local keys = touched[batch_id]
  for _, key in ipairs(keys) do redis.call('EXPIRE', key, ttl) end
  redis.call('ZADD', index_key, now, batch_id)
  local h = redis.call('HMGET', keys[1], 'expected', 'completed', 'failed', 'status')
  if h[4] == 'running' and tonumber(h[2]) + tonumber(h[3]) >= tonumber(h[1]) then
    redis.call('HSET', keys[1], 'status', 'done', 'finished_at', now)
    redis.call('PUBLISH', channel, batch_id)
    done[#done + 1] = batch_id
  end
end
if #order > 0 then redis.call('EXPIRE', index_key, ttl) end
return {folded, duplicates, orphans, done, invalid}
"""


@dataclass
class FoldOutcome:
    folded: int = 0
    duplicates: int = 0
    orphans: int = 0
    done: list[str] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)
    """Indices (in the folded slice) of the results the script refused: written nowhere."""


class ResultFolder:
    def __init__(self, redis: Redis, names: Names, *, ttl_s: int) -> None:
        self.names = names
        self.ttl_s = ttl_s
        self.script = redis.register_script(FOLD_SCRIPT)

    async def fold(self, results: Sequence[Result]) -> FoldOutcome:
        if not results:
            return FoldOutcome()
        now = time.time()
        keys: list[str] = [self.names.batches_index]
        args: list[str | int | float] = [
            self.ttl_s,
            self.names.batch_done_channel,
            now,
            MAX_RESULT_VALUE,
            LATENCY_BUCKETS.buckets,
            WORKER_FIELD,
            LATENCY_FIELD,
            LATENCY_MAX_FIELD,
            ARGS_PER_RESULT,
        ]
        for result in results:
            keys += [self.names.batch(result.batch_id), self.names.batch_seen(result.batch_id)]
            latency_ms = max(0.0, (now - result.submitted_at) * 1000)
            args += [
                result.batch_id,
                result.job_id,
                1 if result.ok else 0,
                result.value,
                f"{latency_ms:.3f}",
                LATENCY_BUCKETS.index(latency_ms),
                result.worker,
            ]
        folded, duplicates, orphans, done, invalid = await self.script(keys=keys, args=args)
        return FoldOutcome(
            int(folded),
            int(duplicates),
            int(orphans),
            [str(b) for b in done],
            [int(i) for i in invalid],
        )
