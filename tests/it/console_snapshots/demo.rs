//! The demo's whole screen at 80×24, 120×40 and 200×50 (snapshots), and
//! no count of a mapping cut at any of those sizes.

use super::fixture::{ORDERS, PAYMENTS, SHIPMENTS, demo};
use super::{render_on, rows};

#[test]
fn the_demo_at_80_by_24() {
    insta::assert_snapshot!(render_on(&demo(), 80, 24));
}

#[test]
fn the_demo_at_120_by_40() {
    insta::assert_snapshot!(render_on(&demo(), 120, 40));
}

#[test]
fn the_demo_at_200_by_50() {
    insta::assert_snapshot!(render_on(&demo(), 200, 50));
}

#[test]
fn no_number_of_the_mappings_is_cut_at_any_size() {
    let app = demo();
    for (w, h) in [(80, 24), (120, 40), (200, 50)] {
        let screen = render_on(&app, w, h);
        let shown = rows(&screen);
        assert_eq!(shown.len(), 3, "{w}x{h}:\n{screen}");
        for (row, uuid) in shown.iter().zip([ORDERS, PAYMENTS, SHIPMENTS]) {
            let s = app.stats_of(uuid);
            let words: Vec<&str> = row.split(|c: char| c == '│' || c.is_whitespace()).collect();
            for n in [s.succeeded, s.failed_batches, s.dead_lettered] {
                assert!(
                    words.contains(&n.to_string().as_str()),
                    "{w}x{h}: {n} in {row}"
                );
            }
            assert!(
                !row.contains('…') || row.trim_end_matches('│').trim_end().ends_with('…'),
                "only the last result may be cut: {row}"
            );
        }
    }
}
