//! Bytes from a hostile or broken broker, arriving in arbitrary pieces.
//! The decoder must never panic, never hold more than its limit, and any
//! frame it returns must survive our own encoder unchanged.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtrigger::source::stomp::{Inbound, StompCodec};
use tokio_util::codec::{Decoder, Encoder};

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, wire)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let mut codec = StompCodec::default();
    codec.max_frame_bytes = LIMIT;
    codec.max_headers = 64;
    let mut buffer = BytesMut::new();
    for chunk in wire.chunks(piece) {
        buffer.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(Inbound::Frame(frame))) => round_trip(frame),
                Ok(Some(Inbound::HeartBeat)) => {}
                Ok(None) => break,
                // A broken stream ends the connection; nothing more to read.
                Err(_) => return,
            }
        }
        // A frame cannot be over the limit and still incomplete.
        assert!(
            buffer.len() <= LIMIT + piece,
            "buffer grew to {}",
            buffer.len()
        );
    }
});

fn round_trip(frame: mqtrigger::source::stomp::Frame) {
    let mut codec = StompCodec::default();
    let mut wire = BytesMut::new();
    if let Err(e) = codec.encode(frame.clone(), &mut wire) {
        // Only CONNECT and CONNECTED go unescaped, and only a line break or
        // a colon in a name cannot be sent that way.
        let unescaped = matches!(frame.command.as_str(), "CONNECT" | "CONNECTED");
        let unsendable =
            |(k, v): &(String, String)| k.contains([':', '\r', '\n']) || v.contains(['\r', '\n']);
        assert!(
            unescaped && frame.headers.iter().any(unsendable),
            "{frame:?}: {e}"
        );
        return;
    }
    match codec.decode(&mut wire) {
        Ok(Some(Inbound::Frame(again))) => {
            assert_eq!(again.command, frame.command);
            assert_eq!(again.body, frame.body);
            for (name, value) in &frame.headers {
                assert_eq!(
                    again.get(name),
                    frame.get(name),
                    "header {name:?} = {value:?}"
                );
            }
        }
        other => panic!("{frame:?} encoded, then decoded as {other:?}"),
    }
}
