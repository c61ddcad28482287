//! Counting prompt tokens before a call, so budgets can be checked before
//! spending. OpenAI models are counted with their own BPE vocabulary
//! (tiktoken-compatible: o200k for gpt-4o/4.1/o-series, cl100k for older
//! ones), embedded in the binary. Other models get an estimate — about four
//! characters of English per token, rounded up — close to Anthropic's and
//! Llama's tokenizers for prose and generous for code. Both add a few
//! tokens of framing per message.

use crate::{ChatRequest, Message};

/// Framing tokens each message costs (role markers and separators).
const PER_MESSAGE: u64 = 4;

/// A prompt size and whether it came from the model's own tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCount {
    pub tokens: u64,
    pub exact: bool,
}

/// Prompt tokens of `request` for its model: exact for OpenAI models,
/// estimated otherwise.
pub fn count_request(request: &ChatRequest) -> TokenCount {
    match tiktoken_rs::bpe_for_model(&request.model) {
        Ok(bpe) => {
            let count = |text: &str| bpe.encode_with_special_tokens(text).len() as u64;
            TokenCount {
                tokens: sum_request(request, &count),
                exact: true,
            }
        }
        Err(_) => TokenCount {
            tokens: estimate_request(request),
            exact: false,
        },
    }
}

/// Estimated tokens of one text.
pub fn estimate_text(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Estimated prompt tokens of a whole request: messages, tool calls and
/// tool definitions.
pub fn estimate_request(request: &ChatRequest) -> u64 {
    sum_request(request, &estimate_text)
}

/// Messages, tool calls and tool definitions, each measured by `count`.
fn sum_request(request: &ChatRequest, count: &dyn Fn(&str) -> u64) -> u64 {
    let message = |m: &Message| {
        let calls: u64 = m
            .tool_calls
            .iter()
            .map(|c| count(&c.name) + count(&c.arguments.to_string()))
            .sum();
        PER_MESSAGE + count(&m.content) + calls
    };
    let messages: u64 = request.messages.iter().map(message).sum();
    let tools: u64 = request
        .tools
        .iter()
        .map(|t| {
            count(&t.name) + count(&t.description) + count(&t.parameters.to_string()) + PER_MESSAGE
        })
        .sum();
    messages + tools + 3
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

    #[test]
    fn openai_models_are_counted_with_their_own_vocabulary() {
        // "Hello world" is two tokens in o200k_base.
        let req = ChatRequest {
            model: "gpt-4o".into(),
            messages: vec![Message::user("Hello world")],
            ..ChatRequest::default()
        };
        assert_eq!(
            count_request(&req),
            TokenCount {
                tokens: 3 + 4 + 2,
                exact: true
            }
        );
        let other = ChatRequest {
            model: "llama-3-8b".into(),
            ..req
        };
        assert_eq!(
            count_request(&other),
            TokenCount {
                tokens: 3 + 4 + 3,
                exact: false
            }
        );
    }
}
