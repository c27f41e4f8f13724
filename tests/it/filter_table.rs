//! Lambda's event-filtering examples (and EventBridge's `wildcard`), as a
//! table: each pattern with messages that must and must not pass.

use mqtrigger::filter::Filters;

/// (pattern, message body, passes)
const CASES: &[(&str, &str, bool)] = &[
    // Exact values: strings, numbers, booleans, null, empty string.
    (r#"{"data":{"state":["CA"]}}"#, r#"{"state":"CA"}"#, true),
    (r#"{"data":{"state":["CA"]}}"#, r#"{"state":"NY"}"#, false),
    (r#"{"data":{"state":["CA"]}}"#, r#"{"city":"LA"}"#, false),
    (r#"{"data":{"count":[300]}}"#, r#"{"count":300}"#, true),
    (r#"{"data":{"count":[300]}}"#, r#"{"count":300.0}"#, true),
    (r#"{"data":{"count":[300]}}"#, r#"{"count":"300"}"#, false),
    (r#"{"data":{"active":[true]}}"#, r#"{"active":true}"#, true),
    (
        r#"{"data":{"active":[true]}}"#,
        r#"{"active":"true"}"#,
        false,
    ),
    (r#"{"data":{"owner":[null]}}"#, r#"{"owner":null}"#, true),
    (r#"{"data":{"owner":[null]}}"#, r#"{"owner":"me"}"#, false),
    (r#"{"data":{"owner":[null]}}"#, r#"{}"#, false),
    (r#"{"data":{"note":[""]}}"#, r#"{"note":""}"#, true),
    (r#"{"data":{"note":[""]}}"#, r#"{"note":" "}"#, false),
    // OR inside a value list.
    (
        r#"{"data":{"state":["CA","NY"]}}"#,
        r#"{"state":"NY"}"#,
        true,
    ),
    (
        r#"{"data":{"state":["CA","NY"]}}"#,
        r#"{"state":"TX"}"#,
        false,
    ),
    // AND across fields.
    (
        r#"{"data":{"state":["CA"],"type":["order"]}}"#,
        r#"{"state":"CA","type":"order"}"#,
        true,
    ),
    (
        r#"{"data":{"state":["CA"],"type":["order"]}}"#,
        r#"{"state":"CA","type":"refund"}"#,
        false,
    ),
    // Nested objects.
    (
        r#"{"data":{"address":{"zip":["94016"]}}}"#,
        r#"{"address":{"zip":"94016"}}"#,
        true,
    ),
    (
        r#"{"data":{"address":{"zip":["94016"]}}}"#,
        r#"{"address":{"zip":"10001"}}"#,
        false,
    ),
    (
        r#"{"data":{"address":{"zip":["94016"]}}}"#,
        r#"{"address":"94016"}"#,
        false,
    ),
    // Arrays in the event: any element.
    (
        r#"{"data":{"tags":["blue"]}}"#,
        r#"{"tags":["red","blue"]}"#,
        true,
    ),
    (
        r#"{"data":{"tags":["blue"]}}"#,
        r#"{"tags":["red","green"]}"#,
        false,
    ),
    (
        r#"{"data":{"items":{"sku":["A1"]}}}"#,
        r#"{"items":[{"sku":"B2"},{"sku":"A1"}]}"#,
        true,
    ),
    (
        r#"{"data":{"items":{"sku":["A1"]}}}"#,
        r#"{"items":[{"sku":"B2"}]}"#,
        false,
    ),
    // prefix, suffix, equals-ignore-case.
    (
        r#"{"data":{"region":[{"prefix":"us-"}]}}"#,
        r#"{"region":"us-east-1"}"#,
        true,
    ),
    (
        r#"{"data":{"region":[{"prefix":"us-"}]}}"#,
        r#"{"region":"eu-west-1"}"#,
        false,
    ),
    (
        r#"{"data":{"region":[{"prefix":{"equals-ignore-case":"US-"}}]}}"#,
        r#"{"region":"us-east-1"}"#,
        true,
    ),
    (
        r#"{"data":{"file":[{"suffix":".png"}]}}"#,
        r#"{"file":"cat.png"}"#,
        true,
    ),
    (
        r#"{"data":{"file":[{"suffix":".png"}]}}"#,
        r#"{"file":"cat.jpg"}"#,
        false,
    ),
    (
        r#"{"data":{"file":[{"suffix":{"equals-ignore-case":".PNG"}}]}}"#,
        r#"{"file":"cat.png"}"#,
        true,
    ),
    (
        r#"{"data":{"name":[{"equals-ignore-case":"alice"}]}}"#,
        r#"{"name":"ALICE"}"#,
        true,
    ),
    (
        r#"{"data":{"name":[{"equals-ignore-case":"alice"}]}}"#,
        r#"{"name":"bob"}"#,
        false,
    ),
    // anything-but: single value, list, prefix, suffix.
    (
        r#"{"data":{"state":[{"anything-but":"initializing"}]}}"#,
        r#"{"state":"running"}"#,
        true,
    ),
    (
        r#"{"data":{"state":[{"anything-but":"initializing"}]}}"#,
        r#"{"state":"initializing"}"#,
        false,
    ),
    (
        r#"{"data":{"state":[{"anything-but":["stopped","overloaded"]}]}}"#,
        r#"{"state":"running"}"#,
        true,
    ),
    (
        r#"{"data":{"state":[{"anything-but":["stopped","overloaded"]}]}}"#,
        r#"{"state":"stopped"}"#,
        false,
    ),
    (
        r#"{"data":{"code":[{"anything-but":[404,500]}]}}"#,
        r#"{"code":200}"#,
        true,
    ),
    (
        r#"{"data":{"code":[{"anything-but":[404,500]}]}}"#,
        r#"{"code":500}"#,
        false,
    ),
    (
        r#"{"data":{"region":[{"anything-but":{"prefix":"us-"}}]}}"#,
        r#"{"region":"eu-west-1"}"#,
        true,
    ),
    (
        r#"{"data":{"region":[{"anything-but":{"prefix":"us-"}}]}}"#,
        r#"{"region":"us-east-1"}"#,
        false,
    ),
    (
        r#"{"data":{"file":[{"anything-but":{"suffix":".tmp"}}]}}"#,
        r#"{"file":"a.txt"}"#,
        true,
    ),
    (
        r#"{"data":{"file":[{"anything-but":{"suffix":".tmp"}}]}}"#,
        r#"{"file":"a.tmp"}"#,
        false,
    ),
    (
        r#"{"data":{"name":[{"anything-but":{"equals-ignore-case":["ALICE","BOB"]}}]}}"#,
        r#"{"name":"carol"}"#,
        true,
    ),
    (
        r#"{"data":{"name":[{"anything-but":{"equals-ignore-case":["ALICE","BOB"]}}]}}"#,
        r#"{"name":"bob"}"#,
        false,
    ),
    (
        r#"{"data":{"state":[{"anything-but":"x"}]}}"#,
        r#"{}"#,
        false,
    ),
    // numeric: =, <, <=, >, >= and ranges.
    (
        r#"{"data":{"timeout":[{"numeric":[">",0]}]}}"#,
        r#"{"timeout":3}"#,
        true,
    ),
    (
        r#"{"data":{"timeout":[{"numeric":[">",0]}]}}"#,
        r#"{"timeout":0}"#,
        false,
    ),
    (
        r#"{"data":{"timeout":[{"numeric":[">=",0]}]}}"#,
        r#"{"timeout":0}"#,
        true,
    ),
    (
        r#"{"data":{"price":[{"numeric":["<",10]}]}}"#,
        r#"{"price":9.99}"#,
        true,
    ),
    (
        r#"{"data":{"price":[{"numeric":["<=",10]}]}}"#,
        r#"{"price":10}"#,
        true,
    ),
    (
        r#"{"data":{"price":[{"numeric":["<",10]}]}}"#,
        r#"{"price":10}"#,
        false,
    ),
    (
        r#"{"data":{"price":[{"numeric":["=",100]}]}}"#,
        r#"{"price":100.0}"#,
        true,
    ),
    (
        r#"{"data":{"price":[{"numeric":["=",100]}]}}"#,
        r#"{"price":"100"}"#,
        false,
    ),
    (
        r#"{"data":{"age":[{"numeric":[">",10,"<=",20]}]}}"#,
        r#"{"age":20}"#,
        true,
    ),
    (
        r#"{"data":{"age":[{"numeric":[">",10,"<=",20]}]}}"#,
        r#"{"age":10}"#,
        false,
    ),
    (
        r#"{"data":{"age":[{"numeric":[">",10,"<=",20]}]}}"#,
        r#"{"age":21}"#,
        false,
    ),
    // exists.
    (
        r#"{"data":{"error":[{"exists":true}]}}"#,
        r#"{"error":"boom"}"#,
        true,
    ),
    (
        r#"{"data":{"error":[{"exists":true}]}}"#,
        r#"{"ok":1}"#,
        false,
    ),
    (
        r#"{"data":{"error":[{"exists":false}]}}"#,
        r#"{"ok":1}"#,
        true,
    ),
    (
        r#"{"data":{"error":[{"exists":false}]}}"#,
        r#"{"error":null}"#,
        false,
    ),
    (
        r#"{"data":{"meta":[{"exists":true}]}}"#,
        r#"{"meta":{"a":1}}"#,
        false,
    ),
    // $or.
    (
        r#"{"data":{"$or":[{"state":["CA"]},{"priority":[{"numeric":[">",5]}]}]}}"#,
        r#"{"state":"NY","priority":9}"#,
        true,
    ),
    (
        r#"{"data":{"$or":[{"state":["CA"]},{"priority":[{"numeric":[">",5]}]}]}}"#,
        r#"{"state":"NY","priority":1}"#,
        false,
    ),
    (
        r#"{"$or":[{"data":{"a":["1"]}},{"data":{"b":["2"]}}]}"#,
        r#"{"b":"2"}"#,
        true,
    ),
    // A plain-string body: the pattern applies to the string itself.
    (r#"{"data":[{"prefix":"Result: "}]}"#, "Result: ok", true),
    (r#"{"data":[{"prefix":"Result: "}]}"#, "Outcome: ok", false),
    (r#"{"data":["hello"]}"#, "hello", true),
    // EventBridge's wildcard.
    (
        r#"{"data":{"path":[{"wildcard":"/orders/*/items"}]}}"#,
        r#"{"path":"/orders/42/items"}"#,
        true,
    ),
    (
        r#"{"data":{"path":[{"wildcard":"/orders/*/items"}]}}"#,
        r#"{"path":"/orders/42/lines"}"#,
        false,
    ),
    (
        r#"{"data":{"path":[{"wildcard":"*.json"}]}}"#,
        r#"{"path":"a/b.json"}"#,
        true,
    ),
];

#[test]
fn lambdas_documented_examples() {
    assert!(CASES.len() >= 60);
    for (pattern, body, expected) in CASES {
        let filters = Filters::parse(&[pattern]).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        assert_eq!(
            filters.matches(body.as_bytes()),
            *expected,
            "pattern {pattern} on {body}"
        );
    }
}

#[test]
fn any_filter_of_several_lets_a_message_through_and_says_which() {
    let f = Filters::parse(&[r#"{"data":{"a":["1"]}}"#, r#"{"data":{"b":["2"]}}"#]).unwrap();
    assert_eq!(f.matching(br#"{"b":"2"}"#), Some(1));
    assert_eq!(f.matching(br#"{"c":"3"}"#), None);
}

#[test]
fn a_body_that_is_not_utf8_matches_no_pattern() {
    let f = Filters::parse(&[r#"{"data":[{"exists":true}]}"#]).unwrap();
    assert!(f.matches(b"text"));
    assert!(!f.matches(&[0xff, 0xfe]));
}

#[test]
fn bad_patterns_are_refused_with_lambdas_error() {
    for (pattern, says) in [
        ("not json", "not JSON"),
        (r#"["data"]"#, "must be a JSON object"),
        (r#"{"body":{"a":["x"]}}"#, "only the `data` key"),
        (r#"{"data":{"a":"x"}}"#, "must be inside a list"),
        (r#"{"data":{"a":[]}}"#, "empty list"),
        (
            r#"{"data":{"a":[{"numeric":[">","ten"]}]}}"#,
            "not an operator and a number",
        ),
        (
            r#"{"data":{"a":[{"numeric":["<",10,">",1]}]}}"#,
            "lower bound",
        ),
        (
            r#"{"data":{"a":[{"exists":"yes"}]}}"#,
            "wrong value for `exists`",
        ),
        (
            r#"{"data":{"a":[{"prefix":"a","suffix":"b"}]}}"#,
            "exactly one operator",
        ),
        (
            r#"{"data":{"a":[{"regex":".*"}]}}"#,
            "unknown operator `regex`",
        ),
        (r#"{"data":{"$or":[{"a":["1"]}]}}"#, "at least two patterns"),
    ] {
        let err = Filters::parse(&[pattern]).expect_err(pattern);
        assert!(err.starts_with("InvalidParameterValueException: "), "{err}");
        assert!(err.contains(says), "{pattern}: {err}");
    }
    let six = vec![r#"{"data":["x"]}"#; 6];
    assert!(Filters::parse(&six).unwrap_err().contains("at most 5"));
}
