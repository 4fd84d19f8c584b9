//! Lists of source ids written as ranges, e.g. `1:5,20,31:34`.
//!
//! The syntax, which [`parse_ids`] accepts and [`format_ids`] produces:
//!
//! * a list of items separated by commas;
//! * each item is an id `N` or an inclusive range `A:B` (`A ≤ B`);
//! * ids are whole decimal numbers from 0 to `i64::MAX`, digits only (no
//!   sign, no decimal point; leading zeros are allowed and ignored);
//! * spaces (any Unicode white space) may surround numbers, `:` and `,`.
//!
//! The result is a **set**: items may come in any order and may overlap or
//! repeat (`1:3,2:5,4` is the same as `1:5`); the ids come back sorted
//! ascending without duplicates. At most [`MAX_IDS`] distinct ids are
//! accepted per request. The count is taken over merged intervals before a
//! single id is produced, so `0:9223372036854775806` is refused at once
//! instead of allocating.
//!
//! Every [`RangeError`] message states the rule that was broken, so a web
//! handler can return it verbatim as the body of an HTTP 400 response. The
//! messages quote the offending item as the user wrote it; escape them
//! before embedding them in HTML.

use std::fmt::Write;

/// Largest number of distinct ids one list may name.
pub const MAX_IDS: usize = 10_000;

/// Why an id list was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The text was empty or only white space.
    #[error("no ids given: expected a list such as 1:5,20,31:34")]
    Empty,
    /// An item between two commas (or before/after the first/last comma)
    /// was empty.
    #[error(
        "item {position} of the id list is empty: remove the extra comma (expected a list such as 1:5,20,31:34)"
    )]
    EmptyItem {
        /// Position of the empty item, counting from 1.
        position: usize,
    },
    /// An item was neither a whole number nor a range of two whole numbers.
    #[error("`{item}` is not an id or a range: expected N or A:B with whole numbers ≥ 0")]
    NotANumber {
        /// The item as written (trimmed).
        item: String,
    },
    /// An item contained a number larger than any id can be.
    #[error("`{item}` is out of range: ids are at most 9223372036854775807")]
    Overflow {
        /// The item as written (trimmed).
        item: String,
    },
    /// An item had more than one `:`, as in `1:2:3`.
    #[error("`{item}` has more than one `:`: a range is written A:B, e.g. 31:34")]
    TooManyColons {
        /// The item as written (trimmed).
        item: String,
    },
    /// A range whose end is below its start.
    #[error("range {start}:{end} runs backwards: write the smaller id first ({end}:{start})")]
    Reversed {
        /// The first number of the range.
        start: i64,
        /// The second (smaller) number of the range.
        end: i64,
    },
    /// The list names more distinct ids than [`MAX_IDS`].
    #[error("the id list asks for {count} ids; at most {max} per request")]
    TooMany {
        /// Exact number of distinct ids named. Distinct ids lie in
        /// `0..=i64::MAX`, so this never exceeds 2^63 and is never rounded.
        count: u64,
        /// The limit, [`MAX_IDS`].
        max: usize,
    },
}

