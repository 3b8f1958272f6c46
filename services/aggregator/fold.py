"""Folding results into their batches in Redis, exactly once per job id.

One Lua script folds a whole slice of results atomically: for each result it adds the job
id to the batch's ``seen`` set and only when that is new counts it into its batch's sums
for the slice (completed, failed, sum, min, max, per worker, per latency bucket, slowest),
so a redelivered result changes nothing. Each batch's sums then go into its hash with one
``HMGET`` and one ``HSET``: every ``redis.call`` costs Redis a few µs, and counting each
result into the hash on its own took about ten of them per result. A batch's sum stays
below ``MAX_BATCH * MAX_RESULT_VALUE``, far inside the integers a Lua number holds exactly.
It checks every result of the slice before it writes anything: a script that fails
halfway keeps its earlier writes, and the redelivered slice would then be all duplicates.
A result it refuses is written nowhere and reported back, to be dead-lettered. Each batch
touched gets its TTL renewed, so state expires ``ttl`` after a batch's last activity, never
mid-run. A batch whose last job lands is marked done and announced on the pub/sub channel
inside the same script, so no waiter misses it. The script spells no field name or state
of the batch hash: it receives them from :data:`shared.batches.FOLD_NAMES` as arguments.
Each batch's keys and id, and each worker's name, are sent once per slice, and a result
refers to them by number: the command's size, which the aggregator encodes and Redis
parses, grows by a job id and a few small numbers per result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from shared.batches import FOLD_NAMES
from shared.histogram import LATENCY_BUCKETS
from shared.jobs import MAX_RESULT_VALUE, Result
from shared.names import Names

ARGS_PER_RESULT = 7

HEADER = ("ttl", "channel", "now", "max_value", "buckets", *FOLD_NAMES)
"""The script's first arguments, each bound to the Lua local of the same name."""

FOLD_BODY = """
ttl, max_value, buckets = tonumber(ttl), tonumber(max_value), tonumber(buckets)
local index_key = KEYS[1]
local batch_count, worker_count = tonumber(ARGV[first_table]), tonumber(ARGV[first_table + 1])
local first_result = first_table + 2 + batch_count + worker_count
local count = (#ARGV - first_result + 1) / per_result
local batch_ids, workers = {}, {}
for b = 1, batch_count do batch_ids[b] = ARGV[first_table + 1 + b] end
for w = 1, worker_count do workers[w] = ARGV[first_table + 1 + batch_count + w] end

local function integer_within(text, low, high)
  if not string.match(text, '^%d+$') or #text > 15 then return false end
  local v = tonumber(text)
  return v >= low and v <= high
end

local valid, invalid = {}, {}
for i = 0, count - 1 do
  local a = first_result + per_result * i
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
local exists, sums, order = {}, {}, {}
for i = 0, count - 1 do
  if valid[i] then
    local a = first_result + per_result * i
    local b = tonumber(ARGV[a])
    if exists[b] == nil then exists[b] = redis.call('EXISTS', KEYS[2*b]) == 1 end
    if not exists[b] then
      orphans = orphans + 1
    elseif redis.call('SADD', KEYS[2*b+1], ARGV[a+1]) == 0 then
      duplicates = duplicates + 1
    else
      folded = folded + 1
      local t = sums[b]
      if not t then
        t = {completed = 0, failed = 0, sum = 0, workers = {}, buckets = {}}
        sums[b] = t
        order[#order + 1] = b
      end
      local ok, value, latency, bucket = ARGV[a+2], ARGV[a+3], ARGV[a+4], ARGV[a+5]
      if ok == '1' then
        local v = tonumber(value)
        t.completed = t.completed + 1
        t.sum = t.sum + v
        if not t.low or v < t.low then t.low, t.low_text = v, value end
        if not t.high or v > t.high then t.high, t.high_text = v, value end
      else
        t.failed = t.failed + 1
      end
      local worker = workers[tonumber(ARGV[a+6])]
      t.workers[worker] = (t.workers[worker] or 0) + 1
      t.buckets[bucket] = (t.buckets[bucket] or 0) + 1
      local lat = tonumber(latency)
      if not t.slowest or lat > t.slowest then t.slowest, t.slowest_text = lat, latency end
    end
  end
end

local done = {}
for _, b in ipairs(order) do
  local t, batch_key, seen_key, batch_id = sums[b], KEYS[2*b], KEYS[2*b+1], batch_ids[b]
  local fields = {completed_field, failed_field, sum_field, min_field, max_field,
    latency_max_field, expected_field, status_field}
  local counts = {}
  for worker, n in pairs(t.workers) do
    fields[#fields + 1], counts[#counts + 1] = worker_prefix .. worker, n
  end
  for bucket, n in pairs(t.buckets) do
    fields[#fields + 1], counts[#counts + 1] = latency_prefix .. bucket, n
  end
  local h = redis.call('HMGET', batch_key, unpack(fields))
  local writes = {}
  local function put(name, value) writes[#writes + 1], writes[#writes + 2] = name, value end
  local completed, failed = tonumber(h[1]) or 0, tonumber(h[2]) or 0
  if t.completed > 0 then
    completed = completed + t.completed
    put(completed_field, string.format('%d', completed))
    put(sum_field, string.format('%d', (tonumber(h[3]) or 0) + t.sum))
    if not h[4] or t.low < tonumber(h[4]) then put(min_field, t.low_text) end
    if not h[5] or t.high > tonumber(h[5]) then put(max_field, t.high_text) end
  end
  if t.failed > 0 then
    failed = failed + t.failed
    put(failed_field, string.format('%d', failed))
  end
  if not h[6] or t.slowest > tonumber(h[6]) then put(latency_max_field, t.slowest_text) end
  for i, n in ipairs(counts) do
    put(fields[8 + i], string.format('%d', (tonumber(h[8 + i]) or 0) + n))
  end
  local finished = h[8] == running_state and completed + failed >= tonumber(h[7])
  if finished then
    put(status_field, done_state)
    put(finished_at_field, now)
  end
  redis.call('HSET', batch_key, unpack(writes))
  redis.call('EXPIRE', batch_key, ttl)
  redis.call('EXPIRE', seen_key, ttl)
  redis.call('ZADD', index_key, now, batch_id)
  if finished then
    redis.call('PUBLISH', channel, batch_id)
    done[#done + 1] = batch_id
  end
end
if #order > 0 then redis.call('EXPIRE', index_key, ttl) end
return {folded, duplicates, orphans, done, invalid}
"""


