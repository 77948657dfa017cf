//! The XML WeChat sends: flat `<xml><Field>value</Field>…</xml>` documents.
//!
//! quick-xml expands no entities from a DTD, but any `<!DOCTYPE` is refused
//! outright (SPEC §5), before parsing and again if the parser meets one.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::Event;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("a document type declaration (<!DOCTYPE) is not accepted")]
    Doctype,
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// The text of every child element of the root, by name. Text is trimmed
/// (WeChat's own samples put spaces around CDATA); deeper elements are
/// ignored.
pub fn fields(xml: &str) -> Result<HashMap<String, String>, XmlError> {
    if xml.to_ascii_lowercase().contains("<!doctype") {
        return Err(XmlError::Doctype);
    }
    let mut reader = Reader::from_str(xml);
    let mut out = HashMap::new();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut saw_root = false;
    loop {
        let event = reader.read_event().map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(e) => {
                if path.is_empty() {
                    if saw_root {
                        return Err(XmlError::Malformed("more than one root element".into()));
                    }
                    saw_root = true;
                }
                path.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
                text.clear();
            }
            Event::Empty(e) if path.len() == 1 => {
                out.insert(String::from_utf8_lossy(e.name().as_ref()).into_owned(), String::new());
            }
            Event::Text(t) if path.len() == 2 => {
                text.push_str(&t.unescape().map_err(|e| XmlError::Malformed(e.to_string()))?);
            }
            Event::CData(c) if path.len() == 2 => {
                text.push_str(std::str::from_utf8(&c).map_err(|e| XmlError::Malformed(e.to_string()))?);
            }
            Event::End(_) => {
                if path.len() == 2 {
                    out.insert(path[1].clone(), text.trim().to_owned());
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root || !path.is_empty() {
        return Err(XmlError::Malformed("no complete root element".into()));
    }
    Ok(out)
}

/// Nesting deeper than this is refused: bounded work and stack.
const MAX_DEPTH: usize = 32;

/// The whole message as JSON: each child element of the root by name, its
/// text as a string, or an object when it has elements of its own; a name
/// that repeats becomes an array. Text is trimmed as in [`fields`].
pub fn tree(xml: &str) -> Result<serde_json::Map<String, serde_json::Value>, XmlError> {
    use serde_json::{Map, Value};
    if xml.to_ascii_lowercase().contains("<!doctype") {
        return Err(XmlError::Doctype);
    }
    fn put(into: &mut Map<String, Value>, name: String, v: Value) {
        match into.get_mut(&name) {
            Some(Value::Array(a)) => a.push(v),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, v]);
            }
            None => {
                into.insert(name, v);
            }
        }
    }
    let malformed = |e: String| XmlError::Malformed(e);
    let mut reader = Reader::from_str(xml);
    // (name, child elements, text) of each open element; [0] is the root.
    let mut stack: Vec<(String, Map<String, Value>, String, bool)> = Vec::new();
    let mut root: Option<Map<String, Value>> = None;
    loop {
        match reader.read_event().map_err(|e| malformed(e.to_string()))? {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(e) => {
                if stack.is_empty() && root.is_some() {
                    return Err(malformed("more than one root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                stack.push((name, Map::new(), String::new(), false));
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                match stack.last_mut() {
                    Some(top) => {
                        top.3 = true;
                        put(&mut top.1, name, Value::from(""));
                    }
                    None if root.is_none() => root = Some(Map::new()),
                    None => return Err(malformed("more than one root element".into())),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.2.push_str(&t.unescape().map_err(|e| malformed(e.to_string()))?);
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.2
                        .push_str(std::str::from_utf8(&c).map_err(|e| malformed(e.to_string()))?);
                }
            }
            Event::End(_) => {
                let Some((name, children, text, has_children)) = stack.pop() else {
                    return Err(malformed("an end tag with no start".into()));
                };
                let v = if has_children {
                    Value::Object(children)
                } else {
                    Value::from(text.trim())
                };
                match stack.last_mut() {
                    Some(parent) => {
                        parent.3 = true;
                        put(&mut parent.1, name, v);
                    }
                    None => {
                        root = Some(match v {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        })
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match root {
        Some(r) if stack.is_empty() => Ok(r),
        _ => Err(malformed("no complete root element".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flat_fields_with_cdata_and_spaces() {
        let f = fields(
            "<xml><SuiteId><![CDATA[ww4]]></SuiteId><InfoType> <![CDATA[suite_ticket]]></InfoType>\
             <TimeStamp>1403610513</TimeStamp><Empty/><Nested><A>x</A></Nested></xml>",
        )
        .unwrap();
        assert_eq!(f["SuiteId"], "ww4");
        assert_eq!(f["InfoType"], "suite_ticket", "trimmed as WeChat's own sample needs");
        assert_eq!(f["TimeStamp"], "1403610513");
        assert_eq!(f["Empty"], "");
        assert!(!f.contains_key("A"));
    }

    #[test]
    fn tree_keeps_nested_and_repeated_elements() {
        let t = tree(
            "<xml><InfoType><![CDATA[change_contact]]></InfoType><Empty/>\
             <ExtAttr><Item><Name>a</Name></Item><Item><Name>b</Name></Item></ExtAttr></xml>",
        )
        .unwrap();
        assert_eq!(t["InfoType"], "change_contact");
        assert_eq!(t["Empty"], "");
        assert_eq!(t["ExtAttr"]["Item"], serde_json::json!([{"Name": "a"}, {"Name": "b"}]));
        assert_eq!(tree("<xml><!DOCTYPE x></xml>"), Err(XmlError::Doctype));
        assert!(tree("<xml><A></xml>").is_err());
        assert!(tree("<a/><b/>").is_err());
        let deep = format!("<xml>{}{}</xml>", "<a>".repeat(40), "</a>".repeat(40));
        assert!(matches!(tree(&deep), Err(XmlError::Malformed(_))));
    }

    #[test]
    fn refuses_doctype_and_garbage() {
        let xxe =
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><A>&e;</A></xml>";
        assert_eq!(fields(xxe), Err(XmlError::Doctype));
        assert_eq!(fields("<!doctype html><xml/>"), Err(XmlError::Doctype));
        assert!(matches!(fields("<xml><A>unclosed</xml>"), Err(XmlError::Malformed(_))));
        assert!(matches!(fields("not xml"), Err(XmlError::Malformed(_))));
        assert!(matches!(fields(""), Err(XmlError::Malformed(_))));
        assert!(matches!(
            fields("<xml><A>&bogus;</A></xml>"),
            Err(XmlError::Malformed(_))
        ));
    }
}
