//! Party names (SPEC L-7): the rule a name follows and the deny-list it is checked against.
//!
//! The deny-list is configuration, not state: the driver reads the file (`--name-deny-list`, at
//! startup and on SIGHUP) and hands the text to [`NameDenyList::parse`]; the core holds the
//! parsed list and never touches a file. A name is refused when, after folding, it *contains*
//! any folded entry (so an entry catches the word inside a longer name).
//!
//! **Folding** ([`fold`]) is Unicode's compatibility caseless form (Unicode §3.13, D146) ending in
//! NFKC, with default-ignorable code points removed first and last, as Unicode's
//! `NFKC_Casefold` removes them: full-width and other compatibility forms become their plain
//! letters (NFKC), letter case goes (full case folding, so `ß` and `SS` meet as `ss`), composed
//! and decomposed accents meet, and invisible characters (zero-width spaces and joiners, soft
//! hyphens, variation selectors) cannot split a word to slip it past the list.

use aho_corasick::AhoCorasick;
use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;

/// Unicode's `Default_Ignorable_Code_Point` ranges (DerivedCoreProperties.txt, stable since
/// Unicode 9): characters that render as nothing.
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E0FFF}'),
];

fn is_default_ignorable(c: char) -> bool {
    // Every range starts at or above U+00AD: plain ASCII leaves at the first comparison.
    c >= '\u{00AD}' && DEFAULT_IGNORABLE.iter().any(|(first, last)| (*first..=*last).contains(&c))
}

/// `text` as names and deny-list entries are compared: default-ignorables removed, then
/// NFD → full case fold → NFKD → full case fold → NFKC (D146's compatibility caseless match,
/// composed at the end).
pub fn fold(text: &str) -> String {
    text.chars()
        .filter(|c| !is_default_ignorable(*c))
        .nfd()
        .default_case_fold()
        .nfkd()
        .default_case_fold()
        .nfkc()
        .filter(|c| !is_default_ignorable(*c))
        .collect()
}

/// The deny-list, folded and compiled into one automaton.
#[derive(Clone, Debug, Default)]
pub struct NameDenyList {
    /// `None` for an empty list: every name passes without a look.
    automaton: Option<AhoCorasick>,
    entries: usize,
}

impl NameDenyList {
    /// No entries: every name passes.
    pub fn empty() -> NameDenyList {
        NameDenyList::default()
    }

    /// The list from a file's text: one entry a line, surrounding whitespace trimmed; blank
    /// lines (and lines that fold to nothing) are skipped, since an empty entry would refuse
    /// every name. More than `entries_max` entries: an error naming the limit.
    pub fn parse(text: &str, entries_max: usize) -> Result<NameDenyList, String> {
        let mut entries: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for line in text.lines() {
            let folded = fold(line.trim());
            if folded.is_empty() {
                continue;
            }
            entries.insert(folded);
            if entries.len() > entries_max {
                return Err(format!("more than name_deny_list_entries_max {entries_max} distinct entries"));
            }
        }
        if entries.is_empty() {
            return Ok(NameDenyList::empty());
        }
        let automaton = AhoCorasick::new(&entries).map_err(|e| format!("cannot compile the list: {e}"))?;
        Ok(NameDenyList { automaton: Some(automaton), entries: entries.len() })
    }

    /// Distinct entries after folding.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Whether `name` contains an entry, both folded.
    pub fn denies(&self, name: &str) -> bool {
        self.automaton.as_ref().is_some_and(|automaton| automaton.is_match(&fold(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_meets_width_case_composition_and_invisible_characters() {
        let plain = fold("cafe crème");
        for spelling in [
            "CAFE CRÈME",
            "ｃａｆｅ ｃｒèｍｅ",       // full-width letters
            "cafe cre\u{300}me",        // decomposed è
            "ca\u{200B}fe cr\u{AD}ème", // a zero-width space and a soft hyphen inside
        ] {
            assert_eq!(fold(spelling), plain, "{spelling:?}");
        }
        assert_eq!(fold("Straße"), fold("STRASSE"), "full case folding");
        assert_eq!(fold("ﬁ"), "fi", "compatibility ligature");
        assert_ne!(fold("café"), fold("cafe"), "accents are letters, not noise");
    }

    #[test]
    fn a_name_is_denied_when_it_contains_an_entry() {
        let list = NameDenyList::parse("  Badword \n\n\u{200B}\nÉVIL\n", 10).unwrap();
        assert_eq!(list.len(), 2, "blank and invisible-only lines are skipped");
        for name in ["badword", "my BADWORD party", "ＢＡＤＷＯＲＤ", "so e\u{301}vil", "Ｅ\u{301}ＶＩＬ"] {
            assert!(list.denies(name), "{name:?}");
        }
        for name in ["bad word", "", "evil", "good"] {
            assert!(!list.denies(name), "{name:?}");
        }
        assert!(!NameDenyList::empty().denies("anything"));
        assert!(NameDenyList::parse("a\nb\nc", 2).unwrap_err().contains("name_deny_list_entries_max"));
        assert_eq!(NameDenyList::parse("a\nA\nａ", 1).unwrap().len(), 1, "entries count after folding and dedup");
    }
}
