"""Lua scripts that make each job state change atomic on Redis (6.2 and 7).

A job's life: queued -> running -> done | failed, or queued -> cancelled. The result key is
written once (SET NX semantics in FINISH), so a job delivered twice answers once.
A result blob is b"D" + tensor frame (done) or b"F" + problem JSON (failed/cancelled)."""

from __future__ import annotations

# KEYS: stream, job hash, idempotency key ("" for none)
# ARGV: max_depth, job_id, inputs, deadline_ms, reply, ttl_s, idem_ttl_s, alias, then
# field/value pairs for the job hash
ENQUEUE = """
if KEYS[3] ~= '' then
  local existing = redis.call('GET', KEYS[3])
  if existing then return {'dup', existing} end
end
local depth = redis.call('XLEN', KEYS[1])
if depth >= tonumber(ARGV[1]) then return {'full', tostring(depth)} end
local fields = {}
for i = 9, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], 'status', 'queued', unpack(fields))
local entry = redis.call('XADD', KEYS[1], '*', 'job', ARGV[2], 'inputs', ARGV[3],
                         'deadline_ms', ARGV[4], 'reply', ARGV[5], 'alias', ARGV[8])
redis.call('HSET', KEYS[2], 'entry', entry)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[2], 'EX', tonumber(ARGV[7])) end
return {'ok', ARGV[2]}
"""

# KEYS: job hash. ARGV: worker id, now_ms.
# Returns 'run' when the job should run, else its status (or 'gone' when it expired).
START = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'worker', ARGV[1], 'started_ms', ARGV[2])
  return 'run'
end
if status == 'running' then
  redis.call('HSET', KEYS[1], 'worker', ARGV[1], 'started_ms', ARGV[2])
  return 'run'
end
return status
"""

# KEYS: job hash, result key, stream. ARGV: status, blob, ttl_s, entry id, group, reply channel,
# job id, then field/value pairs. Acks, then stores the result once; both happen in one atomic
# script, so an entry is never acked without its reply stored. Returns 1 when this call
# answered the job, 0 when it was answered (or cancelled) already.
FINISH = """
redis.call('XACK', KEYS[3], ARGV[5], ARGV[4])
redis.call('XDEL', KEYS[3], ARGV[4])
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'cancelled' then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[3]))
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'status', ARGV[1], unpack(fields))
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[7] .. '\\n' .. ARGV[2]) end
return 1
"""

# KEYS: job hash, result key, stream. ARGV: group, blob, ttl_s, job id.
# Cancels a job that has not started. Returns 1, or the job's status when it cannot.
CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'gone' end
if status ~= 'queued' then return status end
local entry = redis.call('HGET', KEYS[1], 'entry')
redis.call('HSET', KEYS[1], 'status', 'cancelled')
if entry then
  redis.call('XACK', KEYS[3], ARGV[1], entry)
  redis.call('XDEL', KEYS[3], entry)
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[3]))
local reply = redis.call('HGET', KEYS[1], 'reply')
if reply and reply ~= '' then redis.call('PUBLISH', reply, ARGV[4] .. '\\n' .. ARGV[2]) end
return 1
"""
