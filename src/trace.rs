//! A message's trace context, as producers send it: W3C's `traceparent`
//! (with `tracestate`) or X-Ray's `X-Amzn-Trace-Id`. The sources read it
//! off each message; an invocation carries the trace of its batch's first
//! message that has one (as `_X_AMZN_TRACE_ID` and the Runtime API's
//! `Lambda-Runtime-Trace-Id` for local functions, `X-Amzn-Trace-Id` and
//! `traceparent` for Lambda endpoints), and the spans mqtrigger exports
//! (`telemetry`) link to every message's trace.
//!
//! The invokers learn the trace of the invocation under way from a task
//! local ([`scope`], [`current`]): the engine sets it around the attempt,
//! and no invoker's signature has to carry it.

use std::fmt::Write as _;

/// One trace context: the trace, the span it came from, and whether it is
/// sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
    /// W3C's `tracestate`, passed along as it came.
    pub state: Option<String>,
}

tokio::task_local! {
    static CURRENT: Option<TraceParent>;
}

/// Runs `f` with `trace` as the invocation's trace.
pub async fn scope<F: std::future::Future>(trace: Option<TraceParent>, f: F) -> F::Output {
    CURRENT.scope(trace, f).await
}

/// The trace of the invocation under way, if it has one.
pub fn current() -> Option<TraceParent> {
    CURRENT.try_with(Clone::clone).ok().flatten()
}

fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl TraceParent {
    /// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`; an all-zero
    /// trace or span id is no trace.
    pub fn from_w3c(header: &str, state: Option<&str>) -> Option<TraceParent> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id = hex::<16>(trace)?;
        let span_id = hex::<8>(span)?;
        let flags = hex::<1>(flags)?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
            state: state.map(str::to_owned).filter(|s| !s.is_empty()),
        })
    }

    /// `Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=1`: its trace
    /// id is the 32 hex digits of the root.
    pub fn from_xray(header: &str) -> Option<TraceParent> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = false;
        for field in header.split(';') {
            match field.trim().split_once('=') {
                Some(("Root", value)) => {
                    let mut parts = value.split('-');
                    let (one, time, rest) = (parts.next()?, parts.next()?, parts.next()?);
                    if one != "1" || time.len() != 8 || rest.len() != 24 {
                        return None;
                    }
                    root = hex::<16>(&format!("{time}{rest}"));
                }
                Some(("Parent", value)) => parent = hex::<8>(value),
                Some(("Sampled", value)) => sampled = value == "1",
                _ => {}
            }
        }
        Some(TraceParent {
            trace_id: root?,
            span_id: parent.unwrap_or([1, 0, 0, 0, 0, 0, 0, 0]),
            sampled,
            state: None,
        })
    }

    /// Whether a header is one [`Self::from_headers`] reads (a source need
    /// not convert the others).
    pub fn is_trace_header(name: &str) -> bool {
        ["traceparent", "tracestate", "x-amzn-trace-id"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
    }

    /// The message's trace from its headers (their names in any case):
    /// `traceparent` first, then `X-Amzn-Trace-Id`.
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Option<TraceParent> {
        let (mut w3c, mut state, mut xray) = (None, None, None);
        // Compared without allocating: this runs for every message.
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("traceparent") {
                w3c = Some(value);
            } else if name.eq_ignore_ascii_case("tracestate") {
                state = Some(value);
            } else if name.eq_ignore_ascii_case("x-amzn-trace-id") {
                xray = Some(value);
            }
        }
        w3c.and_then(|v| TraceParent::from_w3c(v, state))
            .or_else(|| xray.and_then(TraceParent::from_xray))
    }

    pub fn trace_hex(&self) -> String {
        to_hex(&self.trace_id)
    }

    pub fn span_hex(&self) -> String {
        to_hex(&self.span_id)
    }

    /// W3C's `traceparent`.
    pub fn to_w3c(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_hex(),
            self.span_hex(),
            u8::from(self.sampled)
        )
    }

    /// X-Ray's header, as Lambda gives it to a function (`_X_AMZN_TRACE_ID`).
    pub fn to_xray(&self) -> String {
        let trace = self.trace_hex();
        format!(
            "Root=1-{}-{};Parent={};Sampled={}",
            &trace[..8],
            &trace[8..],
            self.span_hex(),
            u8::from(self.sampled)
        )
    }

    /// The same trace, from another span (the invocation's own).
    pub fn child(&self, span_id: [u8; 8]) -> TraceParent {
        TraceParent {
            span_id,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W3C: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn w3c_and_xray_read_and_write_the_same_trace() {
        let t = TraceParent::from_w3c(W3C, Some("congo=t61rcWkgMzE")).unwrap();
        assert!(t.sampled);
        assert_eq!(t.to_w3c(), W3C);
        assert_eq!(
            t.to_xray(),
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
        );
        let back = TraceParent::from_xray(&t.to_xray()).unwrap();
        assert_eq!((back.trace_id, back.span_id), (t.trace_id, t.span_id));
    }

    #[test]
    fn headers_are_read_in_any_case_traceparent_first() {
        let xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let t = TraceParent::from_headers([("X-Amzn-Trace-Id", xray)]).unwrap();
        assert_eq!(t.trace_hex(), "5759e988bd862e3fe1be46a994272793");
        let both = TraceParent::from_headers([("X-Amzn-Trace-Id", xray), ("TraceParent", W3C)]);
        assert_eq!(both.unwrap().to_w3c(), W3C);
        assert_eq!(TraceParent::from_headers([("other", "x")]), None);
    }

    #[test]
    fn malformed_and_all_zero_ids_are_no_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::from_w3c(bad, None), None, "{bad}");
        }
        assert_eq!(TraceParent::from_xray("Root=2-x"), None);
    }

    #[tokio::test]
    async fn the_current_trace_is_the_scopes() {
        assert_eq!(current(), None);
        let t = TraceParent::from_w3c(W3C, None);
        let seen = scope(t.clone(), async { current() }).await;
        assert_eq!(seen, t);
    }
}
