//! Counting prompt tokens before a call, so budgets can be checked before
//! spending. This is an estimate — about four characters of English per
//! token plus a few tokens of framing per message, rounded up — close to
//! OpenAI's and Anthropic's tokenizers for prose and generous for code.
//! Exact BPE counting (tiktoken) is not wired in yet.

use crate::{ChatRequest, Message};

/// Framing tokens each message costs (role markers and separators).
const PER_MESSAGE: u64 = 4;

/// Estimated tokens of one text.
pub fn estimate_text(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Estimated prompt tokens of a whole request: messages, tool calls and
/// tool definitions.
pub fn estimate_request(request: &ChatRequest) -> u64 {
    let messages: u64 = request.messages.iter().map(estimate_message).sum();
    let tools: u64 = request
        .tools
        .iter()
        .map(|t| {
            estimate_text(&t.name)
                + estimate_text(&t.description)
                + estimate_text(&t.parameters.to_string())
                + PER_MESSAGE
        })
        .sum();
    messages + tools + 3
}

fn estimate_message(m: &Message) -> u64 {
    let calls: u64 = m
        .tool_calls
        .iter()
        .map(|c| estimate_text(&c.name) + estimate_text(&c.arguments.to_string()))
        .sum();
    PER_MESSAGE + estimate_text(&m.content) + calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_with_the_prompt_and_round_up() {
        assert_eq!(estimate_text(""), 0);
        assert_eq!(estimate_text("abcde"), 2);
        let short = ChatRequest {
            messages: vec![Message::user("hi")],
            ..ChatRequest::default()
        };
        let long = ChatRequest {
            messages: vec![Message::user("hi".repeat(400))],
            ..ChatRequest::default()
        };
        assert_eq!(estimate_request(&short), 3 + 4 + 1);
        assert!(estimate_request(&long) > 200);
    }
}
