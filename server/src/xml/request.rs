//! WebDAV request bodies (RFC 4918 section 14): PROPFIND, PROPPATCH and LOCK.
//!
//! Bodies are read as a stream of checked events (see `capture::Doc`), never
//! built into a tree. The parsers are strict about well-formedness and namespaces, since
//! a body we misread could set the wrong property, but lenient about unknown elements,
//! which RFC 4918 section 17 says to ignore.

use std::fmt;

/// One PROPPATCH instruction; the model's own type, so parsed instructions go to the
/// repository unchanged, in document order (section 9.2).
pub use dav_model::props::PatchOp;
use dav_model::props::{DeadProp, PropName};

use super::capture::{capture_content, capture_value, is_blank, Doc};

/// Why a body was refused. Both map to 400 Bad Request; `Forbidden` is kept apart so it
/// can be logged as a probable attack rather than a client bug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlError {
    /// Not well-formed, not namespace-well-formed, or not the expected structure.
    Malformed(String),
    /// A construct refused on principle: DTDs, and with them custom entities.
    Forbidden(String),
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmlError::Malformed(why) => write!(f, "malformed XML body: {why}"),
            XmlError::Forbidden(why) => write!(f, "forbidden XML construct: {why}"),
        }
    }
}

impl std::error::Error for XmlError {}

/// What a PROPFIND asks for (RFC 4918 section 14.20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropfindRequest {
    /// All dead properties and the live ones the server defines for allprop, plus
    /// the `include`d ones.
    AllProp { include: Vec<PropName> },
    /// Names only, no values.
    PropName,
    /// Exactly these properties.
    Prop(Vec<PropName>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    Exclusive,
    Shared,
}

/// A LOCK request body. The lock type is not kept: only write locks exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    pub scope: LockScope,
    /// The content of `DAV:owner`, self-contained XML to be echoed back verbatim in
    /// `lockdiscovery`; `None` when absent or empty.
    pub owner: Option<String>,
}

/// Parses a PROPFIND body. An empty body means allprop (section 9.1).
pub fn parse_propfind(body: &[u8]) -> Result<PropfindRequest, XmlError> {
    if is_blank(body) {
        return Ok(PropfindRequest::AllProp { include: Vec::new() });
    }
    let mut doc = Doc::open(body, "propfind")?;
    let mut request = None;
    let mut include = Vec::new();
    while let Some(child) = doc.next_child()? {
        let found = match dav_local(&child.name) {
            Some("allprop") => doc.skip().map(|()| PropfindRequest::AllProp { include: vec![] })?,
            Some("propname") => doc.skip().map(|()| PropfindRequest::PropName)?,
            Some("prop") => PropfindRequest::Prop(names(&mut doc)?),
            Some("include") => {
                include.extend(names(&mut doc)?);
                continue;
            }
            _ => {
                doc.skip()?;
                continue;
            }
        };
        if request.replace(found).is_some() {
            return Err(malformed("more than one of allprop, propname and prop"));
        }
    }
    match request {
        Some(PropfindRequest::AllProp { .. }) => Ok(PropfindRequest::AllProp { include }),
        Some(other) => Ok(other),
        None => Err(malformed("propfind names neither allprop, propname nor prop")),
    }
}

/// Parses a PROPPATCH body into its instructions, in document order.
pub fn parse_proppatch(body: &[u8]) -> Result<Vec<PatchOp>, XmlError> {
    let mut doc = Doc::open(body, "propertyupdate")?;
    let mut ops = Vec::new();
    let mut instructions = 0usize;
    while let Some(child) = doc.next_child()? {
        match dav_local(&child.name) {
            Some("set") => instruction(&mut doc, true, &mut ops)?,
            Some("remove") => instruction(&mut doc, false, &mut ops)?,
            _ => {
                doc.skip()?;
                continue;
            }
        }
        instructions += 1;
    }
    if instructions == 0 {
        return Err(malformed("propertyupdate holds no set or remove"));
    }
    Ok(ops)
}

/// Reads the `DAV:prop` containers of one `set` or `remove`.
fn instruction(doc: &mut Doc<'_>, set: bool, ops: &mut Vec<PatchOp>) -> Result<(), XmlError> {
    while let Some(child) = doc.next_child()? {
        if dav_local(&child.name) != Some("prop") {
            doc.skip()?;
            continue;
        }
        while let Some(prop) = doc.next_child()? {
            ops.push(if set {
                let (xml, text) = capture_value(doc, &prop)?;
                PatchOp::Set(DeadProp { name: prop.name, xml, text })
            } else {
                doc.skip()?;
                PatchOp::Remove(prop.name)
            });
        }
    }
    Ok(())
}

