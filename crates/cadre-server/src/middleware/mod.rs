//! Everything that wraps every request, outermost first:
//! request context (id, log line, metrics, envelope guard) → CORS → security
//! headers → panic catcher → audit scope (rate-limit headers, audit entry) →
//! timeout → body limit → the handler.

mod audit;
mod body_limit;
mod panic;
mod request;
mod security_headers;
mod timeout;

pub(crate) use audit::audit;
pub(crate) use body_limit::reject_oversized;
pub(crate) use panic::panic_response;
pub(crate) use request::request_context;
pub(crate) use security_headers::security_headers;
pub(crate) use timeout::timeout;