/// Parses an id list such as `1:5,20,31:34` into sorted, distinct ids.
///
/// Overlapping and repeated items are merged: `1:3,2:5` gives `1..=5` and
/// `7,7` gives `[7]`. See the [module documentation](self) for the syntax.
///
/// # Errors
///
/// The first syntax error in item order ([`RangeError::Empty`],
/// [`RangeError::EmptyItem`], [`RangeError::NotANumber`],
/// [`RangeError::Overflow`], [`RangeError::TooManyColons`],
/// [`RangeError::Reversed`]); if the syntax is correct,
/// [`RangeError::TooMany`] when more than [`MAX_IDS`] distinct ids are named.
pub fn parse_ids(text: &str) -> Result<Vec<i64>, RangeError> {
    if text.trim().is_empty() {
        return Err(RangeError::Empty);
    }
    let spans = text
        .split(',')
        .enumerate()
        .map(|(i, item)| parse_item(item, i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = merge(spans);
    // Each merged span holds at most 2^63 ids and the spans are disjoint
    // within 0..=i64::MAX, so the exact sum fits u64; saturating only
    // guards against a mistake here turning into a panic.
    let count = merged
        .iter()
        .map(|&(start, end)| end.abs_diff(start) + 1)
        .fold(0u64, u64::saturating_add);
    if count > MAX_IDS as u64 {
        return Err(RangeError::TooMany {
            count,
            max: MAX_IDS,
        });
    }
    let mut ids = Vec::with_capacity(MAX_IDS.min(count as usize));
    for (start, end) in merged {
        ids.extend(start..=end);
    }
    Ok(ids)
}

/// Writes ids in the syntax of [`parse_ids`], joining runs of consecutive
/// ids: `[1, 2, 3, 4, 5, 20, 31, 32, 33, 34]` gives `"1:5,20,31:34"`.
///
/// Only runs of three or more ids become ranges; a pair is written `a,b`
/// (`[7, 8]` gives `"7,8"`), which is as short as `7:8` and reads more
/// naturally. An empty slice gives `""` (which [`parse_ids`] rejects).
///
/// The input is expected sorted ascending without duplicates, as
/// [`parse_ids`] returns it; other orders are still written faithfully,
/// item by item, so parsing the text yields their sorted distinct set.
/// Negative ids are written with their sign and are not accepted back.
pub fn format_ids(ids: &[i64]) -> String {
    let mut out = String::new();
    let mut rest = ids;
    while let Some((&start, _)) = rest.split_first() {
        let run = 1 + rest
            .windows(2)
            .take_while(|w| w[0].checked_add(1) == Some(w[1]))
            .count();
        let end = rest[run - 1];
        if !out.is_empty() {
            out.push(',');
        }
        // Writing into a String cannot fail.
        let _ = match run {
            1 => write!(out, "{start}"),
            2 => write!(out, "{start},{end}"),
            _ => write!(out, "{start}:{end}"),
        };
        rest = &rest[run..];
    }
    out
}

/// Parses one comma-separated item into an inclusive span.
fn parse_item(item: &str, position: usize) -> Result<(i64, i64), RangeError> {
    let item = item.trim();
    if item.is_empty() {
        return Err(RangeError::EmptyItem { position });
    }
    let mut parts = item.split(':');
    let first = parts.next().unwrap_or_default();
    let second = parts.next();
    if parts.next().is_some() {
        return Err(RangeError::TooManyColons {
            item: item.to_string(),
        });
    }
    let start = parse_number(first, item)?;
    let Some(second) = second else {
        return Ok((start, start));
    };
    let end = parse_number(second, item)?;
    if end < start {
        return Err(RangeError::Reversed { start, end });
    }
    Ok((start, end))
}

/// Parses one id; `item` is the whole item, quoted in error messages.
fn parse_number(part: &str, item: &str) -> Result<i64, RangeError> {
    let digits = part.trim();
    // `i64::from_str` would also take a sign, which ids never have.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RangeError::NotANumber {
            item: item.to_string(),
        });
    }
    digits.parse().map_err(|_| RangeError::Overflow {
        item: item.to_string(),
    })
}

