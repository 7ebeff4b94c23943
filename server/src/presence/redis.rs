//! Cluster presence in Redis. Per room channel:
//! - `<prefix>p:{<channel>}`: sorted set, user id → expiry (ms) of the user's longest-lived claim;
//! - `<prefix>pn:{<channel>}`: hash, user id → username;
//! - `<prefix>pc:{<channel>}:<user>`: hash, node → expiry of that node's claim.
//!
//! The `{channel}` hash tag keeps one room's keys in one slot, so the scripts (and the renewal
//! pipelines, one per room) also run on a Redis Cluster. Every key expires with the newest claim
//! on it, so claims whose release was lost (a node stopped while Redis timed out) and rooms no
//! node serves any more leave nothing behind.
//!
//! Claims and releases run as Lua scripts so "did this user just come online / go offline" is
//! decided atomically across nodes (exactly one join and one leave event per transition). Nodes
//! renew their claims every `PRESENCE_TICK`; a crashed node's claims lapse after `PRESENCE_TTL`
//! and the next sweep by any node serving the room removes the user and announces the leave.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::RedisFuture;
use redis::Script;
use switchboard_protocol::{PresencePage, UserInfo};

use super::{RoomUser, PRESENCE_TTL};

/// Claims renewed per pipeline: large enough to make renewal a few round trips per tick, small
/// enough that one pipeline does not hold Redis (single-threaded) for long.
const RENEW_CHUNK: usize = 500;
use crate::node::NodeId;
use crate::store::now_ms;

const CLAIM: &str = r"
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], 'GT', ARGV[4], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('PEXPIREAT', KEYS[2], ARGV[4])
redis.call('PEXPIREAT', KEYS[3], ARGV[4])
if (not old) or tonumber(old) <= tonumber(ARGV[5]) then
  return redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[5], '+inf')
end
return -1
";

const RELEASE: &str = r"
redis.call('HDEL', KEYS[3], ARGV[2])
local best = 0
local claims = redis.call('HGETALL', KEYS[3])
for i = 2, #claims, 2 do
  local e = tonumber(claims[i])
  if e > tonumber(ARGV[3]) and e > best then best = e end
end
if best > 0 then
  redis.call('ZADD', KEYS[1], best, ARGV[1])
  return -1
end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[3], '+inf')
";

const SWEEP: &str = r"
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for _, u in ipairs(gone) do
  if redis.call('ZREM', KEYS[1], u) == 1 then
    local name = redis.call('HGET', KEYS[2], u) or ''
    redis.call('HDEL', KEYS[2], u)
    redis.call('DEL', ARGV[2] .. u)
    table.insert(out, u)
    table.insert(out, name)
  end
