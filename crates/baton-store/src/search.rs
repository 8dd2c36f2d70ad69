//! What a person typed into a search box, as words: the one search contract both
//! backends keep (plain words, all of them must match, the last one also as a
//! prefix; no input is a search syntax, so none is a syntax error).

/// At most this many words are searched for.
const MAX_WORDS: usize = 32;

/// The words of `text` (runs of letters and digits), lowercased. Operators and
/// punctuation (`AND`, `*`, `"`, `(`, `:`, `NEAR`, `&`, `!`) are plain words or
/// dropped.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(str::to_lowercase)
        .collect()
}

/// Every word of `text`, lowercased, for an index (at most `MAX_INDEXED` bytes of
/// them: a search index of a huge document keeps its beginning).
pub(crate) fn words_all(text: &str) -> Vec<String> {
    let mut size = 0;
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .take_while(|w| {
            size += w.len() + 1;
            size <= MAX_INDEXED
        })
        .collect()
}

/// How much of a document's words a search index keeps.
const MAX_INDEXED: usize = 512 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_only_words() {
        assert_eq!(words("API design"), ["api", "design"]);
        assert_eq!(
            words("\"foo\" AND (bar* NEAR baz) OR -x:y & !z"),
            ["foo", "and", "bar", "near", "baz", "or", "x", "y", "z"]
        );
        assert!(words("*** \" ( ) : & | !").is_empty());
        assert!(words("").is_empty());
    }
}
