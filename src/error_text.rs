//! Errors as a person reads them: one line, the error and its causes, never
//! a `Debug` dump of a library's error types.

/// An error and its sources in one line: "dispatch failure: io error:
/// client error (Connect): tcp connect error: Connection refused (os error 111)".
pub fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        // Some layers repeat their source's text.
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ").replace('\n', " ")
}

/// The first line of a text, cut at `max` bytes (on a character boundary)
/// with an ellipsis: LastProcessingResult, a toast.
pub fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.len() > max {
        format!("{}…", &line[..line.floor_char_boundary(max)])
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_are_joined_on_one_line_without_debug_output() {
        let e = Outer(std::io::Error::other("inner\nmore"));
        assert_eq!(causes(&e), "outer: inner more");
    }

    #[test]
    fn first_line_cuts_on_a_character_boundary() {
        assert_eq!(first_line("héllo\nworld", 2), "h…");
        assert_eq!(first_line("short\nmore", 80), "short");
    }
}