/// Sorts spans and joins those that overlap or touch, leaving disjoint,
/// ascending spans with gaps of at least one id between them.
fn merge(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            // saturating_add: a span ending at i64::MAX absorbs everything after.
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn not_a_number(item: &str) -> Result<Vec<i64>, RangeError> {
        Err(RangeError::NotANumber {
            item: item.to_string(),
        })
    }

    #[test]
    fn example_from_the_docs() {
        assert_eq!(
            parse_ids("1:5,20,31:34").unwrap(),
            [1, 2, 3, 4, 5, 20, 31, 32, 33, 34]
        );
        assert_eq!(
            format_ids(&[1, 2, 3, 4, 5, 20, 31, 32, 33, 34]),
            "1:5,20,31:34"
        );
    }

    #[test]
    fn whitespace_zero_order_and_overlap() {
        assert_eq!(parse_ids(" 1 : 3 , 7 ").unwrap(), [1, 2, 3, 7]);
        assert_eq!(parse_ids("\t0\n").unwrap(), [0]);
        assert_eq!(parse_ids("0:2").unwrap(), [0, 1, 2]);
        assert_eq!(parse_ids("1:3,2:5").unwrap(), [1, 2, 3, 4, 5]);
        assert_eq!(parse_ids("9,3,9,4:4,3").unwrap(), [3, 4, 9]);
        assert_eq!(parse_ids("007").unwrap(), [7]);
        assert_eq!(parse_ids("5:5").unwrap(), [5]);
    }

    #[test]
    fn format_runs_and_pairs() {
        assert_eq!(format_ids(&[]), "");
        assert_eq!(format_ids(&[4]), "4");
        assert_eq!(format_ids(&[7, 8]), "7,8");
        assert_eq!(format_ids(&[7, 8, 9]), "7:9");
        assert_eq!(format_ids(&[0, 2, 3, 5, 6, 7]), "0,2,3,5:7");
        assert_eq!(
            format_ids(&[i64::MAX - 2, i64::MAX - 1, i64::MAX]),
            "9223372036854775805:9223372036854775807"
        );
        // Unsorted input is written as it comes.
        assert_eq!(format_ids(&[3, 2, 1]), "3,2,1");
    }

    #[test]
    fn empty_input() {
        for text in ["", "   ", "\n\t"] {
            assert_eq!(parse_ids(text), Err(RangeError::Empty));
        }
        assert_eq!(
            RangeError::Empty.to_string(),
            "no ids given: expected a list such as 1:5,20,31:34"
        );
    }

    #[test]
    fn empty_items_are_located() {
        assert_eq!(
            parse_ids("1,,2"),
            Err(RangeError::EmptyItem { position: 2 })
        );
        assert_eq!(
            parse_ids("1,2,"),
            Err(RangeError::EmptyItem { position: 3 })
        );
        assert_eq!(parse_ids(",1"), Err(RangeError::EmptyItem { position: 1 }));
        assert_eq!(
            parse_ids("1, ,2"),
            Err(RangeError::EmptyItem { position: 2 })
        );
        assert_eq!(
            RangeError::EmptyItem { position: 2 }.to_string(),
            "item 2 of the id list is empty: remove the extra comma \
             (expected a list such as 1:5,20,31:34)"
        );
    }

    #[test]
    fn non_numbers() {
        for item in [
            "a:b", "1:x", "1.5", "-3", "+3", "1:", ":5", ":", "1 2", "-3:5", "0x10",
        ] {
            assert_eq!(parse_ids(item), not_a_number(item), "{item:?}");
        }
        // The item is quoted trimmed, inside its list.
        assert_eq!(parse_ids("1, a:b ,3"), not_a_number("a:b"));
        assert_eq!(
            parse_ids("a:b").unwrap_err().to_string(),
            "`a:b` is not an id or a range: expected N or A:B with whole numbers ≥ 0"
        );
    }

    #[test]
    fn numbers_beyond_i64() {
        assert_eq!(
            parse_ids("9223372036854775807").unwrap(),
            [9_223_372_036_854_775_807]
        );
        let err = parse_ids("1:9223372036854775808").unwrap_err();
        assert_eq!(
            err,
            RangeError::Overflow {
                item: "1:9223372036854775808".to_string()
            }
        );
        assert_eq!(
            err.to_string(),
            "`1:9223372036854775808` is out of range: ids are at most 9223372036854775807"
        );
        assert!(matches!(
            parse_ids(&"9".repeat(400)),
            Err(RangeError::Overflow { .. })
        ));
    }

    #[test]
    fn too_many_colons() {
        let err = parse_ids("1:2:3").unwrap_err();
        assert_eq!(
            err,
            RangeError::TooManyColons {
                item: "1:2:3".to_string()
            }
        );
        assert_eq!(
            err.to_string(),
            "`1:2:3` has more than one `:`: a range is written A:B, e.g. 31:34"
        );
        assert!(matches!(
            parse_ids("4,1::3"),
            Err(RangeError::TooManyColons { .. })
        ));
    }

    #[test]
    fn reversed_range() {
        let err = parse_ids("5:1").unwrap_err();
        assert_eq!(err, RangeError::Reversed { start: 5, end: 1 });
        assert_eq!(
            err.to_string(),
            "range 5:1 runs backwards: write the smaller id first (1:5)"
        );
    }

    #[test]
    fn first_error_in_item_order_wins() {
        assert_eq!(
            parse_ids("0:99999999,x,5:1"),
            not_a_number("x"),
            "syntax errors come before the size check"
        );
        assert_eq!(
            parse_ids("5:1,x"),
            Err(RangeError::Reversed { start: 5, end: 1 })
        );
    }

    #[test]
    fn too_many_ids_is_exact_and_cheap() {
        assert_eq!(parse_ids("1:10000").unwrap().len(), MAX_IDS);
        assert_eq!(parse_ids("0:9999").unwrap().len(), MAX_IDS);
        assert_eq!(
            parse_ids("0:10000"),
            Err(RangeError::TooMany {
                count: 10_001,
                max: MAX_IDS
            })
        );
        // Overlaps are counted once.
        assert_eq!(parse_ids("1:10000,5000:6000,10000").unwrap().len(), MAX_IDS);
        assert_eq!(
            parse_ids("1:10000,5000:10001"),
            Err(RangeError::TooMany {
                count: 10_001,
                max: MAX_IDS
            })
        );
        let err = parse_ids("0:9223372036854775806").unwrap_err();
        assert_eq!(
            err,
            RangeError::TooMany {
                count: 9_223_372_036_854_775_807,
                max: MAX_IDS
            }
        );
        assert_eq!(
            err.to_string(),
            "the id list asks for 9223372036854775807 ids; at most 10000 per request"
        );
        // The whole id space, twice, plus its edges: 2^63 ids.
        assert_eq!(
            parse_ids("0:9223372036854775807,0:9223372036854775807,9223372036854775807,0"),
            Err(RangeError::TooMany {
                count: 1 << 63,
                max: MAX_IDS
            })
        );
        // Spans that touch at i64::MAX must not overflow while merging.
        assert_eq!(
            parse_ids("9223372036854775806:9223372036854775807,9223372036854775807").unwrap(),
            [i64::MAX - 1, i64::MAX]
        );
    }

    /// One generated list item, before it is written out.
    #[derive(Debug, Clone)]
    enum Item {
        One(i64),
        Span(i64, i64),
    }

    impl Item {
        fn span(&self) -> (i64, i64) {
            match *self {
                Item::One(n) => (n, n),
                Item::Span(a, b) => (a, b),
            }
        }
    }

    fn item() -> impl Strategy<Value = Item> {
        prop_oneof![
            8 => (0i64..50_000).prop_map(Item::One),
            8 => (0i64..50_000, 0i64..4_000).prop_map(|(a, len)| Item::Span(a, a + len)),
            // Spans anywhere in the id space: almost always far too many ids.
            1 => (0i64..=i64::MAX, 0i64..=i64::MAX)
                .prop_map(|(a, b)| Item::Span(a.min(b), a.max(b))),
            // Small spans that end at or just below i64::MAX.
            1 => (0i64..100, 0i64..100)
                .prop_map(|(off, len)| Item::Span(i64::MAX - off, i64::MAX - off + len.min(off))),
        ]
    }

    fn spaces() -> impl Strategy<Value = String> {
        "[ \t]{0,2}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Any text is a list of at most `MAX_IDS` sorted unique ids or a
        /// `RangeError` (a 400 naming `ids`), never a panic.
        #[test]
        fn any_text_is_ids_or_an_error(text in "[-0-9:, \t]{0,40}|\\PC{0,40}") {
            if let Ok(ids) = parse_ids(&text) {
                prop_assert!(!ids.is_empty() && ids.len() <= MAX_IDS);
                prop_assert!(ids.windows(2).all(|w| w[0] < w[1]));
            }
        }

        #[test]
        fn format_then_parse_round_trips(
            ids in prop_oneof![
                prop::collection::btree_set(0i64..1_000_000, 1..=200),
                // Dense sets, so that runs and pairs are common.
                prop::collection::btree_set(0i64..400, 1..=200),
            ]
        ) {
            let ids: Vec<i64> = ids.into_iter().collect();
            let text = format_ids(&ids);
            prop_assert_eq!(parse_ids(&text), Ok(ids));
        }

        #[test]
        fn parse_matches_naive_expansion(
            items in prop::collection::vec(
                (item(), spaces(), spaces(), spaces(), spaces()),
                1..12,
            )
        ) {
            let text = items
                .iter()
                .map(|(item, s1, s2, s3, s4)| match item {
                    Item::One(n) => format!("{s1}{n}{s4}"),
                    Item::Span(a, b) => format!("{s1}{a}{s2}:{s3}{b}{s4}"),
                })
                .collect::<Vec<_>>()
                .join(",");
            let result = parse_ids(&text);
            let longest = items
                .iter()
                .map(|(item, ..)| {
                    let (a, b) = item.span();
                    u128::try_from(i128::from(b) - i128::from(a) + 1).unwrap()
                })
                .max()
                .unwrap();
            if longest > MAX_IDS as u128 {
                // A single span is already too long, so the reference
                // cannot materialise it, but it bounds the count from below.
                match result {
                    Err(RangeError::TooMany { count, max }) => {
                        prop_assert_eq!(max, MAX_IDS);
                        prop_assert!(u128::from(count) >= longest);
                    }
                    other => prop_assert!(false, "{text:?} gave {other:?}"),
                }
            } else {
                let naive: BTreeSet<i64> = items
                    .iter()
                    .flat_map(|(item, ..)| {
                        let (a, b) = item.span();
                        a..=b
                    })
                    .collect();
                if naive.len() > MAX_IDS {
                    prop_assert_eq!(
                        result,
                        Err(RangeError::TooMany { count: naive.len() as u64, max: MAX_IDS })
                    );
                } else {
                    prop_assert_eq!(result, Ok(naive.into_iter().collect::<Vec<_>>()));
                }
            }
        }

        #[test]
        fn any_text_never_panics(text in ".*") {
            check_invariants(&text)?;
        }

        #[test]
        fn near_valid_text_never_panics(text in "[0-9:, \\-]{0,40}") {
            check_invariants(&text)?;
        }

        #[test]
        fn reversed_ranges_always_fail(
            a in 0i64..=i64::MAX,
            b in 0i64..=i64::MAX,
            before in prop::option::of(0i64..1000),
            after in prop::option::of(0i64..1000),
        ) {
            prop_assume!(a != b);
            let (start, end) = (a.max(b), a.min(b));
            let mut text = format!("{start}:{end}");
            if let Some(n) = before {
                text = format!("{n},{text}");
            }
            if let Some(n) = after {
                text = format!("{text}, {n}");
            }
            prop_assert_eq!(parse_ids(&text), Err(RangeError::Reversed { start, end }));
        }
    }

    /// Whatever the input, a success is a sorted set within the limit and a
    /// failure has a message.
    fn check_invariants(text: &str) -> Result<(), TestCaseError> {
        match parse_ids(text) {
            Ok(ids) => {
                prop_assert!(!ids.is_empty() && ids.len() <= MAX_IDS);
                prop_assert!(ids.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(ids[0] >= 0);
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
        Ok(())
    }
}
