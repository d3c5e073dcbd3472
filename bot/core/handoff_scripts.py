"""The handoff's state transitions as Redis Lua scripts: each one is atomic.

Two agents claiming at once, or a citizen message racing an agent's hand-back, always end in one
consistent state. Key names (see ``bot/core/handoff.py``) are composed inside the scripts from the
prefix in ``ARGV[1]``: this needs a single Redis (or a primary with replicas), not Redis Cluster.
"""
from __future__ import annotations

PRELUDE = """
local P = ARGV[1]
local function hkey(id) return P .. ':h:' .. id end
local function skey(id) return P .. ':stream:' .. id end
local function add(id, kind, text, agent, now)
  return redis.call('XADD', skey(id), 'MAXLEN', '~', ARGV[2], '*', 'type', kind, 'text', text, 'agent', agent, 'at', now)
end
local function close(id, now, outcome, by, retention)
  local h = hkey(id)
  redis.call('HSET', h, 'status', 'closed', 'closed_at', now, 'outcome', outcome, 'closed_by', by)
  local akey = P .. ':active:' .. redis.call('HGET', h, 'conv_key')
  if redis.call('GET', akey) == id then redis.call('DEL', akey) end
  redis.call('ZREM', P .. ':queue', id)
  redis.call('ZREM', P .. ':held', id)
  redis.call('EXPIRE', h, retention)
  redis.call('EXPIRE', skey(id), retention)
end
local function rank(id)
  local r = redis.call('ZRANK', P .. ':queue', id)
  if r then return tostring(r + 1) end
  return ''
end
"""

# KEYS[1] active key. ARGV: prefix, maxlen, new id, conversation, conv_key, channel, reason, context,
# now, mode ('live' | 'message'), note
ENQUEUE = PRELUDE + """
local id = redis.call('GET', KEYS[1])
local now, mode = ARGV[9], ARGV[10]
if id then
  local h = hkey(id)
  local status = redis.call('HGET', h, 'status')
  if status == 'held' then return {id, '0', ''} end
  if status == 'waiting' then
    if mode == 'live' and redis.call('HGET', h, 'offline') == '1' then
      redis.call('HSET', h, 'offline', '0', 'last_activity', now)
      add(id, 'system', 'De burger is er nu live bij en wacht op een medewerker.', '', now)
    end
    return {id, '0', rank(id)}
  end
  if status == 'message' then
    if mode == 'live' then
      redis.call('HSET', h, 'status', 'waiting', 'offline', '0', 'since', now, 'last_activity', now)
      redis.call('ZADD', P .. ':queue', now, id)
    else
      redis.call('HSET', h, 'last_activity', now)
    end
    return {id, '0', rank(id)}
  end
end
id = ARGV[3]
local h = hkey(id)
local status = 'waiting'
if mode == 'message' then status = 'message' end
redis.call('HSET', h, 'conversation', ARGV[4], 'conv_key', ARGV[5], 'channel', ARGV[6], 'reason', ARGV[7],
  'context', ARGV[8], 'status', status, 'since', now, 'last_activity', now, 'offline', '0')
redis.call('SET', KEYS[1], id)
add(id, 'system', ARGV[11], '', now)
if mode == 'live' then redis.call('ZADD', P .. ':queue', now, id) end
return {id, '1', rank(id)}
"""

# KEYS[1] active key. ARGV: prefix, maxlen, text, now, stop ('1'/'0'), idle seconds, message wait
# seconds, retention seconds
CITIZEN = PRELUDE + """
local id = redis.call('GET', KEYS[1])
if not id then return {'pass', '', ''} end
local h = hkey(id)
local status, offline, last = unpack(redis.call('HMGET', h, 'status', 'offline', 'last_activity'))
local now = ARGV[4]
if status ~= 'message' and status ~= 'waiting' and status ~= 'held' then
  redis.call('DEL', KEYS[1])
  return {'pass', '', ''}
end
local limit = tonumber(ARGV[6])
if status == 'message' then limit = tonumber(ARGV[7]) end
if tonumber(now) - tonumber(last or now) > limit then
  add(id, 'system', 'Niemand schreef nog: het gesprek ging vanzelf terug naar de digitale assistent.', '', now)
  close(id, now, 'expired', '', ARGV[8])
  return {'expired', id, ''}
end
if status == 'waiting' and offline == '1' then return {'pass', id, ''} end
if ARGV[5] == '1' then
  add(id, 'system', 'De burger typte "stop" en praat weer met de digitale assistent.', '', now)
  close(id, now, 'citizen_stop', '', ARGV[8])
  return {'stopped', id, ''}
end
local entry = add(id, 'citizen', ARGV[3], '', now)
redis.call('HSET', h, 'last_activity', now)
if status == 'message' then
  redis.call('HSET', h, 'status', 'waiting', 'offline', '1', 'since', now)
  redis.call('ZADD', P .. ':queue', now, id)
  return {'message_left', id, entry}
end
return {'held', id, entry}
"""

# ARGV: prefix, maxlen, id, agent, now
CLAIM = PRELUDE + """
local id, agent, now = ARGV[3], ARGV[4], ARGV[5]
local h = hkey(id)
local status = redis.call('HGET', h, 'status')
if status == 'waiting' then
  redis.call('HSET', h, 'status', 'held', 'agent', agent, 'claimed_at', now, 'last_activity', now)
  redis.call('ZREM', P .. ':queue', id)
  redis.call('ZADD', P .. ':held', now, id)
  add(id, 'system', agent .. ' neemt het gesprek over.', agent, now)
  return {'ok', agent}
end
if status == 'held' then return {'taken', redis.call('HGET', h, 'agent')} end
return {'gone', status or ''}
"""

# ARGV: prefix, maxlen, id, agent, now, kind ('agent' | 'note'), text
APPEND = PRELUDE + """
local id, agent, now, kind = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local h = hkey(id)
local status, holder = unpack(redis.call('HMGET', h, 'status', 'agent'))
if kind == 'agent' then
  if status ~= 'held' then return {'gone', status or ''} end
  if holder ~= agent then return {'not_holder', holder} end
  redis.call('HSET', h, 'last_activity', now)
elseif status ~= 'waiting' and status ~= 'held' and status ~= 'message' then
  return {'gone', status or ''}
end
return {'ok', add(id, kind, ARGV[7], agent, now)}
"""

# ARGV: prefix, maxlen, id, agent, now, outcome ('handback' | 'closed'), retention seconds, text
FINISH = PRELUDE + """
local id, agent, now, outcome = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local h = hkey(id)
local status, holder = unpack(redis.call('HMGET', h, 'status', 'agent'))
if status == 'held' then
  if holder ~= agent then return {'not_holder', holder} end
elseif status ~= 'waiting' and status ~= 'message' then
  return {'gone', status or ''}
end
add(id, 'system', ARGV[8], agent, now)
close(id, now, outcome, agent, ARGV[7])
return {'ok', redis.call('HGET', h, 'conversation')}
"""
