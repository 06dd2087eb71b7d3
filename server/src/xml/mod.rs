//! XML bodies of the WebDAV protocol: request parsing here; response writing lives in
//! its own module next to it.

mod capture;
pub mod request;

pub use request::*;

/// An independent re-reading of XML produced by this module, so tests compare meaning
/// (expanded names, attribute values, text) rather than one particular serialisation.
#[cfg(test)]
pub(crate) mod test_util {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    use quick_xml::NsReader;

    /// Renders `xml` with every name as `{namespace}local`, namespace declarations
    /// dropped, attributes sorted, references resolved and empty elements expanded.
    /// Panics unless `xml` is one namespace-well-formed element.
    pub fn expanded(xml: &str) -> String {
        let mut reader = NsReader::from_str(xml);
        reader.config_mut().expand_empty_elements = true;
        let (mut out, mut depth, mut roots) = (String::new(), 0usize, 0usize);
        loop {
            let (ns, event) = reader.read_resolved_event().expect("well-formed");
            let ns = uri(ns);
            match event {
                Event::Start(e) => {
                    let local = String::from_utf8(e.local_name().as_ref().to_vec()).expect("utf-8");
                    let mut attrs: Vec<String> = e
                        .attributes()
                        .map(|a| a.expect("attribute"))
                        .filter(|a| a.key.as_namespace_binding().is_none())
                        .map(|a| {
                            let (ans, alocal) = reader.resolve_attribute(a.key);
                            let alocal = String::from_utf8_lossy(alocal.as_ref()).into_owned();
                            let value = a.unescape_value().expect("value");
                            format!(" {{{}}}{alocal}={value:?}", uri(ans))
                        })
                        .collect();
                    attrs.sort();
                    out.push_str(&format!("<{{{ns}}}{local}{}>", attrs.concat()));
                    depth += 1;
                    roots += usize::from(depth == 1);
                }
                Event::End(e) => {
                    let local = String::from_utf8(e.local_name().as_ref().to_vec()).expect("utf-8");
                    out.push_str(&format!("</{{{ns}}}{local}>"));
                    depth -= 1;
                }
                Event::Text(t) => out.push_str(&t.xml10_content().expect("text")),
                Event::GeneralRef(r) => match r.resolve_char_ref().expect("char ref") {
                    Some(c) => out.push(c),
                    None => out.push_str(
                        quick_xml::escape::resolve_xml_entity(&r.decode().expect("name")).expect("predefined entity"),
                    ),
                },
                Event::Eof => break,
                other => panic!("unexpected {other:?} in {xml}"),
            }
        }
        assert_eq!((depth, roots), (0, 1), "not a single element: {xml}");
        out
    }

    fn uri(ns: ResolveResult<'_>) -> String {
        match ns {
            ResolveResult::Bound(ns) => String::from_utf8(ns.0.to_vec()).expect("utf-8"),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => panic!("unbound prefix {p:?}"),
        }
    }
}
