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
}
