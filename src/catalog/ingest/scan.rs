//! What the files of an ingest are: paths, directories and globs expanded
//! into files, and each file read just far enough to know what it is — an
//! image with its header, a catalog (FITS_LDAC with its image header, a
//! FITS table, CSV), a SWarp XML run record, a SCAMP `.head` astrometric
//! solution, or something ingest leaves alone (with the reason).
//!
//! Nothing here decides a class or an edge: that is `infer`'s job. Reading
//! is the fallible part, so every error names the file and, for FITS, the
//! HDU.

use super::tables::{self, TableFormat};
use crate::imaging::fits::{self, Card};
use crate::imaging::wcs::{Header, KeywordSource, Wcs, WcsKeywords};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// File name endings of FITS files (compressed ones included).
const FITS_SUFFIXES: &[&str] = &[".fits", ".fit", ".fts", ".fits.fz", ".fz"];
/// File name endings of catalogs that are FITS inside.
const CATALOG_SUFFIXES: &[&str] = &[".cat", ".ldac"];

/// One input file and what it is.
#[derive(Debug, Clone)]
pub struct ScannedFile {
    /// Absolute, canonical path.
    pub path: PathBuf,
    /// Its file name.
    pub name: String,
    /// Named by the user (not met while walking a directory).
    pub explicit: bool,
    /// What it holds.
    pub content: Content,
}

/// What a file holds.
#[derive(Debug, Clone)]
pub enum Content {
    /// An image HDU with its header.
    Image {
        /// The HDU (0 = primary).
        hdu: usize,
        /// Its header cards.
        cards: Vec<Card>,
    },
    /// A source catalog.
    Catalog {
        /// Its format.
        format: TableFormat,
        /// The HDU of the table (FITS formats).
        hdu: usize,
        /// The image header a FITS_LDAC catalog carries (`LDAC_IMHEAD`).
        image_header: Option<Vec<Card>>,
    },
    /// A SWarp run record (`WRITE_XML Y`).
    SwarpXml(SwarpRun),
    /// A SCAMP `.head` astrometric solution.
    ScampHead(Vec<Card>),
    /// Left alone, with the reason.
    Ignored(String),
}

/// What one SWarp run read and wrote, from its XML metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwarpRun {
    /// Input image file names, in order.
    pub inputs: Vec<String>,
    /// The coadd it wrote (`ImageOut_Name`) when it combined.
    pub coadd: Option<String>,
    /// Whether it combined the inputs (`Combine`).
    pub combine: bool,
    /// The suffix of resampled images (`Resample_Suffix`).
    pub resample_suffix: String,
}

/// A file that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, naming the HDU where there is one.
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Expands `args` (files, directories walked recursively, glob patterns)
/// into a sorted, duplicate-free list of files. A named file or pattern
/// that matches nothing is an error; files met while walking a directory
/// are `explicit = false` (a stray file there is ignored, not an error).
pub fn expand(args: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>, FileError> {
    let mut out: BTreeSet<(PathBuf, bool)> = BTreeSet::new();
    for arg in args {
        let text = arg.to_string_lossy();
        if !arg.exists() && text.contains(['*', '?', '[']) {
            let paths = glob::glob(&text).map_err(|e| FileError {
                path: arg.clone(),
                message: format!("not a valid glob pattern: {e}"),
            })?;
            let mut any = false;
            for p in paths {
                let p = p.map_err(|e| FileError {
                    path: arg.clone(),
                    message: e.to_string(),
                })?;
                any = true;
                add(&p, true, &mut out)?;
            }
            if !any {
                return Err(FileError {
                    path: arg.clone(),
                    message: "the pattern matches no file".into(),
                });
            }
        } else {
            add(arg, true, &mut out)?;
        }
    }
    // A file both named and met in a directory counts as named.
    let named: BTreeSet<PathBuf> = out.iter().filter(|e| e.1).map(|e| e.0.clone()).collect();
    Ok(out
        .into_iter()
        .filter(|(p, explicit)| *explicit || !named.contains(p))
        .collect())
}

fn add(p: &Path, explicit: bool, out: &mut BTreeSet<(PathBuf, bool)>) -> Result<(), FileError> {
    let bad = |e: std::io::Error| FileError {
        path: p.to_path_buf(),
        message: e.to_string(),
    };
    let canon = p.canonicalize().map_err(bad)?;
    if canon.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&canon)
            .map_err(bad)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(bad)?;
        entries.sort();
        for e in entries {
            // Hidden files and directories (`.git`, editor files) are not
            // products.
            if e.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            add(&e, false, out)?;
        }
    } else {
        out.insert((canon, explicit));
    }
    Ok(())
}

