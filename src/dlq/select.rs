//! Which dead letters a command acts on: ages (`30m`, `2h`, `1d`), filters by
//! code and age, and selection by id (a `message_id` or a 1-based position),
//! by code, or all of them.
//!
//! Pure. A dead letter whose age is unknown is never "older than" anything:
//! an age filter (and so `purge --older-than`) leaves it alone.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::letter::Letter;

/// An age given on the command line: a whole number and a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Age(pub Duration);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if secs.is_multiple_of(size) {
                return write!(f, "{}{unit}", secs / size);
            }
        }
        write!(f, "{secs}s")
    }
}

/// Parses `45s`, `30m`, `2h`, `1d`, `2w`: a positive whole number and one unit.
pub fn parse_age(text: &str) -> Result<Age, String> {
    let bad = || format!("{text:?} is not an age like 45s, 30m, 2h, 1d or 2w");
    let text = text.trim();
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let size = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    n.checked_mul(size)
        .map(|s| Age(Duration::from_secs(s)))
        .ok_or_else(bad)
}

/// Whether a dead letter was dead-lettered at least `age` before `now`.
pub fn is_older_than(letter: &Letter, age: Age, now: DateTime<Utc>) -> bool {
    let Ok(age) = chrono::Duration::from_std(age.0) else {
        return false;
    };
    match (letter.dead_lettered_at, now.checked_sub_signed(age)) {
        (Some(at), Some(cutoff)) => at <= cutoff,
        _ => false,
    }
}

/// Whether a dead letter's code (or `x-death` reason) is `code`.
pub fn has_code(letter: &Letter, code: &str) -> bool {
    letter.code.as_deref() == Some(code)
}

/// The filters of `dlq list`; every one given must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub code: Option<String>,
    pub older_than: Option<Age>,
    /// The first this many of those that pass.
    pub limit: Option<usize>,
}

impl Filter {
    pub fn keeps(&self, letter: &Letter, now: DateTime<Utc>) -> bool {
        self.code.as_deref().is_none_or(|c| has_code(letter, c))
            && self
                .older_than
                .is_none_or(|a| is_older_than(letter, a, now))
    }

    /// The letters that pass, in queue order, at most `limit` of them.
    pub fn apply<'a>(&self, letters: &'a [Letter], now: DateTime<Utc>) -> Vec<&'a Letter> {
        letters
            .iter()
            .filter(|l| self.keeps(l, now))
            .take(self.limit.unwrap_or(usize::MAX))
            .collect()
    }
}

/// Which dead letters `replay` and `purge` act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Each is a `message_id`, or else a 1-based position.
    Ids(Vec<String>),
    Code(String),
    OlderThan(Age),
    All,
}

/// The outcome of a selection: the chosen letters' indexes in queue order,
/// and the ids that matched nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chosen {
    pub indexes: Vec<usize>,
    pub unknown_ids: Vec<String>,
}

impl Selection {
    pub fn choose(&self, letters: &[Letter], now: DateTime<Utc>) -> Chosen {
        let keep = |f: &dyn Fn(&Letter) -> bool| Chosen {
            indexes: (0..letters.len()).filter(|&i| f(&letters[i])).collect(),
            unknown_ids: Vec::new(),
        };
        match self {
            Selection::All => keep(&|_| true),
            Selection::Code(code) => keep(&|l| has_code(l, code)),
            Selection::OlderThan(age) => keep(&|l| is_older_than(l, *age, now)),
            Selection::Ids(ids) => {
                let mut chosen = Chosen::default();
                for id in ids {
                    let found = find(letters, id);
                    if found.is_empty() {
                        chosen.unknown_ids.push(id.clone());
                    }
                    chosen.indexes.extend(found);
                }
                chosen.indexes.sort_unstable();
                chosen.indexes.dedup();
                chosen
            }
        }
    }
}

