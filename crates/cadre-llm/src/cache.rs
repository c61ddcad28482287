//! An optional exact-match response cache (SPEC §5): the same request in
//! the same scope (an organization) within the TTL gets the stored answer
//! without a model call. Off unless a caller creates one. Only complete,
//! successful answers are stored; the scope keeps organizations apart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::{ChatRequest, ChatResponse};

/// Entries kept at most; past it, expired entries are dropped and then the
/// oldest.
const CAPACITY: usize = 10_000;

#[derive(Debug)]
pub struct ResponseCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Instant, ChatResponse)>>,
}

impl ResponseCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    fn key(scope: &str, request: &ChatRequest) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(scope.as_bytes());
        hasher.update([0]);
        hasher.update(format!("{request:?}").as_bytes());
        hasher.finalize().into()
    }

    /// The stored answer, if one is fresh.
    pub fn get(&self, scope: &str, request: &ChatRequest) -> Option<ChatResponse> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(&Self::key(scope, request))
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, r)| r.clone())
    }

    pub fn put(&self, scope: &str, request: &ChatRequest, response: &ChatResponse) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= CAPACITY
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| *k)
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            Self::key(scope, request),
            (Instant::now(), response.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FinishReason, Message, Usage};

    fn answer(text: &str) -> ChatResponse {
        ChatResponse {
            model: "m".into(),
            text: text.into(),
            tool_calls: vec![],
            finish_reason: FinishReason::Stop,
            usage: Usage::default(),
        }
    }

    #[test]
    fn the_same_request_in_the_same_scope_hits_until_the_ttl() {
        let cache = ResponseCache::new(Duration::from_secs(60));
        let req = ChatRequest {
            model: "m".into(),
            messages: vec![Message::user("hi")],
            ..ChatRequest::default()
        };
        cache.put("org-a", &req, &answer("hello"));
        assert_eq!(cache.get("org-a", &req).unwrap().text, "hello");
        assert!(
            cache.get("org-b", &req).is_none(),
            "another organization never sees it"
        );
        let other = ChatRequest {
            messages: vec![Message::user("hi!")],
            ..req.clone()
        };
        assert!(cache.get("org-a", &other).is_none());

        let expired = ResponseCache::new(Duration::ZERO);
        expired.put("org-a", &req, &answer("hello"));
        assert!(expired.get("org-a", &req).is_none());
    }
}
