//! Turning a provider's SSE events into [`StreamEvent`]s: a small state
//! machine per provider, driven by one shared loop that also notices a
//! stream that ends before its last event.

use std::collections::VecDeque;

use eventsource_stream::Event;
use futures_util::{Stream, StreamExt};

use crate::error::{ErrorKind, LlmError};
use crate::{EventStream, StreamEvent};

/// What a provider does with each SSE event.
pub(crate) trait Decoder: Send + 'static {
    /// Handles one event, pushing what it completes onto `out`. Returns
    /// `true` once the answer is finished.
    fn decode(&mut self, event: &Event, out: &mut VecDeque<StreamEvent>) -> Result<bool, LlmError>;
    fn provider(&self) -> &str;
}

/// Drives `decoder` over `events` into an [`EventStream`].
pub(crate) fn drive<S, D>(events: S, decoder: D) -> EventStream
where
    S: Stream<Item = Result<Event, LlmError>> + Send + 'static,
    D: Decoder,
{
    let state = (Box::pin(events), decoder, VecDeque::new(), false, false);
    Box::pin(futures_util::stream::unfold(
        state,
        |(mut events, mut decoder, mut pending, mut finished, mut failed)| async move {
            loop {
                if let Some(event) = pending.pop_front() {
                    return Some((Ok(event), (events, decoder, pending, finished, failed)));
                }
                if finished || failed {
                    return None;
                }
                match events.next().await {
                    Some(Ok(event)) => match decoder.decode(&event, &mut pending) {
                        Ok(done) => finished = done,
                        Err(e) => {
                            failed = true;
                            return Some((Err(e), (events, decoder, pending, finished, failed)));
                        }
                    },
                    Some(Err(e)) => {
                        failed = true;
                        return Some((Err(e), (events, decoder, pending, finished, failed)));
                    }
                    None => {
                        failed = true;
                        let e = LlmError::new(
                            ErrorKind::Unavailable,
                            decoder.provider(),
                            "the stream ended before the answer was complete",
                        );
                        return Some((Err(e), (events, decoder, pending, finished, failed)));
                    }
                }
            }
        },
    ))
}
