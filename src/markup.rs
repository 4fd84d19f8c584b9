//! Escaping text for XML and HTML: the one escaper behind the VOTable
//! writer, VOSI documents, PROV and the HTML the pages assemble outside
//! askama templates (which escape on their own).
//!
//! The five entities make text safe both as element content and inside
//! quoted attribute values, in XML and in HTML5 alike (`&apos;` is an HTML5
//! entity). Control characters that XML 1.0 cannot carry become U+FFFD
//! rather than making a whole VOTable unreadable for one bad string.

/// XML-escapes text into `out`. Control characters XML 1.0 cannot carry
/// become U+FFFD rather than making the document unreadable.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// XML-escaped copy of `s`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_and_control_characters() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("tab\there\nnew"), "tab\there\nnew");
        assert_eq!(escape("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(escape("ångström ✓"), "ångström ✓");
    }
}
