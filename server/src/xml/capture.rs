//! Checked event reading of request bodies, and self-contained re-serialisation of
//! subtrees (dead property values, lock owners).
//!
//! quick-xml is a tokenizer rather than a validating parser: it accepts several root
//! elements, unclosed elements at end of input, `<` in attribute values, malformed names
//! and undefined entities. [`Doc`] wraps its `NsReader` and adds the well-formedness and
//! namespace checks a server must make before it stores what a client sent. DTDs are
//! refused outright, so no entity is ever expanded (no XXE, no billion laughs).

use std::borrow::Cow;

use dav_model::props::PropName;
use quick_xml::escape::{resolve_xml_entity, unescape_with};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{PrefixDeclaration, QName, ResolveResult};
use quick_xml::NsReader;

use super::request::XmlError;

/// Deeper nesting than this is refused: no WebDAV body needs it, and quick-xml counts
/// levels in a `u16`, so a hostile body must be stopped well before that.
const MAX_DEPTH: usize = 256;

/// An element start: its resolved name, plus the raw tag that capture needs to keep
/// the client's prefixes and attributes.
pub(crate) struct Elem<'a> {
    pub name: PropName,
    tag: BytesStart<'a>,
}

/// What the parsers see: references are already resolved into text, comments and
/// processing instructions are dropped, empty elements arrive as `Start` + `End`.
pub(crate) enum Node<'a> {
    Start(Elem<'a>),
    End,
    Text(Cow<'a, str>),
}

/// A request body being read. Every node it hands out has passed the checks, and the
/// end of the root is only reported once the rest of the body was found to be empty
/// (whitespace, comments), so a parser that reads up to the root's end has validated
/// the whole document.
pub(crate) struct Doc<'a> {
    reader: NsReader<&'a [u8]>,
    /// `xml:lang` set on each open element (`None` when the element sets none).
    langs: Vec<Option<String>>,
    first_event: bool,
    root_done: bool,
}

impl<'a> Doc<'a> {
    /// Reads up to the root element, which must be `DAV:{root}`.
    pub fn open(body: &'a [u8], root: &str) -> Result<Doc<'a>, XmlError> {
        let mut reader = NsReader::from_reader(body);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.check_comments = true;
        let mut doc = Doc { reader, langs: Vec::new(), first_event: true, root_done: false };
        match doc.next()? {
            Node::Start(e) if e.name.is_dav() && e.name.local == root => Ok(doc),
            Node::Start(e) => {
                Err(malformed(format!("root element is {{{}}}{}, expected DAV:{root}", e.name.ns, e.name.local)))
            }
            Node::End | Node::Text(_) => Err(malformed("no root element")),
        }
    }

    /// The next node inside the root.
    pub fn next(&mut self) -> Result<Node<'a>, XmlError> {
        if self.root_done {
            return Err(malformed("read past the end of the document"));
        }
        loop {
            let event = self.reader.read_event().map_err(malformed)?;
            let first = std::mem::replace(&mut self.first_event, false);
            if let Some(node) = self.node(event, first)? {
                if matches!(node, Node::End) && self.langs.is_empty() {
                    self.epilog()?;
                }
                return Ok(node);
            }
        }
    }