def fold_script() -> str:
    """The script: one local per :data:`HEADER` argument, in the order :meth:`ResultFolder.fold`
    sends them, then the fold itself, which names every field and state by those locals."""
    arguments = [f"local {name} = ARGV[{i}]" for i, name in enumerate(HEADER, start=1)]
    layout = [f"local first_table = {len(HEADER) + 1}", f"local per_result = {ARGS_PER_RESULT}"]
    return "\n".join([*arguments, *layout]) + FOLD_BODY


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
        self.script = redis.register_script(fold_script())

    async def fold(self, results: Sequence[Result]) -> FoldOutcome:
        if not results:
            return FoldOutcome()
        now = time.time()
        keys: list[str] = [self.names.batches_index]
        header: dict[str, str | int | float] = {
            "ttl": self.ttl_s,
            "channel": self.names.batch_done_channel,
            "now": now,
            "max_value": MAX_RESULT_VALUE,
            "buckets": LATENCY_BUCKETS.buckets,
            **FOLD_NAMES,
        }
        batches: dict[str, int] = {}
        workers: dict[str, int] = {}
        rows: list[str | int] = []
        for result in results:
            batch_no = batches.setdefault(result.batch_id, len(batches) + 1)
            worker_no = workers.setdefault(result.worker, len(workers) + 1)
            latency_ms = max(0.0, (now - result.submitted_at) * 1000)
            rows += [
                batch_no,
                result.job_id,
                1 if result.ok else 0,
                result.value,
                f"{latency_ms:.3f}",
                LATENCY_BUCKETS.index(latency_ms),
                worker_no,
            ]
        for batch_id in batches:
            keys += [self.names.batch(batch_id), self.names.batch_seen(batch_id)]
        args = [
            *(header[name] for name in HEADER),
            len(batches),
            len(workers),
            *batches,
            *workers,
            *rows,
        ]
        folded, duplicates, orphans, done, invalid = await self.script(keys=keys, args=args)
        return FoldOutcome(
            int(folded),
            int(duplicates),
            int(orphans),
            [str(b) for b in done],
            [int(i) for i in invalid],
        )
