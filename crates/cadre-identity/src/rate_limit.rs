//! Rate limits: fixed windows counted in process, or in Redis so that every
//! instance shares one count.
//!
//! A fixed window lets a client use up to twice its limit across a window
//! boundary; in exchange one counter per key is all either backend keeps.
//! When Redis cannot be reached the limiter lets the request through and
//! logs it: an outage of the counter store must not take the API down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many hits a key may make per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub window: Duration,
}

impl Quota {
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window: Duration::from_secs(60),
        }
    }

    pub const fn per_hour(limit: u32) -> Self {
        Self {
            limit,
            window: Duration::from_secs(3600),
        }
    }
}

/// The outcome of one hit, with what the `X-RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the window resets (the `Retry-After` of a refused hit).
    pub reset_after: Duration,
}

impl Decision {
    fn from_count(count: u64, quota: Quota, reset_after: Duration) -> Self {
        let limit = u64::from(quota.limit);
        Decision {
            allowed: count <= limit,
            limit: quota.limit,
            remaining: u32::try_from(limit.saturating_sub(count)).unwrap_or(0),
            reset_after,
        }
    }
}

#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one hit on `key` and says whether it is within `quota`.
    async fn hit(&self, key: &str, quota: Quota) -> Decision;
    /// `memory` or `redis`.
    fn backend(&self) -> &'static str;
}

fn window_of(quota: Quota) -> (u64, Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let window_ms = u64::try_from(quota.window.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let now_ms = u64::try_from(now.as_millis()).unwrap_or(0);
    let index = now_ms / window_ms;
    let reset = Duration::from_millis(window_ms - now_ms % window_ms);
    (index, reset)
}

/// Counters in this process.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    windows: Mutex<HashMap<String, (u64, u64)>>,
}

/// Past this many keys, counters of finished windows are dropped.
const PRUNE_AT: usize = 100_000;

#[async_trait::async_trait]
impl RateLimiter for MemoryLimiter {
    async fn hit(&self, key: &str, quota: Quota) -> Decision {
        let (index, reset) = window_of(quota);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= PRUNE_AT {
            windows.retain(|_, (i, _)| *i >= index);
        }
        let entry = windows
            .entry(format!("{key}:{}", quota.window.as_secs()))
            .or_insert((index, 0));
        if entry.0 != index {
            *entry = (index, 0);
        }
        entry.1 += 1;
        Decision::from_count(entry.1, quota, reset)
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

/// Counters in Redis, shared by every instance using the same server.
pub struct RedisLimiter {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter").finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// Connects (and keeps reconnecting) to the Redis at `url`.
    pub async fn connect(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client).await?;
        // INCR and set the expiry in one step, so a key never outlives its window.
        let script = redis::Script::new(
            "local c = redis.call('INCR', KEYS[1]) \
             if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
             return c",
        );
        Ok(Self { conn, script })
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisLimiter {
    async fn hit(&self, key: &str, quota: Quota) -> Decision {
        let (index, reset) = window_of(quota);
        let redis_key = format!("cadre:rl:{key}:{}:{index}", quota.window.as_secs());
        let window_ms = u64::try_from(quota.window.as_millis()).unwrap_or(u64::MAX);
        let mut conn = self.conn.clone();
        match self
            .script
            .key(&redis_key)
            .arg(window_ms)
            .invoke_async::<u64>(&mut conn)
            .await
        {
            Ok(count) => Decision::from_count(count, quota, reset),
            Err(e) => {
                tracing::warn!(error = %e, "rate-limit counter unavailable; allowing the request");
                Decision {
                    allowed: true,
                    limit: quota.limit,
                    remaining: quota.limit,
                    reset_after: reset,
                }
            }
        }
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_hit_past_the_limit_is_refused_with_a_reset_time() {
        let limiter = MemoryLimiter::default();
        let quota = Quota {
            limit: 3,
            window: Duration::from_secs(3600),
        };
        let mut decisions = Vec::new();
        for _ in 0..4 {
            decisions.push(limiter.hit("k", quota).await);
        }
        assert_eq!(
            decisions.iter().map(|d| d.allowed).collect::<Vec<_>>(),
            vec![true, true, true, false]
        );
        assert_eq!(
            decisions.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            vec![2, 1, 0, 0]
        );
        assert!(
            decisions[3].reset_after <= Duration::from_secs(3600)
                && decisions[3].reset_after > Duration::ZERO
        );
        assert!(
            limiter.hit("other", quota).await.allowed,
            "keys are counted apart"
        );
    }
}