fn has_suffix(name: &str, suffixes: &[&str]) -> bool {
    let lower = name.to_ascii_lowercase();
    suffixes.iter().any(|s| lower.ends_with(s))
}

/// The file name without its FITS or catalog ending (`a.fits.fz` → `a`,
/// `a.resamp.fits` → `a.resamp`).
pub fn stem(name: &str) -> &str {
    let lower = name.to_ascii_lowercase();
    for s in [
        ".fits.fz", ".fits.gz", ".fits", ".fit", ".fts", ".fz", ".imh", ".cat", ".ldac", ".csv",
    ] {
        if lower.ends_with(s) {
            return &name[..name.len() - s.len()];
        }
    }
    name
}

fn starts_as_fits(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut buf = [0u8; 30];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut buf)?;
    Ok(n == 30 && buf.starts_with(b"SIMPLE  =") && buf[29] == b'T')
}

/// Reads what `path` is. `explicit` says the user named the file: an
/// unrecognised named file is an error, one met in a directory is ignored.
pub fn scan(path: &Path, explicit: bool) -> Result<ScannedFile, FileError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fail = |message: String| FileError {
        path: path.to_path_buf(),
        message,
    };
    let lower = name.to_ascii_lowercase();
    let content = if lower.ends_with(".xml") {
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        match parse_swarp_xml(&text).map_err(fail)? {
            Some(run) => Content::SwarpXml(run),
            None => Content::Ignored("an XML file that is not a SWarp run record".into()),
        }
    } else if lower.ends_with(".head") {
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let cards = fits::parse_header_lines(&text);
        if cards.is_empty() {
            return Err(fail("a .head file with no header cards".into()));
        }
        Content::ScampHead(cards)
    } else if lower.ends_with(".csv") {
        Content::Catalog {
            format: TableFormat::Csv,
            hdu: 0,
            image_header: None,
        }
    } else if starts_as_fits(path).map_err(|e| fail(e.to_string()))? {
        scan_fits(path).map_err(fail)?
    } else if explicit || has_suffix(&name, FITS_SUFFIXES) || has_suffix(&name, CATALOG_SUFFIXES) {
        // A FITS name (or a named file) that does not start as FITS is
        // damaged or mislabelled: say so rather than skip it.
        return Err(fail(
            "not a FITS file (it does not start with SIMPLE = T), nor a CSV catalog, \
             SWarp XML or SCAMP .head"
                .into(),
        ));
    } else {
        Content::Ignored("not a FITS file, catalog, SWarp XML or SCAMP .head".into())
    };
    Ok(ScannedFile {
        path: path.to_path_buf(),
        name,
        explicit,
        content,
    })
}