    /// The next child element of the current element, skipping text; `None` once the
    /// current element ends. Text in DAV: containers carries no meaning, so it is ignored.
    pub fn next_child(&mut self) -> Result<Option<Elem<'a>>, XmlError> {
        loop {
            match self.next()? {
                Node::Start(e) => return Ok(Some(e)),
                Node::End => return Ok(None),
                Node::Text(_) => {}
            }
        }
    }

    /// Consumes the rest of the element whose start was just read, still checking it.
    pub fn skip(&mut self) -> Result<(), XmlError> {
        let mut depth = 0usize;
        loop {
            match self.next()? {
                Node::Start(_) => depth += 1,
                Node::End if depth == 0 => return Ok(()),
                Node::End => depth -= 1,
                Node::Text(_) => {}
            }
        }
    }

    fn node(&mut self, event: Event<'a>, first: bool) -> Result<Option<Node<'a>>, XmlError> {
        let text = match event {
            Event::Start(tag) => return self.start(tag).map(|e| Some(Node::Start(e))),
            Event::End(_) => {
                self.langs.pop();
                return Ok(Some(Node::End));
            }
            Event::Text(t) => t.xml10_content().map_err(malformed)?,
            Event::CData(c) => c.xml10_content().map_err(malformed)?,
            Event::GeneralRef(r) => reference(&r)?,
            Event::Comment(_) | Event::PI(_) => return Ok(None),
            Event::Decl(_) if first => return Ok(None),
            Event::Decl(_) => return Err(malformed("XML declaration not at the start")),
            Event::DocType(_) => return Err(XmlError::Forbidden("DOCTYPE is not accepted".into())),
            Event::Eof if self.langs.is_empty() => return Err(malformed("no root element")),
            Event::Eof => return Err(malformed("unclosed element")),
            // Never produced: empty elements are expanded into Start + End.
            Event::Empty(_) => return Err(malformed("unexpected empty element")),
        };
        check_text(&text)?;
        if !self.langs.is_empty() {
            Ok(Some(Node::Text(text)))
        } else if is_blank(text.as_bytes()) {
            Ok(None)
        } else {
            Err(malformed("text outside the root element"))
        }
    }

    /// After the root's end only whitespace, comments and PIs may follow.
    fn epilog(&mut self) -> Result<(), XmlError> {
        self.root_done = true;
        loop {
            match self.reader.read_event().map_err(malformed)? {
                Event::Eof => return Ok(()),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Text(t) if is_blank(&t) => {}
                _ => return Err(malformed("content after the root element")),
            }
        }
    }

    fn start(&mut self, tag: BytesStart<'a>) -> Result<Elem<'a>, XmlError> {
        if self.langs.len() >= MAX_DEPTH {
            return Err(malformed("elements nested too deeply"));
        }
        check_qname(tag.name().as_ref())?;
        let mut lang = None;
        for attr in tag.attributes() {
            let attr = attr.map_err(malformed)?;
            check_qname(attr.key.as_ref())?;
            let value = attr_value(&attr.value)?;
            match attr.key.as_namespace_binding() {
                // Namespaces 1.0 only allows undeclaring the default namespace.
                Some(PrefixDeclaration::Named(_)) if value.is_empty() => {
                    return Err(malformed("empty namespace name for a prefix"))
                }
                Some(_) => {}
                None if attr.key.as_ref() == b"xml:lang" => lang = Some(value),
                None => {
                    self.namespace(attr.key, false)?;
                }
            }
        }
        let (_, local) = self.reader.resolver().resolve_element(tag.name());
        let local = utf8(local.as_ref())?.to_owned();
        let name = PropName { ns: self.namespace(tag.name(), true)?, local };
        self.langs.push(lang);
        Ok(Elem { name, tag })
    }

    /// The namespace URI of a name in the current scope, "" for none.
    fn namespace(&self, name: QName, element: bool) -> Result<String, XmlError> {
        match self.reader.resolver().resolve(name, element).0 {
            ResolveResult::Bound(ns) => attr_value(ns.as_ref()),
            ResolveResult::Unbound => Ok(String::new()),
            ResolveResult::Unknown(p) => {
                Err(malformed(format!("unbound namespace prefix {:?}", String::from_utf8_lossy(&p))))
            }
        }
    }

    /// `xml:lang` in scope from the ancestors of the current element, if not empty.
    fn inherited_lang(&self) -> Option<&str> {
        let ancestors = &self.langs[..self.langs.len().saturating_sub(1)];
        ancestors.iter().rev().find_map(|l| l.as_deref()).filter(|l| !l.is_empty())
    }

    /// Appends a declaration for every namespace binding in scope; returns whether a
    /// default namespace is among them.
    fn push_scope(&self, out: &mut String) -> Result<bool, XmlError> {
        let mut has_default = false;
        for (decl, ns) in self.reader.resolver().bindings() {
            match decl {
                PrefixDeclaration::Default => {
                    has_default = true;
                    out.push_str(" xmlns");
                }
                PrefixDeclaration::Named(prefix) => {
                    out.push_str(" xmlns:");
                    out.push_str(utf8(prefix)?);
                }
            }
            push_attr_value(out, &attr_value(ns.as_ref())?);
        }
        Ok(has_default)
    }
}

/// Serialises `elem`, whose start was just read, with all its content so that the
/// result stands alone wherever it is pasted: it declares every namespace binding in
/// scope (keeping the client's prefixes) and carries the inherited `xml:lang`.
/// Comments and PIs are dropped; CDATA becomes escaped text.
pub(crate) fn capture(doc: &mut Doc<'_>, elem: &Elem<'_>) -> Result<String, XmlError> {
    capture_value(doc, elem).map(|(xml, _)| xml)
}

/// [`capture`], plus the element's plain text (references resolved, untrimmed) when it
/// holds no child element: the value the model interprets for properties that mean
/// something to it, such as the times clients set.
pub(crate) fn capture_value(doc: &mut Doc<'_>, elem: &Elem<'_>) -> Result<(String, Option<String>), XmlError> {
    let name = elem.tag.name();
    let qname = utf8(name.as_ref())?;
    let mut head = String::new();
    let has_default = doc.push_scope(&mut head)?;
    let own_lang = doc.langs.last().is_some_and(Option::is_some);
    if let Some(lang) = doc.inherited_lang().filter(|_| !own_lang) {
        head.push_str(" xml:lang");
        push_attr_value(&mut head, lang);
    }
    push_attributes(&mut head, &elem.tag, false)?;
    let mut body = Body { out: String::new(), open: Vec::new(), tag_open: false, text: Some(String::new()) };
    let mut unprefixed = !qname.contains(':');
    loop {
        match doc.next()? {
            Node::Start(child) => unprefixed |= body.start(&child.tag)?,
            Node::Text(text) => body.text(&text),
            Node::End if body.open.is_empty() => break,
            Node::End => body.end(),
        }
    }
    // Without this, unprefixed names in no namespace would fall into whatever default
    // namespace the document it is pasted into declares.
    let undeclare = if unprefixed && !has_default { " xmlns=\"\"" } else { "" };
    let xml = if body.out.is_empty() {
        format!("<{qname}{undeclare}{head}/>")
    } else {
        format!("<{qname}{undeclare}{head}>{}</{qname}>", body.out)
    };
    Ok((xml, body.text))
}

/// Serialises the content of the element whose start was just read (text escaped,
/// child elements captured self-contained), trimmed of surrounding whitespace.
pub(crate) fn capture_content(doc: &mut Doc<'_>) -> Result<String, XmlError> {
    let mut out = String::new();
    loop {
        match doc.next()? {
            Node::Start(child) => out.push_str(&capture(doc, &child)?),
            Node::Text(text) => push_escaped(&mut out, &text, false),
            Node::End => return Ok(out.trim_matches(is_xml_space).to_owned()),
        }
    }
}

/// The inside of a captured element, written as it streams by.
struct Body {
    out: String,
    /// Qualified names of the open descendants.
    open: Vec<String>,
    /// The last start tag still lacks its `>`: it becomes `/>` if the element is empty.
    tag_open: bool,
    /// The text read so far, while no child element has been seen.
    text: Option<String>,
}

impl Body {
    /// Writes a descendant's start tag; returns whether its name is unprefixed.
    fn start(&mut self, tag: &BytesStart<'_>) -> Result<bool, XmlError> {
        self.close_tag();
        self.text = None;
        let qname = utf8(tag.name().as_ref())?.to_owned();
        self.out.push('<');
        self.out.push_str(&qname);
        push_attributes(&mut self.out, tag, true)?;
        self.tag_open = true;
        let unprefixed = !qname.contains(':');
        self.open.push(qname);
        Ok(unprefixed)
    }

    fn text(&mut self, text: &str) {
        if !text.is_empty() {
            self.close_tag();
            push_escaped(&mut self.out, text, false);
            if let Some(t) = &mut self.text {
                t.push_str(text);
            }
        }
    }

    fn end(&mut self) {
        let qname = self.open.pop().unwrap_or_default();
        if std::mem::take(&mut self.tag_open) {
            self.out.push_str("/>");
        } else {
            self.out.push_str("</");
            self.out.push_str(&qname);
            self.out.push('>');
        }
    }

    fn close_tag(&mut self) {
        if std::mem::take(&mut self.tag_open) {
            self.out.push('>');
        }
    }
}

/// Appends the tag's attributes, re-escaped; namespace declarations only when asked
/// (the captured element gets all bindings in scope from [`Doc::push_scope`] instead).
fn push_attributes(out: &mut String, tag: &BytesStart<'_>, decls: bool) -> Result<(), XmlError> {
    for attr in tag.attributes() {
        let attr = attr.map_err(malformed)?;
        if !decls && attr.key.as_namespace_binding().is_some() {
            continue;
        }
        out.push(' ');
        out.push_str(utf8(attr.key.as_ref())?);
        push_attr_value(out, &attr_value(&attr.value)?);
    }
    Ok(())
}

fn push_attr_value(out: &mut String, value: &str) {
    out.push_str("=\"");
    push_escaped(out, value, true);
    out.push('"');
}

/// Escapes markup characters, and the whitespace that a parser would otherwise
/// normalise (CR in text; tab, CR and LF in attribute values), so values round-trip.
fn push_escaped(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => out.push_str("&#13;"),
            '"' if attr => out.push_str("&quot;"),
            '\t' if attr => out.push_str("&#9;"),
            '\n' if attr => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
}

/// Decodes an attribute value (or namespace name) the way XML 1.0 section 3.3.3 does:
/// literal whitespace becomes spaces, then references are resolved. Only the five
/// predefined entities exist, since DTDs are refused.
fn attr_value(raw: &[u8]) -> Result<String, XmlError> {
    let raw = utf8(raw)?;
    if raw.contains('<') {
        return Err(malformed("'<' in an attribute value"));
    }
    let normalised: String = raw.replace("\r\n", "\n").chars().map(|c| if is_xml_space(c) { ' ' } else { c }).collect();
    let value = unescape_with(&normalised, resolve_xml_entity).map_err(malformed)?;
    check_text(&value)?;
    Ok(value.into_owned())
}

/// Resolves `&name;` in text: character references and the five predefined entities.
fn reference(r: &BytesRef<'_>) -> Result<Cow<'static, str>, XmlError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(Cow::Owned(c.to_string())),
            _ => Err(malformed("invalid character reference")),
        };
    }
    let name = r.decode().map_err(malformed)?;
    match resolve_xml_entity(&name) {
        Some(s) => Ok(Cow::Borrowed(s)),
        None => Err(malformed(format!("undefined entity &{name};"))),
    }
}

