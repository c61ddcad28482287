//! Chat (SPEC §7.2, §7.5): a turn with the org's orchestrator, answered in
//! one JSON or streamed as Server-Sent Events; the caller's sessions.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use cadre_realtime::{Channel, Inbox};
use cadre_runtime::TaskSpec;
use cadre_store::{Actor, ChatSessionRow, NewChatMessage};
use cadre_types::Tenant;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::chat::{ChatMessageOut, Turn};
use crate::envelope::{ApiList, no_content};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery, PageQuery};
use crate::{ApiJson, ApiResponse, AppState};

/// Longest message, in characters.
const MAX_MESSAGE_CHARS: usize = 20_000;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ChatIn {
    /// 1 to 20,000 characters.
    #[serde(default)]
    message: String,
    /// Continue this session; a new one is opened without it.
    session_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatSessionOut {
    id: Uuid,
    org_id: Uuid,
    title: String,
    /// What older turns said, once the conversation outgrew the model's
    /// context window.
    summary: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    updated_at: time::OffsetDateTime,
    /// Present when one session is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<ChatMessageOut>>,
}

impl From<ChatSessionRow> for ChatSessionOut {
    fn from(s: ChatSessionRow) -> Self {
        Self {
            id: s.id,
            org_id: s.org_id,
            title: s.title,
            summary: s.summary,
            created_at: s.created_at,
            updated_at: s.updated_at,
            messages: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatOut {
    session_id: Uuid,
    user_message: ChatMessageOut,
    /// The answer: `assistant`, or `agent` when the request was routed.
    message: ChatMessageOut,
    /// Executions the turn started (at most one).
    #[schema(value_type = Vec<Object>)]
    executions: Vec<Value>,
}

/// Who chats — the session's owner and the author of what the turn
/// creates — and the user behind it (an API key's creator), who starts the
/// executions.
fn owner(caller: &Caller) -> ApiResult<(Actor, Uuid)> {
    let principal = caller
        .principal()
        .ok_or_else(|| ApiError::not_found("session"))?;
    let user = match principal {
        crate::auth::Principal::User { id } => *id,
        crate::auth::Principal::ApiKey { created_by, .. } => *created_by,
    };
    Ok((principal.as_actor(), user))
}

/// The caller's live session `id` in the tenant; anyone else's is 404.
async fn own_session(
    state: &AppState,
    tenant: Tenant,
    actor: &Actor,
    id: Uuid,
) -> ApiResult<ChatSessionRow> {
    let session = state
        .store()
        .chat()
        .chat_session(tenant, id)
        .await
        .map_err(ApiError::at_field("session", "sessionId"))?;
    if !actor.is(&session.owner_type, Some(session.owner_id)) {
        return Err(ApiError::not_found("session").with_field("sessionId"));
    }
    Ok(session)
}

/// Checks the message, opens or finds the session, stores the message and
/// announces it; returns what the turn needs.
async fn begin(
    state: &AppState,
    caller: &Caller,
    org_id: Uuid,
    body: ChatIn,
) -> ApiResult<(Turn, ChatMessageOut)> {
    let tenant = caller.authorize(org_id).await?;
    let text = body.message.trim();
    if !(1..=MAX_MESSAGE_CHARS).contains(&text.chars().count()) {
        return Err(ApiError::validation(
            "message",
            "message must be 1 to 20000 characters",
        ));
    }
    let (actor, by) = owner(caller)?;
    let session = match body.session_id {
        Some(id) => own_session(state, tenant, &actor, id).await?,
        None => {
            let title: String = text.chars().take(80).collect();
            let id = actor.id.unwrap_or_default();
            state
                .store()
                .chat()
                .create_chat_session(
                    tenant,
                    cadre_types::new_id(),
                    (&actor.kind, id),
                    &title,
                    cadre_types::time::now(),
                )
                .await?
        }
    };
    let stored: ChatMessageOut = state
        .store()
        .chat()
        .add_chat_message(
            tenant,
            session.id,
            &NewChatMessage {
                id: cadre_types::new_id(),
                role: "user".into(),
                content: text.to_owned(),
                agent_id: None,
                execution_id: None,
                attachments: json!([]),
                tokens_in: 0,
                tokens_out: 0,
                at: cadre_types::time::now(),
            },
        )
        .await?
        .into();
    state.realtime().publish(cadre_realtime::Notice::new(
        "chat_message",
        cadre_realtime::Scope::session(tenant.org_id(), session.id),
        serde_json::to_value(&stored).unwrap_or_default(),
    ));
    let turn = Turn {
        state: state.clone(),
        tenant,
        session,
        actor,
        by: Some(by),
        message_id: cadre_types::new_id(),
    };
    Ok((turn, stored))
}

/// Send a message and get the whole answer. The orchestrator answers, or
/// routes the request to the best-suited agent (`role: "agent"`, with the
/// execution it started).
#[utoipa::path(post, path = "/api/v1/orgs/{orgId}/chat", tag = "chat", params(("orgId" = Uuid, Path)), request_body = ChatIn,
    responses((status = 200, body = ChatOut), (status = 404), (status = 503, description = "the model failed")))]
#[tracing::instrument(skip_all)]
pub(crate) async fn chat_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ChatIn>,
) -> ApiResult<ApiResponse<ChatOut>> {
    let (turn, user_message) = begin(&state, &caller, org_id, body).await?;
    let session_id = turn.session.id;
    let answered = turn.run().await?;
    Ok(ApiResponse::ok(ChatOut {
        session_id,
        user_message,
        message: answered.message,
        executions: answered.execution.into_iter().collect(),
    }))
}

/// Send a message and stream the answer (`text/event-stream`): `session`
/// (`sessionId`, `userMessageId`, `messageId`), then `chat_stream` token
/// chunks (`delta`, in order), `routed` when an agent takes the request
/// (with its execution), and finally `chat_message`, the stored answer;
/// `error` if the model failed. Event ids are the real-time bus's: send
/// `Last-Event-ID` with the `sessionId` (and no message) to resume a
/// stream that broke. The turn finishes even if the client goes away.
#[utoipa::path(post, path = "/api/v1/orgs/{orgId}/chat/stream", tag = "chat", params(("orgId" = Uuid, Path), ("Last-Event-ID" = Option<String>, Header, description = "resume after this event")), request_body = ChatIn,
    responses((status = 200, content_type = "text/event-stream", description = "server-sent events"), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn chat_stream_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChatIn>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let resume: Option<u64> = super::realtime::last_event_id(
        &headers,
        "Last-Event-ID must be an event id from this stream",
    )?;
    let mut inbox = state.realtime().inbox();
    let (first, until, replayed) = match resume {
        Some(after) => {
            let tenant = caller.authorize(org_id).await?;
            let (actor, _) = owner(&caller)?;
            let Some(id) = body.session_id else {
                return Err(ApiError::validation(
                    "sessionId",
                    "resuming a stream (Last-Event-ID) needs the sessionId",
                ));
            };
            let session = own_session(&state, tenant, &actor, id).await?;
            let replayed = state
                .realtime()
                .subscribe(&mut inbox, Channel::Session(session.id), tenant.org_id(), Some(after))
                .map_err(|_| {
                    ApiError::new(
                        crate::error::ErrorCode::Conflict,
                        "those events are no longer kept; read the session with GET /chat/sessions/{id}",
                    )
                })?;
            (None, Until::AnyAnswer, replayed)
        }
        None => {
            let (turn, user_message) = begin(&state, &caller, org_id, body).await?;
            // Listen before the turn starts, so no chunk is missed.
            inbox.listen(Channel::Session(turn.session.id), turn.tenant.org_id());
            let first = SseEvent::default().event("session").data(
                json!({"sessionId": turn.session.id, "userMessageId": user_message.id, "messageId": turn.message_id}).to_string(),
            );
            let until = Until::Message(turn.message_id);
            // Its own task: a client that goes away does not lose the answer.
            state.supervisor().spawn(
                TaskSpec::critical("chat-turn").with_on_error_log(),
                move |_| async move {
                    if let Err(e) = turn.run().await {
                        tracing::warn!(error = %e.message, "a chat turn failed");
                    }
                    Ok(())
                },
            );
            (Some(first), until, Vec::new())
        }
    };
    let feed = ChatFeed {
        first,
        replayed: replayed.into(),
        inbox,
        until,
        done: false,
    };
    Ok(Sse::new(futures_util::stream::unfold(feed, ChatFeed::next))
        .keep_alive(KeepAlive::default()))
}

/// When a chat stream ends.
#[derive(Clone, Copy)]
enum Until {
    /// This turn's stored answer (or its error).
    Message(Uuid),
    /// A resumed stream: the next stored answer.
    AnyAnswer,
}

struct ChatFeed {
    first: Option<SseEvent>,
    replayed: std::collections::VecDeque<std::sync::Arc<cadre_realtime::Event>>,
    inbox: Inbox,
    until: Until,
    done: bool,
}

impl ChatFeed {
    async fn next(mut self) -> Option<(Result<SseEvent, Infallible>, Self)> {
        if let Some(first) = self.first.take() {
            return Some((Ok(first), self));
        }
        if self.done {
            return None;
        }
        loop {
            let event = match self.replayed.pop_front() {
                Some(event) => event,
                None => {
                    let event = self.inbox.recv().await?;
                    if self.inbox.is_behind() {
                        return None;
                    }
                    event
                }
            };
            let payload: Value = serde_json::from_str(event.data()).unwrap_or(Value::Null);
            let ours = match self.until {
                Until::Message(id) => {
                    let id = id.to_string();
                    payload["messageId"] == id.as_str() || payload["id"] == id.as_str()
                }
                Until::AnyAnswer => true,
            };
            if !ours {
                continue;
            }
            let is_answer = event.kind == "chat_message" && payload["role"] != "user";
            if is_answer || event.kind == "error" {
                self.done = true;
            }
            let sse = SseEvent::default()
                .event(&event.kind)
                .id(event.seq.to_string())
                .data(event.data());
            return Some((Ok(sse), self));
        }
    }
}

/// The caller's chat sessions in the org, most recently active first.
#[utoipa::path(get, path = "/api/v1/orgs/{orgId}/chat/sessions", tag = "chat", params(("orgId" = Uuid, Path)), responses((status = 200, body = Vec<ChatSessionOut>)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn list_sessions_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org_id): ApiPath<Uuid>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<ApiList<ChatSessionOut>> {
    let page = page.page()?;
    let tenant = caller.authorize(org_id).await?;
    let (actor, _) = owner(&caller)?;
    let (rows, total) = state
        .store()
        .chat()
        .chat_sessions(tenant, (&actor.kind, actor.id.unwrap_or_default()), page)
        .await?;
    Ok(ApiList::new(
        rows.into_iter().map(Into::into).collect(),
        page,
        total,
    ))
}