fn scan_fits(path: &Path) -> Result<Content, String> {
    let n = fits::hdu_count(path).map_err(|e| e.to_string())?;
    let mut headers = Vec::with_capacity(n);
    for hdu in 0..n {
        let cards = fits::read_header(path, hdu).map_err(|e| format!("HDU {hdu}: {e}"))?;
        headers.push(cards);
    }
    let h: Vec<Header> = headers.iter().map(|c| Header::new(c)).collect();
    let extname = |i: usize| {
        h[i].text("EXTNAME")
            .unwrap_or_default()
            .to_ascii_uppercase()
    };
    // wisecut records one image per file; a multi-extension file (one HDU
    // per chip) would otherwise lose all chips but the first without a word.
    let objects: Vec<usize> = (0..n).filter(|&i| extname(i) == "LDAC_OBJECTS").collect();
    if objects.len() > 1 {
        return Err(format!(
            "a FITS_LDAC catalog of {} image extensions (HDUs {objects:?}): wisecut ingests one \
             catalog per file; split it per extension (e.g. ldactoasc, or SExtractor on each \
             extension) first",
            objects.len()
        ));
    }
    let is_image = |i: usize| {
        let naxis = h[i].number("NAXIS").unwrap_or(0.0) as usize;
        let plain = (i == 0 || h[i].text("XTENSION").is_some_and(|x| x.trim() == "IMAGE"))
            && naxis >= 2
            && (1..=naxis).all(|k| h[i].number(&format!("NAXIS{k}")).is_some_and(|v| v > 0.0));
        plain || h[i].get("ZIMAGE").is_some() || h[i].get("ZNAXIS").is_some()
    };
    let images: Vec<usize> = (0..n).filter(|&i| is_image(i)).collect();
    if objects.is_empty() && images.len() > 1 {
        return Err(format!(
            "a multi-extension file of {} images (HDUs {images:?}): wisecut ingests one image \
             per file; split it first (e.g. missfits -OUTFILE_TYPE SPLIT)",
            images.len()
        ));
    }
    if let Some(&objects) = objects.first() {
        let image_header = tables::ldac_image_cards(path, objects).map_err(|e| e.to_string())?;
        return Ok(Content::Catalog {
            format: TableFormat::Ldac,
            hdu: objects,
            image_header,
        });
    }
    // cfitsio finds the first image, a tile-compressed one included (its
    // header is then the image's, not the table's that holds it).
    if let Ok(i) = fits::first_image_hdu(path) {
        let info = fits::image_info(path, i).map_err(|e| format!("HDU {i}: {e}"))?;
        if info.width > 0 && info.height > 0 {
            let cards = fits::read_header(path, i).map_err(|e| format!("HDU {i}: {e}"))?;
            // A truncated file keeps an intact header: reading the last row
            // (the last tile of a compressed image) finds it cheaply.
            fits::read_region::<f32>(path, i, 0, info.height - 1, info.width, 1).map_err(|e| {
                format!("HDU {i}: the image data are incomplete or unreadable: {e}")
            })?;
            // A WCS that does not parse is the file's problem, said here
            // so `--keep-going` can leave the file out.
            let h = Header::new(&cards);
            if let Some(k) = WcsKeywords::from_header(&h)
                .map_err(|e| format!("HDU {i}: its WCS does not parse: {e}"))?
            {
                Wcs::new(&k, info.width, info.height)
                    .map_err(|e| format!("HDU {i}: its WCS does not parse: {e}"))?;
            }
            return Ok(Content::Image { hdu: i, cards });
        }
    }
    if let Some(t) = (1..n).find(|&i| {
        h[i].text("XTENSION")
            .is_some_and(|x| x.trim() == "BINTABLE")
    }) {
        return Ok(Content::Catalog {
            format: TableFormat::FitsTable,
            hdu: t,
            image_header: None,
        });
    }
    Err(format!(
        "no image or table in its {n} HDU{}",
        if n == 1 { "" } else { "s" }
    ))
}

