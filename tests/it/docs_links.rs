//! The documentation checked as a reader would follow it: every relative
//! link in README.md, CHANGELOG.md and docs/**/*.md points at a file that
//! exists, and every `#anchor` at a heading of its target (GitHub's slugs);
//! the README stays a front page (at most 200 lines); and no issue-tracker
//! numbers stand in for words (say "the OpenAPI channel", not its number).
//!
//! Links are read by a small Markdown scanner: fenced code blocks and code
//! spans are skipped; inline links and images `[text](target)` and reference
//! definitions `[label]: target` are read; http(s) and mailto links are left
//! alone.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// README.md, CHANGELOG.md and every Markdown file under docs/, sorted.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut out = vec![root.join("README.md"), root.join("CHANGELOG.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A line opens or closes a fenced code block: its fence (``` or ~~~, three
/// or more) after at most three spaces.
fn fence(line: &str) -> Option<(char, usize)> {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() > 3 {
        return None;
    }
    let c = t.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = t.chars().take_while(|&x| x == c).count();
    (n >= 3).then_some((c, n))
}

/// The lines of `text` outside fenced code blocks, with their numbers (1-based).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut open: Option<(char, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        match (open, fence(line)) {
            (None, Some(f)) => open = Some(f),
            (None, None) => out.push((i + 1, line)),
            // A closing fence: the same character, at least as long, nothing after.
            (Some((c, n)), Some((c2, n2))) if c == c2 && n2 >= n => {
                if line.trim().chars().all(|x| x == c) {
                    open = None;
                }
            }
            (Some(_), _) => {}
        }
    }
    out
}

/// `line` with every code span replaced by spaces (so nothing inside one is
/// read as a link or a heading's punctuation changes no offsets).
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out: Vec<char> = chars.clone();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        // The closing run of exactly the same length.
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let r = chars[j..].iter().take_while(|&&c| c == '`').count();
                if r == run {
                    close = Some(j);
                    break;
                }
                j += r;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for c in out.iter_mut().take(j + run).skip(i) {
                    *c = ' ';
                }
                i = j + run;
            }
            None => i += run,
        }
    }
    out.into_iter().collect()
}

/// The targets of the inline links and images on one line (code spans
/// already blanked).
fn inline_targets(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] != '[' {
            i += 1;
            continue;
        }
        // The matching `]`, brackets nested.
        let mut depth = 0;
        let mut j = i;
        let mut close = None;
        while j < chars.len() {
            match chars[j] {
                '\\' => j += 1,
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        let Some(close) = close else {
            i += 1;
            continue;
        };
        if chars.get(close + 1) != Some(&'(') {
            // Not an inline link; its text may hold one (`[![img](a)](b)`).
            i += 1;
            continue;
        }
        let start = close + 2;
        let (target, end) = if chars.get(start) == Some(&'<') {
            match chars[start + 1..].iter().position(|&c| c == '>') {
                Some(p) => (
                    chars[start + 1..start + 1 + p].iter().collect::<String>(),
                    start + 1 + p,
                ),
                None => {
                    i += 1;
                    continue;
                }
            }
        } else {
            // Up to the first space or the `)` that balances the `(`.
            let mut depth = 0;
            let mut k = start;
            while k < chars.len() {
                match chars[k] {
                    '(' => depth += 1,
                    ')' if depth == 0 => break,
                    ')' => depth -= 1,
                    c if c.is_whitespace() => break,
                    _ => {}
                }
                k += 1;
            }
            (chars[start..k].iter().collect::<String>(), k)
        };
        out.push(target);
        // Go on inside the link text too (an image inside a link).
        i = if end > i { i + 1 } else { end };
    }
    out
}

/// `[label]: target` at the start of a line.
fn reference_definition(line: &str) -> Option<String> {
    let t = line.trim_start();
    if line.len() - t.len() > 3 || !t.starts_with('[') || t.starts_with("[^") {
        return None;
    }
    let close = t.find("]:")?;
    let rest = t[close + 2..].trim_start();
    let target = rest.split_whitespace().next()?;
    Some(
        target
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned(),
    )
}

/// Every link target of a document, with the line it is on.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        let line = without_code_spans(line);
        if let Some(t) = reference_definition(&line) {
            out.push((n, t));
            continue;
        }
        for t in inline_targets(&line) {
            out.push((n, t));
        }
    }
    out
}