/// Character data must consist of XML `Char`s (section 2.2) and must not contain `]]>`.
fn check_text(s: &str) -> Result<(), XmlError> {
    if !s.chars().all(is_xml_char) {
        return Err(malformed("character not allowed in XML"));
    }
    if s.contains("]]>") {
        return Err(malformed("']]>' in character data"));
    }
    Ok(())
}

/// XML 1.0 `Char`: Rust's `char` already excludes surrogates.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Element and attribute names must be `QName`s (Namespaces in XML 1.0, section 4).
fn check_qname(raw: &[u8]) -> Result<(), XmlError> {
    let name = utf8(raw)?;
    let mut parts = name.split(':');
    let valid = match (parts.next(), parts.next(), parts.next()) {
        (Some(local), None, _) => is_ncname(local),
        (Some(prefix), Some(local), None) => is_ncname(prefix) && is_ncname(local),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(malformed(format!("invalid name {name:?}")))
    }
}

fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// XML 1.0 (fifth edition) `NameStartChar`, minus `:`.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{c0}'..='\u{d6}' | '\u{d8}'..='\u{f6}'
        | '\u{f8}'..='\u{2ff}' | '\u{370}'..='\u{37d}' | '\u{37f}'..='\u{1fff}'
        | '\u{200c}'..='\u{200d}' | '\u{2070}'..='\u{218f}' | '\u{2c00}'..='\u{2fef}'
        | '\u{3001}'..='\u{d7ff}' | '\u{f900}'..='\u{fdcf}' | '\u{fdf0}'..='\u{fffd}'
        | '\u{10000}'..='\u{effff}')
}

