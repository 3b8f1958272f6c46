"""Folding results into their batches in Redis, exactly once per job id.

One Lua script folds a whole slice of results atomically: for each result it adds the job
id to the batch's ``seen`` set and only when that is new updates the counters, so a
redelivered result changes nothing. A batch whose last job lands is marked done and
announced on the pub/sub channel inside the same script, so no waiter misses it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from shared.jobs import Result
from shared.names import Names

FOLD_SCRIPT = """
local ttl = tonumber(ARGV[1])
local channel = ARGV[2]
local now = ARGV[3]
local folded, duplicates, orphans = 0, 0, 0
local touched, order = {}, {}
for i = 0, (#KEYS / 3) - 1 do
  local batch_key, seen_key, latency_key = KEYS[3*i+1], KEYS[3*i+2], KEYS[3*i+3]
  local a = 4 + 6*i
  local batch_id, job_id, ok, value, latency = ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3], ARGV[a+4]
  local worker = ARGV[a+5]
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
    redis.call('HINCRBY', batch_key, 'worker:' .. worker, 1)
    redis.call('RPUSH', latency_key, latency)
    if not touched[batch_id] then
      touched[batch_id] = {batch_key, seen_key, latency_key}
      order[#order + 1] = batch_id
    end
  end
end
local done = {}
for _, batch_id in ipairs(order) do
  local keys = touched[batch_id]
  local h = redis.call('HMGET', keys[1], 'expected', 'completed', 'failed', 'status')
  if h[4] == 'running' and tonumber(h[2]) + tonumber(h[3]) >= tonumber(h[1]) then
    redis.call('HSET', keys[1], 'status', 'done', 'finished_at', now)
    for _, key in ipairs(keys) do redis.call('EXPIRE', key, ttl) end
    redis.call('PUBLISH', channel, batch_id)
    done[#done + 1] = batch_id
  end
end
return {folded, duplicates, orphans, done}
"""


@dataclass
class FoldOutcome:
    folded: int = 0
    duplicates: int = 0
    orphans: int = 0
    done: list[str] = field(default_factory=list)


class ResultFolder:
    def __init__(self, redis: Redis, names: Names, *, ttl_s: int) -> None:
        self.names = names
        self.ttl_s = ttl_s
        self.script = redis.register_script(FOLD_SCRIPT)

    async def fold(self, results: Sequence[Result]) -> FoldOutcome:
        if not results:
            return FoldOutcome()
        now = time.time()
        keys: list[str] = []
        args: list[str | int | float] = [self.ttl_s, self.names.batch_done_channel, now]
        for result in results:
            keys += [
                self.names.batch(result.batch_id),
                self.names.batch_seen(result.batch_id),
                self.names.batch_latencies(result.batch_id),
            ]
            latency_ms = max(0.0, (now - result.submitted_at) * 1000)
            args += [
                result.batch_id,
                result.job_id,
                1 if result.ok else 0,
                result.value,
                f"{latency_ms:.3f}",
                result.worker,
            ]
        folded, duplicates, orphans, done = await self.script(keys=keys, args=args)
        return FoldOutcome(int(folded), int(duplicates), int(orphans), [str(b) for b in done])