async fn session_tenant(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> ApiResult<(Tenant, ChatSessionRow)> {
    let org = state
        .store()
        .chat()
        .chat_session_owner(id)
        .await?
        .map(|(org, _, _)| org);
    let tenant = caller.authorize_owner(org, "session").await?;
    let (actor, _) = owner(caller)?;
    let session = own_session(state, tenant, &actor, id)
        .await
        .map_err(|_| ApiError::not_found("session"))?;
    Ok((tenant, session))
}

/// One of the caller's sessions, with its messages (oldest first) and the
/// summary of older turns, if any.
#[utoipa::path(get, path = "/api/v1/chat/sessions/{id}", tag = "chat", params(("id" = Uuid, Path)), responses((status = 200, body = ChatSessionOut), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_session_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiResponse<ChatSessionOut>> {
    let (tenant, session) = session_tenant(&state, &caller, id).await?;
    let messages = state.store().chat().chat_messages(tenant, id).await?;
    let mut out = ChatSessionOut::from(session);
    out.messages = Some(messages.into_iter().map(Into::into).collect());
    Ok(ApiResponse::ok(out))
}

/// Delete one of the caller's sessions (soft).
#[utoipa::path(delete, path = "/api/v1/chat/sessions/{id}", tag = "chat", params(("id" = Uuid, Path)), responses((status = 204), (status = 404)))]
#[tracing::instrument(skip_all)]
pub(crate) async fn delete_session_handler(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let (tenant, _) = session_tenant(&state, &caller, id).await?;
    state
        .store()
        .chat()
        .delete_chat_session(tenant, id, cadre_types::time::now())
        .await?;
    Ok(no_content())
}