fn is_name_char(c: char) -> bool {
    let extra = |c| matches!(c, '\u{b7}' | '\u{300}'..='\u{36f}' | '\u{203f}'..='\u{2040}');
    is_name_start(c) || matches!(c, '-' | '.' | '0'..='9') || extra(c)
}

fn utf8(raw: &[u8]) -> Result<&str, XmlError> {
    std::str::from_utf8(raw).map_err(|_| malformed("invalid UTF-8"))
}

/// True for a body that is empty or only whitespace, which some methods treat as absent.
pub(crate) fn is_blank(body: &[u8]) -> bool {
    body.iter().all(|&b| is_xml_space(char::from(b)))
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn malformed(reason: impl ToString) -> XmlError {
    XmlError::Malformed(reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::request::{parse_propfind, parse_proppatch, PropfindRequest};
    use super::*;

    fn propfind(body: &str) -> Result<PropfindRequest, XmlError> {
        parse_propfind(body.as_bytes())
    }

    /// Wraps `inner` as the content of a `DAV:prop` in a propfind.
    fn in_prop(inner: &str) -> Result<PropfindRequest, XmlError> {
        propfind(&format!("<D:propfind xmlns:D='DAV:'><D:prop>{inner}</D:prop></D:propfind>"))
    }

    fn assert_malformed(result: Result<PropfindRequest, XmlError>) {
        assert!(matches!(result, Err(XmlError::Malformed(_))), "{result:?}");
    }

    #[test]
    fn doctype_is_refused() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">
            <!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><D:propfind xmlns:D="DAV:"><D:prop>
            <x:a xmlns:x="urn:x">&lol2;</x:a></D:prop></D:propfind>"#;
        let xxe = r#"<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><D:propfind xmlns:D="DAV:"/>"#;
        for body in [laughs, xxe] {
            assert!(matches!(propfind(body), Err(XmlError::Forbidden(_))));
        }
    }

    #[test]
    fn undefined_entity_is_malformed() {
        let body = "<D:propertyupdate xmlns:D='DAV:'><D:set><D:prop><x:a xmlns:x='urn:x'>&lol;</x:a>\
                    </D:prop></D:set></D:propertyupdate>";
        assert!(matches!(parse_proppatch(body.as_bytes()), Err(XmlError::Malformed(_))));
        assert_malformed(in_prop("<x:a xmlns:x='urn:x' v='&lol;'/>"));
    }

    #[test]
    fn undeclared_prefix_is_malformed() {
        assert_malformed(in_prop("<bar:foo/>"));
        assert_malformed(in_prop("<D:getetag bar:attr='1'/>"));
        assert_malformed(propfind("<propfind><allprop/></propfind>"));
    }

    #[test]
    fn empty_prefix_binding_is_malformed() {
        // litmus props/propfind_invalid2
        assert_malformed(in_prop("<bar:foo xmlns:bar=''/>"));
        assert_malformed(in_prop("<D:getetag xmlns:bar=''/>"));
    }

    #[test]
    fn empty_default_namespace_is_allowed() {
        let names = in_prop("<foo xmlns=''/>").unwrap();
        assert_eq!(names, PropfindRequest::Prop(vec![PropName::new("", "foo")]));
    }

    #[test]
    fn reserved_prefixes_cannot_be_rebound() {
        assert_malformed(in_prop("<D:getetag xmlns:xml='urn:x'/>"));
        assert_malformed(in_prop("<D:getetag xmlns:xmlns='urn:x'/>"));
    }

    #[test]
    fn mismatched_end_tag_is_malformed() {
        assert_malformed(in_prop("<D:a></D:b>"));
        assert_malformed(propfind("<D:propfind xmlns:D='DAV:'><D:allprop/></D:propfindx>"));
    }

    #[test]
    fn unclosed_element_is_malformed() {
        // litmus props/propfind_invalid
        assert_malformed(propfind("<foo>"));
        assert_malformed(propfind("<D:propfind xmlns:D='DAV:'><D:allprop/>"));
        assert_malformed(propfind("<D:propfind xmlns:D='DAV:'><D:allprop/></D:propfind"));
    }

    #[test]
    fn content_outside_the_root_is_malformed() {
        let root = "<D:propfind xmlns:D='DAV:'><D:allprop/></D:propfind>";
        assert_malformed(propfind(&format!("{root}junk")));
        assert_malformed(propfind(&format!("{root}{root}")));
        assert_malformed(propfind(&format!("junk{root}")));
        assert_malformed(propfind(&format!("{root}&amp;")));
        assert_malformed(propfind(&format!("{root}<?xml version='1.0'?>")));
        let fine = format!("<?xml version='1.0'?>\n<!-- c -->{root}\n<?pi x?><!-- c -->\n");
        assert!(propfind(&fine).is_ok());
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let mut body = b"<D:propertyupdate xmlns:D='DAV:'><D:set><D:prop><x:a xmlns:x='urn:x'>".to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(b"</x:a></D:prop></D:set></D:propertyupdate>");
        assert!(matches!(parse_proppatch(&body), Err(XmlError::Malformed(_))));
    }

    #[test]
    fn illegal_characters_are_malformed() {
        for value in ["&#0;", "&#1;", "&#xFFFE;", "&#xD800;", "\u{1}", "]]>"] {
            assert_malformed(in_prop(&format!("<x:a xmlns:x='urn:x'>{value}</x:a>")));
        }
    }

    #[test]
    fn broken_attributes_are_malformed() {
        for attrs in ["v='<'", "v='1' v='2'", "v=1", "v", "1v='x'"] {
            assert_malformed(in_prop(&format!("<x:a xmlns:x='urn:x' {attrs}/>")));
        }
    }

    #[test]
    fn invalid_names_are_malformed() {
        for name in ["1a", "a:b:c", ":a", "a:"] {
            assert_malformed(in_prop(&format!("<{name} xmlns:a='urn:a'/>")));
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let depth = MAX_DEPTH + 10;
        let inner = format!("{}{}", "<x:a xmlns:x='urn:x'>".repeat(depth), "</x:a>".repeat(depth));
        assert_malformed(in_prop(&inner));
    }
}
