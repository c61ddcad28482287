//! Line diffs for versions (agents' definitions, tasks' fields).

use similar::{ChangeTag, TextDiff};

pub struct Line {
    /// `add`, `del` or `same` (the CSS class).
    pub kind: &'static str,
    /// `+`, `-` or a space, for readers who cannot see the colours.
    pub sign: &'static str,
    pub text: String,
}

pub fn lines(old: &str, new: &str) -> Vec<Line> {
    TextDiff::from_lines(old, new)
        .iter_all_changes()
        .map(|change| {
            let (kind, sign) = match change.tag() {
                ChangeTag::Delete => ("del", "-"),
                ChangeTag::Insert => ("add", "+"),
                ChangeTag::Equal => ("same", " "),
            };
            Line {
                kind,
                sign,
                text: change.value().trim_end_matches('\n').to_owned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn changed_lines_are_marked() {
        let d = super::lines("a\nb\nc\n", "a\nB\nc\n");
        let marks: Vec<(&str, &str)> = d.iter().map(|l| (l.sign, l.text.as_str())).collect();
        assert_eq!(marks, [(" ", "a"), ("-", "b"), ("+", "B"), (" ", "c")]);
    }
}