/// Parses a LOCK body. An empty body is a refresh, so it yields `None` (section 9.10.2).
pub fn parse_lockinfo(body: &[u8]) -> Result<Option<LockInfo>, XmlError> {
    if is_blank(body) {
        return Ok(None);
    }
    let mut doc = Doc::open(body, "lockinfo")?;
    let (mut scope, mut write, mut owner) = (None, false, None);
    while let Some(child) = doc.next_child()? {
        match dav_local(&child.name) {
            Some("lockscope") => scope = lock_scope(&mut doc)?,
            Some("locktype") => write = lock_type_is_write(&mut doc)?,
            Some("owner") => owner = Some(capture_content(&mut doc)?).filter(|o| !o.is_empty()),
            _ => doc.skip()?,
        }
    }
    let scope = scope.ok_or_else(|| malformed("lockinfo without a known lockscope"))?;
    if !write {
        return Err(malformed("lockinfo without locktype write"));
    }
    Ok(Some(LockInfo { scope, owner }))
}

fn lock_scope(doc: &mut Doc<'_>) -> Result<Option<LockScope>, XmlError> {
    let mut scope = None;
    while let Some(child) = doc.next_child()? {
        let found = match dav_local(&child.name) {
            Some("exclusive") => Some(LockScope::Exclusive),
            Some("shared") => Some(LockScope::Shared),
            _ => None,
        };
        scope = scope.or(found);
        doc.skip()?;
    }
    Ok(scope)
}

fn lock_type_is_write(doc: &mut Doc<'_>) -> Result<bool, XmlError> {
    let mut write = false;
    while let Some(child) = doc.next_child()? {
        write |= dav_local(&child.name) == Some("write");
        doc.skip()?;
    }
    Ok(write)
}

/// The names of the children of the element just opened (a `prop` or `include`).
fn names(doc: &mut Doc<'_>) -> Result<Vec<PropName>, XmlError> {
    let mut names = Vec::new();
    while let Some(child) = doc.next_child()? {
        doc.skip()?;
        names.push(child.name);
    }
    Ok(names)
}

/// The local name of a DAV: element, `None` for other namespaces.
fn dav_local(name: &PropName) -> Option<&str> {
    name.is_dav().then_some(name.local.as_str())
}