/// Reads a SWarp XML run record: `None` when the XML is not one.
pub fn parse_swarp_xml(text: &str) -> Result<Option<SwarpRun>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not well-formed XML: {e}"))?;
    let is_swarp = doc.descendants().any(|n| {
        (n.has_tag_name("RESOURCE") || n.has_tag_name("PARAM") || n.has_tag_name("INFO"))
            && n.attributes()
                .any(|a| a.value().eq_ignore_ascii_case("swarp"))
    });
    if !is_swarp {
        return Ok(None);
    }
    let param = |name: &str| {
        doc.descendants()
            .filter(|n| n.has_tag_name("PARAM"))
            .find(|n| {
                n.attribute("name")
                    .is_some_and(|v| v.eq_ignore_ascii_case(name))
            })
            .and_then(|n| n.attribute("value"))
            .map(str::trim)
            .map(str::to_owned)
    };
    let mut run = SwarpRun {
        combine: param("Combine").is_none_or(|v| v.eq_ignore_ascii_case("T")),
        coadd: param("ImageOut_Name"),
        resample_suffix: param("Resample_Suffix").unwrap_or_else(|| ".resamp.fits".into()),
        inputs: Vec::new(),
    };
    // The input images are the `Image_Name` column of the table that has
    // one (SWarp's `Input_Image_Data`).
    for table in doc.descendants().filter(|n| n.has_tag_name("TABLE")) {
        let fields: Vec<String> = table
            .children()
            .filter(|n| n.has_tag_name("FIELD"))
            .map(|n| n.attribute("name").unwrap_or_default().to_owned())
            .collect();
        let Some(col) = fields
            .iter()
            .position(|f| f.eq_ignore_ascii_case("Image_Name"))
        else {
            continue;
        };
        for tr in table.descendants().filter(|n| n.has_tag_name("TR")) {
            if let Some(td) = tr.children().filter(|n| n.has_tag_name("TD")).nth(col) {
                let v = td.text().unwrap_or_default().trim();
                if !v.is_empty() {
                    run.inputs.push(v.to_owned());
                }
            }
        }
    }
    if run.inputs.is_empty() {
        return Err("a SWarp XML record that lists no input image (no Image_Name column)".into());
    }
    if !run.combine {
        run.coadd = None;
    }
    Ok(Some(run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_drop_fits_and_catalog_endings() {
        assert_eq!(stem("a.fits"), "a");
        assert_eq!(stem("a.fits.fz"), "a");
        assert_eq!(stem("a.resamp.fits"), "a.resamp");
        assert_eq!(stem("red_001.cat"), "red_001");
        assert_eq!(stem("notes.txt"), "notes.txt");
    }

    #[test]
    fn a_swarp_record_gives_its_inputs_and_coadd() {
        let xml = r#"<?xml version="1.0"?>
<VOTABLE><RESOURCE ID="SWarp" name="SWarp">
<TABLE ID="Input_Image_Data" name="Input_Image_Data">
<FIELD name="Frame_Index" datatype="int"/><FIELD name="Image_Name" datatype="char" arraysize="*"/>
<DATA><TABLEDATA><TR><TD>1</TD><TD>red_1.fits</TD></TR><TR><TD>2</TD><TD>red_2.fits</TD></TR></TABLEDATA></DATA>
</TABLE>
<RESOURCE ID="Config" name="Config">
<PARAM name="ImageOut_Name" datatype="char" arraysize="*" value="coadd.fits"/>
<PARAM name="Combine" datatype="boolean" value="T"/>
</RESOURCE></RESOURCE></VOTABLE>"#;
        let run = parse_swarp_xml(xml).unwrap().unwrap();
        assert_eq!(run.inputs, ["red_1.fits", "red_2.fits"]);
        assert_eq!(run.coadd.as_deref(), Some("coadd.fits"));
        assert_eq!(run.resample_suffix, ".resamp.fits");
        let resample_only = xml.replace(
            r#"name="Combine" datatype="boolean" value="T""#,
            r#"name="Combine" datatype="boolean" value="F""#,
        );
        let run = parse_swarp_xml(&resample_only).unwrap().unwrap();
        assert!(!run.combine && run.coadd.is_none());
        assert!(
            parse_swarp_xml("<VOTABLE><RESOURCE name=\"other\"/></VOTABLE>")
                .unwrap()
                .is_none()
        );
        assert!(parse_swarp_xml("<VOTABLE").is_err());
    }
}