/// The letters an id names: every one with that `message_id`; when there is
/// none, the one at that 1-based position.
pub fn find(letters: &[Letter], id: &str) -> Vec<usize> {
    let by_id: Vec<usize> = (0..letters.len())
        .filter(|&i| letters[i].message_id.as_deref() == Some(id))
        .collect();
    if !by_id.is_empty() {
        return by_id;
    }
    match id.parse::<usize>() {
        Ok(p) => (0..letters.len())
            .filter(|&i| letters[i].position == p)
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlq::letter::tests::worker_letter;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn letters() -> Vec<Letter> {
        let mut v = vec![
            worker_letter("invalid_amount", "2026-11-25T08:00:00.000Z", "{}"),
            worker_letter("invalid_json", "2026-11-25T10:00:00.000Z", "x"),
            worker_letter("invalid_amount", "2026-11-25T11:30:00.000Z", "{}"),
            crate::dlq::letter::Letter::new(0, lapin::BasicProperties::default(), vec![]),
        ];
        for (i, l) in v.iter_mut().enumerate() {
            l.position = i + 1;
        }
        v[2].message_id = Some("third".into());
        v
    }

    #[test]
    fn ages_parse_with_their_unit() {
        assert_eq!(parse_age("45s"), Ok(Age(Duration::from_secs(45))));
        assert_eq!(parse_age("30m"), Ok(Age(Duration::from_secs(1800))));
        assert_eq!(parse_age("2h"), Ok(Age(Duration::from_secs(7200))));
        assert_eq!(parse_age("1d"), Ok(Age(Duration::from_secs(86_400))));
        assert_eq!(parse_age("2w"), Ok(Age(Duration::from_secs(1_209_600))));
        for bad in [
            "",
            "5",
            "m",
            "0h",
            "1.5h",
            "-1h",
            "1y",
            "1 h",
            "h1",
            "99999999999999999999d",
        ] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ages_print_in_their_largest_whole_unit() {
        assert_eq!(Age(Duration::from_secs(86_400)).to_string(), "1d");
        assert_eq!(Age(Duration::from_secs(7_200)).to_string(), "2h");
        assert_eq!(Age(Duration::from_secs(90)).to_string(), "90s");
    }

    #[test]
    fn older_than_compares_with_now_and_never_matches_an_unknown_age() {
        let now = at("2026-11-25T12:00:00Z");
        let l = letters();
        let two_h = parse_age("2h").unwrap();
        assert!(is_older_than(&l[0], two_h, now));
        assert!(is_older_than(&l[1], two_h, now), "exactly 2h counts");
        assert!(!is_older_than(&l[2], two_h, now));
        assert!(!is_older_than(&l[3], two_h, now), "unknown age");
    }

    #[test]
    fn a_filter_keeps_what_passes_every_test_up_to_the_limit() {
        let now = at("2026-11-25T12:00:00Z");
        let l = letters();
        let positions = |f: &Filter| {
            f.apply(&l, now)
                .iter()
                .map(|l| l.position)
                .collect::<Vec<_>>()
        };
        assert_eq!(positions(&Filter::default()), vec![1, 2, 3, 4]);
        let code = Filter {
            code: Some("invalid_amount".into()),
            ..Default::default()
        };
        assert_eq!(positions(&code), vec![1, 3]);
        let old = Filter {
            code: Some("invalid_amount".into()),
            older_than: Some(parse_age("1h").unwrap()),
            ..Default::default()
        };
        assert_eq!(positions(&old), vec![1]);
        let limited = Filter {
            limit: Some(2),
            ..Default::default()
        };
        assert_eq!(positions(&limited), vec![1, 2]);
    }

    #[test]
    fn selections_choose_by_code_age_all_or_id() {
        let now = at("2026-11-25T12:00:00Z");
        let l = letters();
        let pick = |s: Selection| s.choose(&l, now);
        assert_eq!(pick(Selection::All).indexes, vec![0, 1, 2, 3]);
        assert_eq!(
            pick(Selection::Code("invalid_json".into())).indexes,
            vec![1]
        );
        assert_eq!(
            pick(Selection::Code("nope".into())).indexes,
            Vec::<usize>::new()
        );
        assert_eq!(
            pick(Selection::OlderThan(parse_age("3h").unwrap())).indexes,
            vec![0]
        );
        let ids = pick(Selection::Ids(vec![
            "third".into(),
            "2".into(),
            "m-invalid_json".into(),
            "9".into(),
            "ghost".into(),
        ]));
        assert_eq!(ids.indexes, vec![1, 2], "duplicates merged, queue order");
        assert_eq!(ids.unknown_ids, vec!["9".to_owned(), "ghost".to_owned()]);
    }

    #[test]
    fn a_message_id_wins_over_a_position() {
        let mut l = letters();
        l[3].message_id = Some("1".into());
        assert_eq!(find(&l, "1"), vec![3]);
        assert_eq!(find(&l, "2"), vec![1]);
        assert_eq!(find(&l, "m-invalid_amount"), vec![0]);
    }
}