fn malformed(reason: &str) -> XmlError {
    XmlError::Malformed(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::test_util::expanded;

    fn set_ops(body: &str) -> Vec<DeadProp> {
        parse_proppatch(body.as_bytes())
            .unwrap()
            .into_iter()
            .map(|op| match op {
                PatchOp::Set(prop) => prop,
                PatchOp::Remove(name) => panic!("unexpected remove of {name:?}"),
            })
            .collect()
    }

    fn one_set(body: &str) -> DeadProp {
        let mut props = set_ops(body);
        assert_eq!(props.len(), 1, "{props:?}");
        props.remove(0)
    }

    fn lockinfo(inner: &str) -> Result<Option<LockInfo>, XmlError> {
        parse_lockinfo(format!("<D:lockinfo xmlns:D='DAV:'>{inner}</D:lockinfo>").as_bytes())
    }

    const WRITE_EXCLUSIVE: &str = "<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>";

    #[test]
    fn empty_propfind_body_means_allprop() {
        for body in ["", " \r\n\t"] {
            let request = parse_propfind(body.as_bytes()).unwrap();
            assert_eq!(request, PropfindRequest::AllProp { include: vec![] });
        }
    }

    #[test]
    fn allprop_with_include() {
        let body = r#"<?xml version="1.0" encoding="utf-8"?>
            <propfind xmlns="DAV:"><allprop/>
              <include><supported-live-property-set/><x:q xmlns:x="urn:x"/></include>
            </propfind>"#;
        let include = vec![PropName::dav("supported-live-property-set"), PropName::new("urn:x", "q")];
        assert_eq!(parse_propfind(body.as_bytes()).unwrap(), PropfindRequest::AllProp { include });
    }

    #[test]
    fn propname_request() {
        let body = b"<D:propfind xmlns:D='DAV:'><D:propname/></D:propfind>";
        assert_eq!(parse_propfind(body).unwrap(), PropfindRequest::PropName);
    }

    #[test]
    fn prop_request_resolves_namespaces() {
        let body = br#"<D:propfind xmlns:D="DAV:" xmlns="urn:default"><D:prop>
            <D:getetag/><a/><foo xmlns=""/><z:b xmlns:z="urn:z"><z:ignored/></z:b>
            </D:prop><other:thing xmlns:other="urn:o"/></D:propfind>"#;
        let expected = vec![
            PropName::dav("getetag"),
            PropName::new("urn:default", "a"),
            PropName::new("", "foo"),
            PropName::new("urn:z", "b"),
        ];
        assert_eq!(parse_propfind(body).unwrap(), PropfindRequest::Prop(expected));
    }

    #[test]
    fn propfind_needs_exactly_one_kind() {
        let none = b"<propfind xmlns='DAV:'><foo/></propfind>";
        let two = b"<propfind xmlns='DAV:'><allprop/><propname/></propfind>";
        assert!(matches!(parse_propfind(none), Err(XmlError::Malformed(_))));
        assert!(matches!(parse_propfind(two), Err(XmlError::Malformed(_))));
    }

    #[test]
    fn wrong_root_is_malformed() {
        let body = b"<D:propertyupdate xmlns:D='DAV:'/>";
        assert!(matches!(parse_propfind(body), Err(XmlError::Malformed(_))));
        let no_ns = b"<propfind><allprop/></propfind>";
        assert!(matches!(parse_propfind(no_ns), Err(XmlError::Malformed(_))));
    }

    #[test]
    fn proppatch_keeps_document_order() {
        let body = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">
            <D:set><D:prop><Z:a>1</Z:a><Z:b/></D:prop></D:set>
            <D:remove><D:prop><Z:a/></D:prop></D:remove>
            <D:set><D:prop><Z:c>3</Z:c></D:prop></D:set></D:propertyupdate>"#;
        let ops = parse_proppatch(body.as_bytes()).unwrap();
        let summary: Vec<String> = ops
            .iter()
            .map(|op| match op {
                PatchOp::Set(p) => format!("set {}", p.name.local),
                PatchOp::Remove(n) => format!("remove {}", n.local),
            })
            .collect();
        assert_eq!(summary, ["set a", "set b", "remove a", "set c"]);
    }

    #[test]
    fn empty_proppatch_body_is_malformed() {
        for body in ["", "  ", "<D:propertyupdate xmlns:D='DAV:'/>"] {
            assert!(matches!(parse_proppatch(body.as_bytes()), Err(XmlError::Malformed(_))));
        }
    }

    #[test]
    fn dead_property_keeps_namespaces_of_its_children() {
        let prop = one_set(
            r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z" xmlns:Y="urn:y" xmlns="urn:d">
            <D:set><D:prop><Z:author>x<Y:name Y:kind="full">Ann</Y:name><plain/><D:href>/h</D:href>
            </Z:author></D:prop></D:set></D:propertyupdate>"#,
        );
        assert_eq!(prop.name, PropName::new("urn:z", "author"));
        assert!(prop.xml.starts_with("<Z:author "), "{}", prop.xml);
        assert_eq!(
            expanded(&prop.xml),
            "<{urn:z}author>x<{urn:y}name {urn:y}kind=\"full\">Ann</{urn:y}name>\
             <{urn:d}plain></{urn:d}plain><{DAV:}href>/h</{DAV:}href>\n            </{urn:z}author>"
        );
    }

    #[test]
    fn unprefixed_property_in_no_namespace_stays_there() {
        let prop = one_set(
            "<propertyupdate xmlns='DAV:'><set><prop><foo xmlns=''>v<bar/></foo></prop></set>\
             </propertyupdate>",
        );
        assert_eq!(prop.name, PropName::new("", "foo"));
        assert_eq!(expanded(&prop.xml), "<{}foo>v<{}bar></{}bar></{}foo>");
        // Pasted into a document with a default namespace, it must not pick that up.
        let pasted = format!("<r xmlns='urn:r'>{}</r>", prop.xml);
        assert!(expanded(&pasted).contains("<{}foo>v<{}bar>"), "{pasted}");
    }

    #[test]
    fn inherited_xml_lang_is_kept() {
        let body = r#"<D:propertyupdate xmlns:D="DAV:" xml:lang="en"><D:set xml:lang="fr">
            <D:prop><Z:a xmlns:Z="urn:z">bonjour</Z:a><Z:b xmlns:Z="urn:z" xml:lang="de">hallo</Z:b>
            </D:prop></D:set></D:propertyupdate>"#;
        let props = set_ops(body);
        let xml_ns = "http://www.w3.org/XML/1998/namespace";
        assert_eq!(expanded(&props[0].xml), format!("<{{urn:z}}a {{{xml_ns}}}lang=\"fr\">bonjour</{{urn:z}}a>"));
        assert_eq!(expanded(&props[1].xml), format!("<{{urn:z}}b {{{xml_ns}}}lang=\"de\">hallo</{{urn:z}}b>"));
    }

    #[test]
    fn high_unicode_value_round_trips() {
        let prop = one_set(
            "<D:propertyupdate xmlns:D='DAV:'><D:set><D:prop><x:v xmlns:x='urn:x'>\
             &#x10000;&#65;\u{1F600}&lt;&amp;&#13;]&gt;</x:v></D:prop></D:set></D:propertyupdate>",
        );
        assert_eq!(expanded(&prop.xml), "<{urn:x}v>\u{10000}A\u{1F600}<&\r]></{urn:x}v>");
    }

    #[test]
    fn attribute_values_round_trip() {
        let prop = one_set(
            "<D:propertyupdate xmlns:D='DAV:'><D:set><D:prop>\
             <x:v xmlns:x='urn:x' a='&quot;q&quot; &#9;t&#10;&lt;' b=\"it's\nx\"/>\
             </D:prop></D:set></D:propertyupdate>",
        );
        assert_eq!(expanded(&prop.xml), "<{urn:x}v {}a=\"\\\"q\\\" \\tt\\n<\" {}b=\"it's x\"></{urn:x}v>");
    }

    #[test]
    fn cdata_and_comments_in_values() {
        let prop = one_set(
            "<D:propertyupdate xmlns:D='DAV:'><D:set><D:prop><x:v xmlns:x='urn:x'>\
             a<!-- gone --><![CDATA[<b>&]]><?pi gone?>c</x:v></D:prop></D:set></D:propertyupdate>",
        );
        assert_eq!(expanded(&prop.xml), "<{urn:x}v>a<b>&c</{urn:x}v>");
    }

    #[test]
    fn text_only_values_carry_their_text() {
        let props = set_ops(
            "<D:propertyupdate xmlns:D='DAV:'><D:set><D:prop xmlns:Z='urn:schemas-microsoft-com:'>\
             <Z:Win32LastModifiedTime> Thu, 26 Nov 2026 05:56:29 GMT</Z:Win32LastModifiedTime>\
             <Z:a>x&amp;<![CDATA[<y>]]></Z:a><Z:empty/><Z:nested>a<Z:b>c</Z:b></Z:nested>\
             </D:prop></D:set></D:propertyupdate>",
        );
        let texts: Vec<Option<&str>> = props.iter().map(|p| p.text.as_deref()).collect();
        assert_eq!(texts, [Some(" Thu, 26 Nov 2026 05:56:29 GMT"), Some("x&<y>"), Some(""), None]);
        assert!(
            props[0].xml.ends_with("> Thu, 26 Nov 2026 05:56:29 GMT</Z:Win32LastModifiedTime>"),
            "{}",
            props[0].xml
        );
    }

    #[test]
    fn remove_takes_names_only() {
        let body = b"<D:propertyupdate xmlns:D='DAV:'><D:remove><D:prop><x:v xmlns:x='urn:x'>junk</x:v>\
             </D:prop></D:remove></D:propertyupdate>";
        let ops = parse_proppatch(body).unwrap();
        assert!(matches!(&ops[..], [PatchOp::Remove(n)] if *n == PropName::new("urn:x", "v")));
    }

    #[test]
    fn empty_lock_body_is_a_refresh() {
        assert_eq!(parse_lockinfo(b"").unwrap(), None);
        assert_eq!(parse_lockinfo(b"\n").unwrap(), None);
    }

    #[test]
    fn owner_href_is_self_contained() {
        let owner = "<D:owner>\n  <D:href>http://x</D:href>\n</D:owner>";
        let info = lockinfo(&format!("{WRITE_EXCLUSIVE}{owner}")).unwrap().unwrap();
        assert_eq!(info.scope, LockScope::Exclusive);
        assert_eq!(info.owner.as_deref(), Some("<D:href xmlns:D=\"DAV:\">http://x</D:href>"));
    }

    #[test]
    fn text_owner_is_escaped_text() {
        let info = lockinfo(&format!("<D:owner>litmus test suite</D:owner>{WRITE_EXCLUSIVE}"));
        assert_eq!(info.unwrap().unwrap().owner.as_deref(), Some("litmus test suite"));
        let info = lockinfo(&format!("<D:owner>a &amp; &lt;b&gt;</D:owner>{WRITE_EXCLUSIVE}"));
        assert_eq!(info.unwrap().unwrap().owner.as_deref(), Some("a &amp; &lt;b&gt;"));
    }

    #[test]
    fn shared_lock_without_owner() {
        let body = "<D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner/>";
        let info = lockinfo(body).unwrap().unwrap();
        assert_eq!(info, LockInfo { scope: LockScope::Shared, owner: None });
    }

    #[test]
    fn lockinfo_needs_scope_and_write_type() {
        let no_scope = lockinfo("<D:locktype><D:write/></D:locktype>");
        let no_type = lockinfo("<D:lockscope><D:exclusive/></D:lockscope>");
        let other_type = lockinfo("<D:lockscope><D:shared/></D:lockscope><D:locktype><D:read/></D:locktype>");
        for result in [no_scope, no_type, other_type] {
            assert!(matches!(result, Err(XmlError::Malformed(_))), "{result:?}");
        }
    }
}
