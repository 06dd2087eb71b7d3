//! The HTML of a collection's page. Everything a user can name (file names, paths) goes
//! through [`escape`]; links are percent-encoded hrefs. The page works without JavaScript:
//! breadcrumbs, sort links and download links are plain anchors; the upload, new folder,
//! rename and delete controls are marked `js-only` and shown by the script.

use std::fmt::Write;

use dav_model::identity::Allowed;
use dav_model::{DavPath, Entry, Resource};

use super::{assets, Sort};
use crate::dav::multistatus::escape;
use crate::dav::props::content_type;
use crate::dav::time::write_rfc3339;
use crate::dav::uri::href;

/// What the page offers: only the actions the principal may take, so a read-only share shows
/// no Upload, New folder, Rename or Delete (the server would refuse them anyway).
pub struct Offer {
    pub here: Allowed,
    /// One per member, in the same order.
    pub members: Vec<Allowed>,
}

/// The whole page for the collection at `path`, whose members come already sorted.
pub fn render(path: &DavPath, members: &[Entry], sort: Sort, desc: bool, offer: &Offer) -> String {
    let mut h = String::with_capacity(2048 + members.len() * 400);
    let here = href(path, true);
    let title = escape(path.name().unwrap_or("Home")).into_owned();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · Wharf</title><link rel=\"icon\" href=\"{icon}\"><link rel=\"stylesheet\" href=\"{css}\">\
<script src=\"{js}\" defer></script></head>\n<body>\n<header>",
        icon = escape(&assets::url("favicon.svg")),
        css = escape(&assets::url("app.css")),
        js = escape(&assets::url("app.js")),
    );
    breadcrumbs(&mut h, path);
    toolbar(&mut h, path, offer.here.create_inside);
    let writable = if offer.here.create_inside { "1" } else { "0" };
    let _ = write!(h, "</header>\n<main id=\"drop\" data-dir=\"{}\" data-write=\"{writable}\">\n", escape(&here));
    h.push_str(
        "<div id=\"messages\" role=\"alert\" aria-live=\"assertive\"></div>\n\
<section id=\"uploads\" hidden><div class=\"overall\"><span>All uploads</span>\
<progress id=\"overall\" max=\"1\" value=\"0\"></progress><span id=\"overall-text\"></span>\
<button type=\"button\" id=\"cancel-all\">Cancel all</button></div><ul id=\"upload-list\"></ul></section>\n",
    );
    if offer.here.create_inside {
        h.push_str("<p class=\"hint js-only\">Drop files anywhere on this page to upload them here.</p>\n");
    }
    table(&mut h, members, sort, desc, &offer.members);
    h.push_str("</main>\n");
    dialog(&mut h);
    h.push_str("</body></html>\n");
    h
}

fn breadcrumbs(h: &mut String, path: &DavPath) {
    let home = escape(&href(&DavPath::root(), true)).into_owned();
    let _ = write!(h, "<nav class=\"crumbs\" aria-label=\"Breadcrumbs\"><a href=\"{home}\">Home</a>");
    let mut at = DavPath::default();
    for seg in path.segments() {
        at = at.join(seg).unwrap_or(at);
        let _ = write!(h, "<span class=\"sep\">/</span><a href=\"{}\">{}</a>", escape(&href(&at, true)), escape(seg));
    }
    h.push_str("</nav>\n");
}

fn toolbar(h: &mut String, path: &DavPath, create: bool) {
    let zip = format!("{}?download=zip", href(path, true));
    let _ = write!(
        h,
        "<div class=\"tools\"><a class=\"button\" id=\"zip\" href=\"{}\" download>Download folder as zip</a>",
        escape(&zip)
    );
    if create {
        h.push_str(
            "<button type=\"button\" id=\"mkdir\" class=\"js-only\">New folder</button>\
<label class=\"button js-only\" id=\"pick-label\">Upload files<input type=\"file\" id=\"pick\" multiple></label>",
        );
    }
    h.push_str("</div>\n");
}