/// GitHub's anchor for a heading's text: lower case; letters (any script),
/// digits, `-` and `_` kept; spaces become `-`; everything else dropped.
fn slug(heading: &str) -> String {
    // Link text stands for the link; the target is not part of the anchor.
    let mut text = String::new();
    let chars: Vec<char> = heading.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ']' && chars.get(i + 1) == Some(&'(') {
            let mut k = i + 2;
            while k < chars.len() && chars[k] != ')' {
                k += 1;
            }
            i = k + 1;
            continue;
        }
        text.push(chars[i]);
        i += 1;
    }
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a document's ATX headings, duplicates numbered as GitHub
/// does (`name`, `name-1`, `name-2`).
pub(crate) fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (_, line) in prose_lines(text) {
        let t = line.trim_start_matches(' ');
        if line.len() - t.len() > 3 {
            continue;
        }
        let hashes = t.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) {
            continue;
        }
        let rest = &t[hashes..];
        if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
            continue;
        }
        // A closing run of `#` is not part of the heading.
        let rest = rest.trim();
        let rest = rest.trim_end_matches('#');
        let rest = if rest.ends_with(' ') || rest.is_empty() {
            rest.trim_end()
        } else {
            rest
        };
        let base = slug(rest);
        let n = seen.entry(base.clone()).or_insert(0);
        out.push(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// `%XX` escapes decoded (a link to `a%20b.md` means `a b.md`).
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn is_external(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
}

/// Why each link of `docs` is broken, as `file:line: (target): why`; a link
/// may not leave `root`.
fn broken_links(root: &Path, docs: &[PathBuf]) -> Vec<String> {
    let root = normalized(root);
    let mut texts: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut read = |p: &Path| -> Option<String> {
        if let Some(t) = texts.get(p) {
            return Some(t.clone());
        }
        let t = std::fs::read_to_string(p).ok()?;
        texts.insert(p.to_owned(), t.clone());
        Some(t)
    };
    let mut broken = Vec::new();
    for doc in docs {
        let text = read(doc).unwrap_or_else(|| panic!("cannot read {}", doc.display()));
        let shown = doc.strip_prefix(&root).unwrap_or(doc).display().to_string();
        for (line, target) in links(&text) {
            let mut fail = |why: &str| broken.push(format!("{shown}:{line}: ({target}): {why}"));
            if is_external(&target) {
                continue;
            }
            if target.is_empty() {
                fail("empty link");
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let file = percent_decoded(file);
            let path = if file.is_empty() {
                doc.clone()
            } else if file.starts_with('/') {
                fail("absolute path (use a relative one)");
                continue;
            } else {
                normalized(&doc.parent().unwrap().join(&file))
            };
            if !path.starts_with(&root) {
                fail("points outside the repository");
                continue;
            }
            if !path.exists() {
                fail("no such file");
                continue;
            }
            let Some(anchor) = anchor else { continue };
            let anchor = percent_decoded(anchor);
            if path.is_dir() {
                fail("an anchor into a directory");
                continue;
            }
            if path.extension().is_none_or(|e| e != "md") {
                // Line anchors (#L10) and the like: not ours to check.
                continue;
            }
            let Some(target_text) = read(&path) else {
                fail("unreadable");
                continue;
            };
            if !anchors(&target_text).contains(&anchor) {
                fail("no heading with this anchor");
            }
        }
    }
    broken
}

#[test]
fn every_link_in_the_readme_changelog_and_docs_resolves() {
    let docs = documents();
    assert!(docs.len() >= 8, "found only {docs:?}");
    let broken = broken_links(Path::new(ROOT), &docs);
    assert!(
        broken.is_empty(),
        "{} broken link(s):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn a_broken_file_or_anchor_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("a.md");
    std::fs::write(
        dir.path().join("b.md"),
        "# Two words\n\n## 充退 `notify` (mapi)\n",
    )
    .unwrap();
    std::fs::write(
        &doc,
        "# Title\n\
         [ok](b.md#two-words) [ok too](b.md#充退-notify-mapi) [self](#title)\n\
         [web](https://example.com/x#y) `[code](missing.md)`\n\
         ```\n[fenced](missing.md)\n```\n\
         [gone](missing.md) [bad anchor](b.md#three-words) [bad self](#nope)\n\
         [ref]: no/such/file.md\n\
         [outside](../elsewhere.md)\n",
    )
    .unwrap();
    let broken = broken_links(dir.path(), &[doc]);
    let targets: Vec<&str> = broken
        .iter()
        .map(|b| b.split(" (").nth(1).unwrap().split("):").next().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "missing.md",
            "b.md#three-words",
            "#nope",
            "no/such/file.md",
            "../elsewhere.md"
        ],
        "{broken:#?}"
    );
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug("Submission: exactly once at Alipay"),
        "submission-exactly-once-at-alipay"
    );
    assert_eq!(
        slug("Two channels: mapi and OpenAPI"),
        "two-channels-mapi-and-openapi"
    );
    assert_eq!(slug("`BATCH_NO_PREFIX`"), "batch_no_prefix");
    assert_eq!(
        slug("A refund's walk, file by file"),
        "a-refunds-walk-file-by-file"
    );
    assert_eq!(slug("2026-12-06: sqlx 0.9.1"), "2026-12-06-sqlx-091");
    assert_eq!(slug("充退 before the refund"), "充退-before-the-refund");
    assert_eq!(
        anchors("# A\n## A\n```\n# A\n```\n## A ##\n"),
        ["a", "a-1", "a-2"]
    );
}

#[test]
fn the_readme_is_a_front_page_of_at_most_200_lines() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines; move detail to docs/"
    );
}

/// Lines naming tracker numbers: the word "issue" or "issues", then a
/// number, with or without a space and a `#` between.
fn issue_numbers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let lower = line.to_lowercase();
        let mut rest = lower.as_str();
        while let Some(at) = rest.find("issue") {
            let after = &rest[at + "issue".len()..];
            let after = after.strip_prefix('s').unwrap_or(after);
            let after = after.trim_start_matches(' ');
            let after = after.strip_prefix('#').unwrap_or(after);
            if after.starts_with(|c: char| c.is_ascii_digit()) {
                found.push(format!("{}: {}", n + 1, line.trim()));
                break;
            }
            rest = &rest[at + 1..];
        }
    }
    found
}

#[test]
fn no_issue_numbers_in_the_readme_changelog_and_docs() {
    // Built from parts, so that this file does not hold what it forbids.
    let word = "issue";
    let sample = format!("done ({word} 2)\n{word} #17\n{word}s 14 and 15\nan {word} of 2 kinds\n");
    assert_eq!(issue_numbers(&sample).len(), 3);
    let mut found = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for hit in issue_numbers(&text) {
            found.push(format!("{}:{hit}", doc.display()));
        }
    }
    assert!(
        found.is_empty(),
        "say what the work was, not its issue number:\n{}",
        found.join("\n")
    );
}
