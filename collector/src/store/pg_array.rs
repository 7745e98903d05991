//! PostgreSQL array literals (`{"a","b",NULL}`). A bound parameter's arrays
//! are rectangular, so arrays of different lengths (an observation's
//! counters, one array per observation) go as one literal each, in a
//! `text[]`, and the statement casts each to its array type.

/// `{"first","second",NULL}`: every element quoted, with `"` and `\`
/// escaped, so no text can end an element or the array early.
pub(crate) fn text<'a>(items: impl IntoIterator<Item = Option<&'a str>>) -> String {
    literal(items, |out, s| {
        out.push('"');
        for ch in s.chars() {
            if ch == '"' || ch == '\\' {
                out.push('\\');
            }
            out.push(ch);
        }
        out.push('"');
    })
}

/// `{1,-2,NULL}`.
pub(crate) fn int8(items: impl IntoIterator<Item = Option<i64>>) -> String {
    literal(items, |out, v| out.push_str(&v.to_string()))
}

fn literal<T>(
    items: impl IntoIterator<Item = Option<T>>,
    mut element: impl FnMut(&mut String, T),
) -> String {
    let mut out = String::from("{");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            None => out.push_str("NULL"),
            Some(v) => element(&mut out, v),
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_quotes_every_element_and_escapes_quotes_and_backslashes() {
        assert_eq!(text([]), "{}");
        assert_eq!(
            text([Some("canon.101"), None, Some("NULL"), Some("")]),
            r#"{"canon.101",NULL,"NULL",""}"#
        );
        assert_eq!(
            text([Some(r#"a"b\c,{d}"#), Some(" è ")]),
            r#"{"a\"b\\c,{d}"," è "}"#
        );
    }

    #[test]
    fn int8_writes_numbers_and_nulls() {
        assert_eq!(int8([]), "{}");
        assert_eq!(
            int8([Some(i64::MIN), None, Some(0), Some(i64::MAX)]),
            "{-9223372036854775808,NULL,0,9223372036854775807}"
        );
    }
}
