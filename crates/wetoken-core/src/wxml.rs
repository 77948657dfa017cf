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