fn table(h: &mut String, members: &[Entry], sort: Sort, desc: bool, allowed: &[Allowed]) {
    h.push_str("<table id=\"listing\"><thead><tr>");
    for (col, label) in [(Sort::Name, "Name"), (Sort::Size, "Size"), (Sort::Modified, "Modified")] {
        let active = col == sort;
        let next = if active && !desc { "desc" } else { "asc" };
        let (aria, arrow) = match (active, desc) {
            (false, _) => ("none", ""),
            (true, false) => ("ascending", " ▲"),
            (true, true) => ("descending", " ▼"),
        };
        let c = col.as_str();
        let _ = write!(
            h,
            "<th class=\"{c}\" aria-sort=\"{aria}\"><a href=\"?sort={c}&amp;order={next}\">{label}{arrow}</a></th>"
        );
    }
    h.push_str("<th class=\"actions\">Actions</th></tr></thead>\n<tbody>\n");
    for (n, e) in members.iter().enumerate() {
        row(h, &e.resource, allowed.get(n).copied().unwrap_or_default());
    }
    h.push_str("</tbody></table>\n");
    let empty = if members.is_empty() { "" } else { " hidden" };
    let _ = writeln!(h, "<p id=\"empty\"{empty}>This folder is empty.</p>");
}

fn row(h: &mut String, r: &Resource, allowed: Allowed) {
    let link = escape(&href(&r.path, r.is_collection)).into_owned();
    let name = escape(r.name()).into_owned();
    let (kind, size, download) = if r.is_collection {
        ("dir", "—".to_owned(), format!("{link}?download=zip"))
    } else {
        ("file", human_size(r.size), format!("{link}?download=1"))
    };
    let slash = if r.is_collection { "/" } else { "" };
    let _ = write!(
        h,
        "<tr class=\"{kind}\" data-name=\"{name}\" data-href=\"{link}\">\
<td class=\"name\"><a class=\"icon i-{icon}\" href=\"{link}\">{name}{slash}</a></td>\
<td class=\"size\" data-bytes=\"{bytes}\" title=\"{bytes} bytes\">{size}</td><td class=\"modified\">",
        icon = icon(r),
        bytes = r.size,
    );
    modified(h, r.modified_ns);
    let _ = write!(h, "</td><td class=\"actions\"><a href=\"{download}\" download>Download</a>");
    if let Some(opened) = archive_view(r) {
        let _ = write!(h, "<a class=\"archive\" href=\"{}\">Browse</a>", escape(&href(&opened, true)));
    }
    if allowed.rename {
        h.push_str("<button type=\"button\" class=\"js-only\" data-act=\"rename\">Rename</button>");
    }
    if allowed.delete {
        h.push_str("<button type=\"button\" class=\"js-only danger\" data-act=\"delete\">Delete</button>");
    }
    h.push_str("</td></tr>\n");
}

/// Where an archive file opens as a folder (`NAME!/`), if it is one by its name.
fn archive_view(r: &Resource) -> Option<DavPath> {
    let name = r.name();
    if r.is_collection || wharf_backends::archive::Format::from_name(name).is_none() {
        return None;
    }
    r.path.parent()?.join(&format!("{name}!")).ok()
}

/// `<time>` with the exact instant, shown as `YYYY-MM-DD hh:mm UTC`.
fn modified(h: &mut String, ns: i64) {
    let mut iso = String::new();
    write_rfc3339(&mut iso, ns);
    let shown = iso.get(..16).unwrap_or(&iso).replace('T', " ");
    let _ = write!(h, "<time datetime=\"{iso}\">{shown} UTC</time>");
}

/// The dialog the script uses for new folder, rename and delete confirmations.
fn dialog(h: &mut String) {
    h.push_str(
        "<dialog id=\"dialog\"><form id=\"dialog-form\" method=\"dialog\"><p id=\"dialog-text\"></p>\
<input id=\"dialog-input\" name=\"value\" autocomplete=\"off\">\
<div class=\"buttons\"><button type=\"button\" id=\"dialog-cancel\">Cancel</button>\
<button type=\"submit\" id=\"dialog-ok\">OK</button></div></form></dialog>\n",
    );
}

/// A CSS icon class from the content type, then the extension.
fn icon(r: &Resource) -> &'static str {
    if r.is_collection {
        return "folder";
    }
    let ct = content_type(r);
    let ext = r.name().rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match (ct.split('/').next().unwrap_or(""), ext.as_str()) {
        ("image", _) => "image",
        ("audio", _) => "audio",
        ("video", _) => "video",
        (_, "pdf") => "pdf",
        (_, "zip" | "gz" | "tgz" | "xz" | "bz2" | "zst" | "7z" | "rar" | "tar") => "archive",
        (
            _,
            "rs" | "js" | "ts" | "py" | "c" | "h" | "cpp" | "go" | "java" | "sh" | "json" | "toml" | "yaml" | "yml",
        ) => "code",
        ("text", _) => "text",
        _ => "file",
    }
}

/// Sizes in binary units: `999 B`, `1.5 KiB`, `12 MiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(20 * 1024 * 1024), "20 MiB");
        assert_eq!(human_size(u64::MAX), "16 EiB");
    }
}