end
table.insert(out, tostring(redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')))
return out
";

/// A connection to one Redis or to a Redis Cluster; scripts and commands run the same on both.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

pub(crate) struct RedisPresence {
    conn: Conn,
    prefix: String,
    node: NodeId,
    claim: Script,
    release: Script,
    sweep: Script,
}

impl RedisPresence {
    /// Connects to `url` (with `cluster`, a comma-separated list of cluster nodes).
    pub(crate) async fn connect(
        url: &str,
        cluster: bool,
        prefix: String,
        node: NodeId,
    ) -> anyhow::Result<RedisPresence> {
        let conn = if cluster {
            let nodes = crate::config::cluster_nodes(url);
            Conn::Cluster(
                redis::cluster::ClusterClient::new(nodes)?
                    .get_async_connection()
                    .await?,
            )
        } else {
            Conn::Single(ConnectionManager::new(redis::Client::open(url)?).await?)
        };
        Ok(RedisPresence {
            conn,
            prefix,
            node,
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
            sweep: Script::new(SWEEP),
        })
    }

    fn keys(&self, channel: &str, user: &str) -> (String, String, String) {
        let p = &self.prefix;
        (
            format!("{p}p:{{{channel}}}"),
            format!("{p}pn:{{{channel}}}"),
            format!("{p}pc:{{{channel}}}:{user}"),
        )
    }

    fn expiry() -> i64 {
        now_ms() + PRESENCE_TTL.as_millis() as i64
    }

    /// Claims `user`'s presence for this node; the room's count when the user just came online.
    pub(crate) async fn claim(&self, channel: &str, user: &str, username: &str) -> Option<u64> {
        let (z, names, claims) = self.keys(channel, user);
        let result: redis::RedisResult<i64> = self
            .claim
            .key(z)
            .key(names)
            .key(claims)
            .arg(user)
            .arg(&*self.node)
            .arg(username)
            .arg(Self::expiry())
            .arg(now_ms())
            .invoke_async(&mut self.conn.clone())
            .await;
        log_failure(result, "presence claim").and_then(|n| u64::try_from(n).ok())
    }

    /// Drops this node's claim; the room's count when the user just went offline everywhere.
    pub(crate) async fn release(&self, channel: &str, user: &str) -> Option<u64> {
        let (z, names, claims) = self.keys(channel, user);
        let result: redis::RedisResult<i64> = self
            .release
            .key(z)
            .key(names)
            .key(claims)
            .arg(user)
            .arg(&*self.node)
            .arg(now_ms())
            .invoke_async(&mut self.conn.clone())
            .await;
        log_failure(result, "presence release").and_then(|n| u64::try_from(n).ok())
    }

    /// Renews this node's claims on the users it holds, in one pipeline per room (per
    /// `RENEW_CHUNK` users of a room): a room's keys share a slot, so this also works on a
    /// cluster, where a pipeline may not cross slots. One round trip per claim could not keep
    /// up with ~15k claims per node in one `PRESENCE_TICK` on a loaded machine.
    pub(crate) async fn refresh(&self, held: &[RoomUser]) -> redis::RedisResult<()> {
        let expiry = Self::expiry();
        let mut conn = self.conn.clone();
        let mut held: Vec<&RoomUser> = held.iter().collect();
        held.sort_unstable_by(|a, b| a.channel.cmp(&b.channel));
        for room in held.chunk_by(|a, b| a.channel == b.channel) {
            let channel = &room[0].channel;
            let (z, names, _) = self.keys(channel, "");
            for chunk in room.chunks(RENEW_CHUNK) {
                let mut pipe = redis::pipe();
                for RoomUser { user_id: user, .. } in chunk {
                    let (_, _, claims) = self.keys(channel, user);
                    pipe.hset(&claims, &*self.node, expiry).ignore();
                    pipe.cmd("PEXPIREAT").arg(&claims).arg(expiry).ignore();
                    pipe.cmd("ZADD")
                        .arg(&z)
                        .arg("GT")
                        .arg(expiry)
                        .arg(&**user)
                        .ignore();
                }
                pipe.cmd("PEXPIREAT").arg(&z).arg(expiry).ignore();
                pipe.cmd("PEXPIREAT").arg(&names).arg(expiry).ignore();
                pipe.exec_async(&mut conn).await?;
            }
        }
        Ok(())
    }

    /// Removes users whose every claim lapsed; returns them (this node announces their leave)
    /// and the room's count after.
    pub(crate) async fn sweep(&self, channel: &str) -> redis::RedisResult<(Vec<UserInfo>, u64)> {
        let (z, names, _) = self.keys(channel, "");
        let claims_prefix = format!("{}pc:{{{channel}}}:", self.prefix);
        let mut out: Vec<String> = self
            .sweep
            .key(z)
            .key(names)
            .arg(now_ms())
            .arg(claims_prefix)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let count = out.pop().and_then(|c| c.parse().ok()).unwrap_or(0);
        let gone = out
            .chunks(2)
            .map(|p| UserInfo {
                id: p[0].clone(),
                username: p.get(1).cloned().unwrap_or_default(),
            })
            .collect();
        Ok((gone, count))
    }

    /// A page of online users: a `ZSCAN` cursor, so pages stay cheap in large rooms (a user may
    /// appear on two pages if presence changes while paging).
    pub(crate) async fn page(
        &self,
        channel: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<PresencePage> {
        let (z, names, _) = self.keys(channel, "");
        let now = now_ms();
        let mut conn = self.conn.clone();
        let cursor: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let (next, pairs): (u64, Vec<(String, i64)>) = redis::cmd("ZSCAN")
            .arg(&z)
            .arg(cursor)
            .arg("COUNT")
            .arg(limit.max(1))
            .query_async(&mut conn)
            .await?;
        let ids: Vec<String> = pairs
            .into_iter()
            .filter(|(_, e)| *e > now)
            .map(|(id, _)| id)
            .collect();
        let usernames: Vec<Option<String>> = if ids.is_empty() {
            Vec::new()
        } else {
            redis::cmd("HMGET")
                .arg(&names)
                .arg(&ids)
                .query_async(&mut conn)
                .await?
        };
        let count: u64 = redis::cmd("ZCOUNT")
            .arg(&z)
            .arg(format!("({now}"))
            .arg("+inf")
            .query_async(&mut conn)
            .await?;
        let users = ids
            .into_iter()
            .zip(usernames)
            .map(|(id, name)| UserInfo {
                id,
                username: name.unwrap_or_default(),
            })
            .collect();
        Ok(PresencePage {
            count,
            users,
            cursor: (next != 0).then(|| next.to_string()),
        })
    }
}

fn log_failure<T>(result: redis::RedisResult<T>, what: &str) -> Option<T> {
    result
        .map_err(|e| tracing::warn!(error = ?e, "{what} failed"))
        .ok()
}
