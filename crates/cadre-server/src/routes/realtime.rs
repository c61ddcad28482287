//! Real-time endpoints (SPEC §6): the WebSocket token, the WebSocket itself
//! and the execution event stream (SSE).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cadre_realtime::{Channel, Inbox};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiPath, ApiQuery};
use crate::ws::{Connection, MAX_MESSAGE_BYTES, protocol};
use crate::{ApiResponse, AppState};

/// How long a WebSocket token may wait to be used.
const WS_TOKEN_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WsTokenOut {
    /// Pass as `/ws?token=…`; valid once, for 5 minutes.
    token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    expires_at: time::OffsetDateTime,
}

/// Trade the access token (or API key) for a single-use WebSocket token:
/// browsers cannot send headers when opening a WebSocket, and a token in a
/// URL must not be one that lasts.
#[utoipa::path(post, path = "/api/v1/auth/ws-token", tag = "realtime", responses((status = 200, body = WsTokenOut), (status = 401)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn ws_token_handler(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<ApiResponse<WsTokenOut>> {
    let holder = match caller.principal() {
        Some(crate::auth::Principal::User { id }) => cadre_store::WsHolder::User(*id),
        Some(crate::auth::Principal::ApiKey { id, .. }) => cadre_store::WsHolder::ApiKey(*id),
        None => {
            return Err(ApiError::new(
                ErrorCode::MissingToken,
                ErrorCode::MissingToken.default_message(),
            ));
        }
    };
    let token = cadre_identity::keys::random_token("wst_").map_err(|e| ApiError::internal(&e))?;
    let now = cadre_types::time::now();
    let expires_at = cadre_types::time::normalize(now + WS_TOKEN_TTL);
    state
        .store()
        .sessions()
        .insert_ws_token(
            &cadre_identity::keys::token_hash(&token),
            holder,
            expires_at,
            now,
        )
        .await?;
    Ok(ApiResponse::ok(WsTokenOut { token, expires_at }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct WsQuery {
    token: Option<String>,
    /// Subscriptions replay what followed this event id.
    last_event_id: Option<String>,
}

/// `GET /ws?token=…[&lastEventId=…]`: the token is checked (and used up)
/// before the upgrade, so a bad one gets the JSON error envelope.
pub(crate) async fn ws_handler(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let Some(token) = query.token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::new(
            ErrorCode::MissingToken,
            "connect with /ws?token=…; get a token from POST /api/v1/auth/ws-token",
        ));
    };
    let last_event_id = match query.last_event_id.as_deref() {
        None | Some("") => None,
        Some(id) => Some(protocol::parse_event_id(id).ok_or_else(|| {
            ApiError::validation("lastEventId", "lastEventId must be a positive integer")
        })?),
    };
    let holder = state
        .store()
        .sessions()
        .consume_ws_token(&cadre_identity::keys::token_hash(&token), cadre_types::time::now())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidToken,
                "the WebSocket token is unknown, used or expired; get a new one from POST /api/v1/auth/ws-token",
            )
        })?;
    let principal = crate::auth::ws_principal(holder, &state).await?;
    let connection = Connection::new(state, principal, last_event_id);
    // Small buffers (tungstenite's defaults are 128 KiB each way, taken up
    // front): most messages are small, and idle connections are many.
    Ok(upgrade
        .read_buffer_size(4 << 10)
        .write_buffer_size(4 << 10)
        .max_write_buffer_size(2 << 20)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| connection.run(socket))
        .into_response())
}

/// The execution's trace and status as they are committed
/// (`text/event-stream`). Events: `trace_event` (id = its sequence
/// number), `execution_update`, `approval_requested`,
/// `approval_resolved`. With `Last-Event-ID`, the trace events after it are
/// read from the database first, so nothing is missed however long the
/// client was away. The stream ends once the execution has finished.
#[utoipa::path(get, path = "/api/v1/executions/{id}/events", tag = "executions", params(("id" = Uuid, Path), ("Last-Event-ID" = Option<String>, Header, description = "the last trace sequence number received")),
    responses((status = 200, content_type = "text/event-stream", description = "server-sent events"), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn execution_events_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let tenant = caller
        .authorize_owner(
            state.store().executions().execution_org(id).await?,
            "execution",
        )
        .await?;
    let after: i64 =
        last_event_id(&headers, "Last-Event-ID must be a trace sequence number")?.unwrap_or(0);
    // Listen before reading, so no event falls between the two.
    let mut inbox = state.realtime().inbox();
    inbox.listen(Channel::Execution(id), tenant.org_id());
    let row = state.store().executions().execution(tenant, id).await?;
    let mut backlog = VecDeque::new();
    let mut sent = after;
    for event in state
        .store()
        .executions()
        .trace_after(tenant, id, after)
        .await?
    {
        sent = event.seq;
        let payload = serde_json::json!({
            "executionId": id, "seq": event.seq, "type": event.kind,
            "at": cadre_types::time::rfc3339(event.at),
            "data": event.data.0, "hash": event.hash,
        });
        backlog.push_back(sse("trace_event", Some(event.seq), &payload.to_string()));
    }
    let update = super::executions::update_notice(&state, tenant, &row).await;
    backlog.push_back(sse(
        "execution_update",
        Some(row.trace_seq),
        &update.payload.to_string(),
    ));
    let feed = Feed {
        backlog,
        inbox,
        sent,
        done: cadre_engine::TERMINAL.contains(&row.status.as_str()),
    };
    Ok(Sse::new(futures_util::stream::unfold(feed, Feed::next)).keep_alive(KeepAlive::default()))
}

/// The `Last-Event-ID` header of a stream that resumes (`None`: absent or
/// empty); `what` says what it must be when it cannot be read.
pub(crate) fn last_event_id<T: std::str::FromStr>(
    headers: &HeaderMap,
    what: &str,
) -> ApiResult<Option<T>> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    match value.to_str().map(str::trim) {
        Ok("") => Ok(None),
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::validation("Last-Event-ID", what)),
        Err(_) => Err(ApiError::validation("Last-Event-ID", what)),
    }
}

/// The SSE stream's state: what is still to send from the database, then
/// the live events.
struct Feed {
    backlog: VecDeque<SseEvent>,
    inbox: Inbox,
    /// The last trace sequence number sent.
    sent: i64,
    done: bool,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<SseEvent, Infallible>, Self)> {
        if let Some(event) = self.backlog.pop_front() {
            return Some((Ok(event), self));
        }
        if self.done {
            return None;
        }
        loop {
            let event = self.inbox.recv().await?;
            if self.inbox.is_behind() {
                // Too slow: end the stream; the client reconnects with
                // Last-Event-ID and reads the rest from the database.
                return None;
            }
            let payload: Value = serde_json::from_str(event.data()).unwrap_or(Value::Null);
            let id = match event.kind.as_str() {
                "trace_event" => {
                    let seq = payload["seq"].as_i64().unwrap_or(0);
                    if seq <= self.sent {
                        continue;
                    }
                    self.sent = seq;
                    Some(seq)
                }
                "execution_update" => {
                    let status = payload["status"].as_str().unwrap_or_default();
                    self.done = cadre_engine::TERMINAL.contains(&status);
                    Some(self.sent)
                }
                _ => None,
            };
            return Some((Ok(sse(&event.kind, id, event.data())), self));
        }
    }
}

fn sse(kind: &str, id: Option<i64>, data: &str) -> SseEvent {
    let event = SseEvent::default().event(kind).data(data);
    match id {
        Some(id) => event.id(id.to_string()),
        None => event,
    }
}
