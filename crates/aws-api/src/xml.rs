//! A tiny XML writer: enough for Query and EC2 replies, which are elements and text only.
//!
//! Text is always escaped, so user data (user names, tag values, messages) cannot break the
//! document. Element names and namespaces are written as given: pass names from the API model,
//! never user input.

/// Escapes text for element content or a double-quoted attribute.
///
/// `& < > " '` become entities; `\r` becomes `&#13;` so it survives a parser's line-end
/// normalisation; characters XML 1.0 cannot carry at all (other C0 controls, U+FFFE, U+FFFF)
/// become U+FFFD, so the output is always well-formed.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            _ => out.push(c),
        }
    }
}

/// [`escape_into`] into a new string.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Writes elements in order; [`XmlWriter::end`] closes the innermost open one and
/// [`XmlWriter::finish`] closes whatever is still open.
#[derive(Debug, Default, Clone)]
pub struct XmlWriter {
    out: String,
    open: Vec<String>,
}

impl XmlWriter {
    /// An empty document with no XML declaration (IAM and STS send none).
    pub fn new() -> Self {
        XmlWriter::default()
    }

    /// A document starting with `<?xml version="1.0" encoding="UTF-8"?>` and a newline, as
    /// EC2 sends.
    pub fn with_declaration() -> Self {
        XmlWriter {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            open: Vec::new(),
        }
    }

    /// Opens `<name>`.
    pub fn start(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.open.push(name.to_owned());
        self
    }

    /// Opens `<name xmlns="xmlns">`.
    pub fn start_ns(&mut self, name: &str, xmlns: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        escape_into(&mut self.out, xmlns);
        self.out.push_str("\">");
        self.open.push(name.to_owned());
        self
    }

    /// Closes the innermost open element; does nothing when none is open.
    pub fn end(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            self.out.push_str("</");
            self.out.push_str(&name);
            self.out.push('>');
        }
        self
    }

    /// Escaped text inside the current element.
    pub fn text(&mut self, text: &str) -> &mut Self {
        escape_into(&mut self.out, text);
        self
    }

    /// `<name>text</name>`, the text escaped.
    pub fn element(&mut self, name: &str, text: &str) -> &mut Self {
        self.start(name).text(text).end()
    }

    /// The document, with every element still open closed.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.out
    }
}

/// A whole Query reply, the shape botocore's Query parser reads:
/// `<{action}Response xmlns="..."><{action}Result>...</{action}Result>
/// <ResponseMetadata><RequestId>..</RequestId></ResponseMetadata></{action}Response>`.
///
/// `result` writes the members of the result; when it writes nothing, the `Result` element is
/// left out, as AWS does for actions with no output (`DeleteUser`).
pub fn query_response(
    action: &str,
    xmlns: &str,
    request_id: &str,
    result: impl FnOnce(&mut XmlWriter),
) -> String {
    let mut inner = XmlWriter::new();
    result(&mut inner);
    let inner = inner.finish();

    let mut w = XmlWriter::new();
    w.start_ns(&format!("{action}Response"), xmlns);
    if !inner.is_empty() {
        w.start(&format!("{action}Result"));
        w.out.push_str(&inner);
        w.end();
    }
    w.start("ResponseMetadata")
        .element("RequestId", request_id)
        .end();
    w.finish()
}

/// A whole EC2 reply: the XML declaration, then
/// `<{action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>..</requestId>
/// ...</{action}Response>`; `result` writes the members after `requestId`.
pub fn ec2_response(action: &str, request_id: &str, result: impl FnOnce(&mut XmlWriter)) -> String {
    let mut w = XmlWriter::with_declaration();
    w.start_ns(&format!("{action}Response"), crate::error::EC2_XMLNS)
        .element("requestId", request_id);
    result(&mut w);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text() {
        assert_eq!(escape(r#"a&b<c>d"e'f"#), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
        assert_eq!(escape("a\r\nb\u{0}c"), "a&#13;\nb\u{fffd}c");
        assert_eq!(escape("ユーザー"), "ユーザー");
    }

    #[test]
    fn writes_nested_elements() {
        let mut w = XmlWriter::new();
        w.start_ns("R", "urn:x")
            .start("A")
            .element("B", "<1>")
            .end();
        assert_eq!(
            w.finish(),
            r#"<R xmlns="urn:x"><A><B>&lt;1&gt;</B></A></R>"#
        );
    }

    #[test]
    fn end_without_open_is_harmless() {
        let mut w = XmlWriter::new();
        w.end().element("A", "");
        assert_eq!(w.finish(), "<A></A>");
    }

    #[test]
    fn query_response_omits_empty_result() {
        let xml = query_response("DeleteUser", "urn:iam", "rid", |_| {});
        assert_eq!(
            xml,
            "<DeleteUserResponse xmlns=\"urn:iam\"><ResponseMetadata><RequestId>rid</RequestId>\
             </ResponseMetadata></DeleteUserResponse>"
        );
    }
}
