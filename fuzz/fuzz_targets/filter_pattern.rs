//! FilterCriteria patterns as a user (or the API) may send them, and the
//! message bodies they meet. Parsing refuses or accepts, matching answers;
//! neither panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtrigger::filter::Filters;

fuzz_target!(|data: &[u8]| {
    // The pattern, a NUL, then the body.
    let (pattern, body) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{\"data\":{\"a\":1}}"[..]),
    };
    let pattern = String::from_utf8_lossy(pattern);
    let Ok(filters) = Filters::parse(&[pattern.as_ref()]) else {
        return;
    };
    let matched = filters.matches(body);
    assert_eq!(matched, filters.matching(body).is_some());
});
