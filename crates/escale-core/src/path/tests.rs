use std::path::{Component, Path, PathBuf};

use proptest::prelude::*;

use super::*;

/// A path the test knows is valid.
fn path(text: &str) -> RelPath {
    RelPath::new(text).unwrap_or_else(|e| panic!("{text:?} should be valid: {e}"))
}

/// The variant name, so tables can say which rule refused a path.
fn variant(error: &PathError) -> &'static str {
    match error {
        PathError::Empty => "Empty",
        PathError::Absolute { .. } => "Absolute",
        PathError::ParentComponent { .. } => "ParentComponent",
        PathError::CurrentComponent { .. } => "CurrentComponent",
        PathError::Nul { .. } => "Nul",
        PathError::Backslash { .. } => "Backslash",
        PathError::ControlCharacter { .. } => "ControlCharacter",
        PathError::ForbiddenCharacter { .. } => "ForbiddenCharacter",
        PathError::ReservedName { .. } => "ReservedName",
        PathError::TrailingDotOrSpace { .. } => "TrailingDotOrSpace",
        PathError::TooLong { .. } => "TooLong",
        PathError::NotUtf8 { .. } => "NotUtf8",
        PathError::Outside { .. } => "Outside",
        PathError::WorkFolder { .. } => "WorkFolder",
    }
}

#[test]
fn ordinary_paths_are_accepted() {
    for text in [
        "a",
        "report.docx",
        "Dossiers clients/2026/Facture n°12 (copie).pdf",
        "sub/.escale",
        "sub/.escale/state",
        ".escaleignore",
        ".escale-notes",
        "escale~x",
        ".hidden/.config",
        "a.b.c/d e f",
        " leading space",
        "été/naïve 漢字 😀.txt",
        "con-tract.txt",
        "console.log",
        "com10",
        "lpt",
        "COMMIT",
        "auxiliary.txt",
        "nul_file",
        "~$lock.docx",
        "a/b/c/d/e/f/g",
    ] {
        assert_eq!(path(text).as_str(), text);
    }
}

#[test]
fn hostile_paths_are_refused_by_the_right_rule() {
    let long_name = "x".repeat(256);
    let long_path = ["abcdefgh"; 460].join("/");
    let cases: &[(&str, &str)] = &[
        ("", "Empty"),
        ("../x", "ParentComponent"),
        ("..", "ParentComponent"),
        ("a/../../x", "ParentComponent"),
        ("a/..", "ParentComponent"),
        ("a./..", "ParentComponent"),
        ("/etc/passwd", "Absolute"),
        ("/", "Absolute"),
        ("//server/share", "Absolute"),
        ("C:\\x", "Absolute"),
        ("C:", "Absolute"),
        ("c:x", "Absolute"),
        ("\\\\server\\share\\x", "Absolute"),
        ("\\x", "Absolute"),
        ("a\\b", "Backslash"),
        ("a\0b", "Nul"),
        ("\0", "Nul"),
        ("a\nb", "ControlCharacter"),
        ("a\tb", "ControlCharacter"),
        ("a\u{1b}[31mred", "ControlCharacter"),
        ("a\u{7f}", "ControlCharacter"),
        (".", "CurrentComponent"),
        ("./a", "CurrentComponent"),
        ("a/./b", "CurrentComponent"),
        ("a//b", "CurrentComponent"),
        ("a/", "CurrentComponent"),
        ("CON", "ReservedName"),
        ("con", "ReservedName"),
        ("aux.txt", "ReservedName"),
        ("aux.tar.gz", "ReservedName"),
        ("Aux.TXT", "ReservedName"),
        ("x/LPT1.log", "ReservedName"),
        ("PRN", "ReservedName"),
        ("nul.txt", "ReservedName"),
        ("COM1", "ReservedName"),
        ("com9.txt", "ReservedName"),
        ("COM0", "ReservedName"),
        ("LPT9", "ReservedName"),
        ("COM\u{b9}", "ReservedName"),
        ("lpt\u{b2}.txt", "ReservedName"),
        ("LPT\u{b3}", "ReservedName"),
        ("con .txt", "ReservedName"),
        ("CONIN$", "ReservedName"),
        ("conout$.log", "ReservedName"),
        ("a./b", "TrailingDotOrSpace"),
        ("a/b.", "TrailingDotOrSpace"),
        ("a /b", "TrailingDotOrSpace"),
        ("...", "TrailingDotOrSpace"),
        (" ", "TrailingDotOrSpace"),
        ("a<b", "ForbiddenCharacter"),
        ("a>b", "ForbiddenCharacter"),
        ("dir/a:b", "ForbiddenCharacter"),
        ("1:b", "ForbiddenCharacter"),
        ("file::$DATA", "ForbiddenCharacter"),
        ("say \"hi\"", "ForbiddenCharacter"),
        ("a|b", "ForbiddenCharacter"),
        ("what?", "ForbiddenCharacter"),
        ("*.txt", "ForbiddenCharacter"),
        (&long_name, "TooLong"),
        (&long_path, "TooLong"),
        (".escale", "WorkFolder"),
        (".escale/state", "WorkFolder"),
        (".ESCALE/state", "WorkFolder"),
        (".Escale", "WorkFolder"),
        (".e\u{200c}scale/x", "WorkFolder"),
        ("\u{feff}.escale/x", "WorkFolder"),
        ("ESCALE~1/versions", "WorkFolder"),
        ("escale~12", "WorkFolder"),
    ];
    for &(text, expected) in cases {
        match RelPath::new(text) {
            Ok(_) => panic!("{text:?} was accepted, expected {expected}"),
            Err(error) => assert_eq!(variant(&error), expected, "{text:?}: {error}"),
        }
    }
}

#[test]
fn length_limits_are_inclusive() {
    let name = "é".repeat(127) + "x"; // 255 bytes
    assert_eq!(name.len(), MAX_NAME_BYTES);
    path(&name);
    let over = format!("{name}y");
    assert_eq!(
        RelPath::new(&over),
        Err(PathError::TooLong {
            path: shorten(&over),
            name: Some(shorten(&over)),
            bytes: 256,
            limit: 255,
        })
    );

    let full = vec!["x".repeat(240); 17].join("/"); // 17 * 241 - 1 = 4096 bytes
    assert_eq!(full.len(), MAX_PATH_BYTES);
    path(&full);
    let error = RelPath::new(&format!("{full}y")).expect_err("4097 bytes");
    assert!(matches!(
        error,
        PathError::TooLong {
            bytes: 4097,
            limit: 4096,
            name: None,
            ..
        }
    ));
}

#[test]
fn messages_name_the_path_in_plain_words() {
    let message = |text: &str| RelPath::new(text).expect_err(text).to_string();
    assert_eq!(
        message("docs/aux.txt"),
        "the name \"aux.txt\" in \"docs/aux.txt\" is reserved for a device on Windows"
    );
    assert_eq!(
        message("a/../../x"),
        "the path \"a/../../x\" contains \"..\", which could point outside the synced folder"
    );
    assert!(message("/etc/passwd").contains("\"/etc/passwd\" is absolute"));
    assert!(message("a./b").contains("\"a.\" in \"a./b\" ends with a dot or a space"));
    assert!(message("ab:c").contains("\"ab:c\" in \"ab:c\" contains ':'"));
    assert!(
        message("d:x").contains("is absolute"),
        "a drive-relative path on Windows"
    );
    assert!(message(".escale/state").contains("\".escale/state\" is inside Escale's work folder"));
    assert_eq!(message(""), "the path is empty");
    // Control characters are shown escaped, never raw.
    let hostile = message("a\0\u{1b}[2J");
    assert!(hostile.contains(r#""a\u{0}\u{1b}[2J""#), "{hostile}");
    assert!(!hostile.contains('\u{1b}'));
    // A hostile huge path gives a short message.
    let huge = message(&"a/".repeat(1_000_000));
    assert!(huge.len() < 200, "{huge}");
    assert!(
        huge.contains("2000000 bytes, more than the 4096 allowed"),
        "{huge}"
    );
    // Accented text stays readable.
    assert!(message("été/ça.").contains("\"ça.\" in \"été/ça.\""));
}

#[test]
fn components_parent_file_name() {
    let p = path("a/b c/d.txt");
    assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b c", "d.txt"]);
    assert_eq!(p.file_name(), "d.txt");
    assert_eq!(p.parent(), Some(path("a/b c")));
    assert_eq!(p.parent().and_then(|p| p.parent()), Some(path("a")));
    assert_eq!(path("a").parent(), None);
    assert_eq!(path("a").file_name(), "a");
    assert_eq!(path("a").components().collect::<Vec<_>>(), ["a"]);
    assert_eq!(p.to_string(), "a/b c/d.txt");
}

#[test]
fn join_validates_the_result() {
    let dir = path("docs");
    assert_eq!(dir.join("x.txt"), Ok(path("docs/x.txt")));
    assert_eq!(dir.join("a/b"), Ok(path("docs/a/b")));
    assert_eq!(dir.join(".escale"), Ok(path("docs/.escale")));
    for bad in ["", "..", ".", "aux", "a\\b", "/x", "x.", "a:b"] {
        assert!(dir.join(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn is_under_means_strictly_inside_a_folder() {
    let dir = path("a/b");
    assert!(path("a/b/c").is_under(&dir));
    assert!(path("a/b/c/d").is_under(&dir));
    assert!(!path("a/b").is_under(&dir));
    assert!(!path("a/bc").is_under(&dir));
    assert!(!path("a/b.txt").is_under(&dir));
    assert!(!path("a").is_under(&dir));
    assert!(!path("x/a/b/c").is_under(&dir));
    assert!(!path("A/B/c").is_under(&dir));
}

#[test]
fn to_local_and_from_local() {
    let root = Path::new("/home/ana/Reports");
    let p = path("2026/été.pdf");
    let local = p.to_local(root);
    assert_eq!(local, Path::new("/home/ana/Reports/2026/été.pdf"));
    assert_eq!(RelPath::from_local(root, &local), Ok(p));

    assert_eq!(
        RelPath::from_local(root, Path::new("/home/ana/Other/x")),
        Err(PathError::Outside {
            path: PathBuf::from("/home/ana/Other/x"),
            root: root.to_path_buf(),
        })
    );
    assert!(matches!(
        RelPath::from_local(root, Path::new("/home/ana/Reports/../Other/x")),
        Err(PathError::Outside { .. })
    ));
    assert!(matches!(
        RelPath::from_local(root, Path::new("/home/ana/ReportsX/x")),
        Err(PathError::Outside { .. })
    ));
    assert_eq!(RelPath::from_local(root, root), Err(PathError::Empty));
    // Interior "." and doubled separators are not part of the name.
    assert_eq!(
        RelPath::from_local(root, Path::new("/home/ana/Reports/./a//b")),
        Ok(path("a/b"))
    );
    // Names valid on Linux but not portable are refused with their rule.
    assert!(matches!(
        RelPath::from_local(root, Path::new("/home/ana/Reports/sub/aux.txt")),
        Err(PathError::ReservedName { .. })
    ));
    assert!(matches!(
        RelPath::from_local(root, Path::new("/home/ana/Reports/a\\b")),
        Err(PathError::Backslash { .. })
    ));
    assert!(matches!(
        RelPath::from_local(root, Path::new("/home/ana/Reports/.escale/state")),
        Err(PathError::WorkFolder { .. })
    ));
}

#[cfg(unix)]
#[test]
fn from_local_refuses_names_that_are_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let root = Path::new("/r");
    let local = root.join(OsStr::from_bytes(b"caf\xe9.txt"));
    let error = RelPath::from_local(root, &local).expect_err("Latin-1 name");
    assert_eq!(error, PathError::NotUtf8 { path: local });
    assert!(error.to_string().contains("not valid UTF-8"), "{error}");
}

#[test]
fn serde_validates_on_the_way_in() {
    let p = path("a/é.txt");
    let json = serde_json::to_string(&p).expect("serializes");
    assert_eq!(json, "\"a/é.txt\"");
    assert_eq!(serde_json::from_str::<RelPath>(&json).expect("valid"), p);
    for (hostile, said) in [
        ("\"../x\"", "\"../x\" contains \"..\""),
        ("\"/etc/passwd\"", "is absolute"),
        ("\"a\\u0000b\"", "NUL"),
        ("\"CON\"", "reserved for a device"),
        ("\".escale/state\"", "work folder"),
        ("\"\"", "empty"),
    ] {
        let error = serde_json::from_str::<RelPath>(hostile).expect_err(hostile);
        assert!(error.to_string().contains(said), "{error}");
    }
}

#[test]
fn collision_key_folds_case() {
    let key = |text: &str| path(text).collision_key();
    assert_eq!(key("Report.docx"), key("report.DOCX"));
    assert_eq!(key("Docs/A.txt"), key("docs/a.TXT"));
    assert_eq!(key("ÉTÉ"), key("été"));
    assert_eq!(key("ΣΟΦΟΣ"), key("σοφος"));
    assert_eq!(key("Straße"), key("STRAßE"));
    assert_eq!(key("ſ"), key("S"));
    assert_eq!(key("\u{212a}elvin"), key("kelvin"));
    assert_ne!(key("straße"), key("strasse"));
    assert_ne!(key("a.txt"), key("b.txt"));
    assert_ne!(key("a/b"), key("a-b"));
}

#[test]
fn collision_key_folds_unicode_normalization() {
    let key = |text: &str| path(text).collision_key();
    let pairs = [
        ("café.txt", "cafe\u{301}.txt"),
        ("Crème brûlée", "Cre\u{300}me bru\u{302}le\u{301}e"),
        ("Ångström/ñ", "A\u{30a}ngstro\u{308}m/n\u{303}"),
        ("Việt", "Vie\u{323}\u{302}t"),
        ("Йошкар-Ола ёлка", "И\u{306}ошкар-Ола е\u{308}лка"),
        ("ガイド", "カ\u{3099}イト\u{3099}"),
        ("한글", "\u{1112}\u{1161}\u{11ab}\u{1100}\u{1173}\u{11af}"),
        ("Ελλάδα", "Ελλα\u{301}δα"),
        ("ÇA", "c\u{327}a"),
        ("ab", "a\u{200d}b"),
    ];
    for (composed, decomposed) in pairs {
        assert_eq!(
            key(composed),
            key(decomposed),
            "{composed:?} vs {decomposed:?}"
        );
    }
    assert_eq!(key("cafe\u{301}"), "café");
    assert_eq!(key("Việt"), "việt");
    assert_ne!(key("cafe"), key("café"));
}

#[test]
fn nfc_composes_like_unicode_data() {
    // Cases checked against Python's unicodedata.normalize("NFC", ...).
    assert_eq!(nfc("e\u{301}"), "é");
    assert_eq!(nfc("e\u{323}\u{302}"), "\u{1ec7}");
    assert_eq!(nfc("\u{1100}\u{1161}"), "\u{ac00}");
    assert_eq!(nfc("\u{ac00}\u{11a8}"), "\u{ac01}");
    assert_eq!(nfc("\u{ac01}\u{11a8}"), "\u{ac01}\u{11a8}");
    assert_eq!(nfc("\u{301}e"), "\u{301}e");
    assert_eq!(nfc("x\u{301}"), "x\u{301}");
    assert_eq!(nfc("é"), "é");
    assert_eq!(nfc(""), "");
    // Composition exclusions stay decomposed.
    assert_eq!(nfc("\u{5d9}\u{5b4}"), "\u{5d9}\u{5b4}");
}

/// One name valid or not; the valid ones are kept by `valid_path`.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._~$()éüßЖ漢😀-]{1,12}"
}

/// Valid paths of one to six names.
fn valid_path() -> impl Strategy<Value = RelPath> {
    prop::collection::vec(name(), 1..6)
        .prop_filter_map("invalid name", |names| RelPath::new(&names.join("/")).ok())
}

/// Strings made mostly of the characters that matter to validation.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[./\\\\:a-cA-C \0\u{1}COMLPTNUXescal~\u{200c}¹]{0,24}",
        prop::collection::vec(
            prop_oneof![
                Just("..".to_owned()),
                Just(".".to_owned()),
                Just(String::new()),
                Just(".escale".to_owned()),
                Just("C:".to_owned()),
                Just("con".to_owned()),
                name(),
            ],
            0..6
        )
        .prop_map(|names| names.join("/")),
    ]
}

/// A synced folder as the platform spells it; nothing is created there.
fn root() -> &'static Path {
    if cfg!(windows) {
        Path::new(r"C:\Users\ana\Sync")
    } else {
        Path::new("/home/ana/Sync")
    }
}

/// The properties every accepted path has, whatever made it.
fn assert_contained(p: &RelPath) {
    let local = p.to_local(root());
    assert!(local.starts_with(root()), "{local:?}");
    let inside = local.strip_prefix(root()).expect("starts with root");
    assert!(
        inside
            .components()
            .all(|c| matches!(c, Component::Normal(_))),
        "{local:?}"
    );
    assert_eq!(inside.components().count(), p.components().count());
    assert!(!p.components().next().is_some_and(is_work_folder));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn local_round_trip(p in valid_path()) {
        let local = p.to_local(root());
        prop_assert_eq!(RelPath::from_local(root(), &local), Ok(p));
    }

    #[test]
    fn accepted_paths_never_escape_the_root(p in valid_path()) {
        assert_contained(&p);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in hostile_text()) {
        if let Ok(p) = RelPath::new(&text) {
            assert_contained(&p);
            prop_assert_eq!(p.as_str(), text.as_str());
            prop_assert!(p.components().all(|c| c != ".." && c != "." && !c.is_empty()));
            let _ = p.collision_key();
        } else {
            // Refusals are consistent whichever way a path comes in.
            let json = serde_json::to_string(&text).expect("string");
            prop_assert!(serde_json::from_str::<RelPath>(&json).is_err());
        }
    }

    #[test]
    fn parent_and_join_are_inverse(p in valid_path()) {
        if let Some(parent) = p.parent() {
            prop_assert!(p.is_under(&parent));
            prop_assert_eq!(parent.join(p.file_name()), Ok(p.clone()));
        } else {
            prop_assert_eq!(p.file_name(), p.as_str());
        }
    }

    #[test]
    fn collision_key_ignores_case(p in valid_path()) {
        // Upper case character by character, as case-insensitive
        // filesystems compare: "ß" stays "ß" rather than becoming "SS".
        let upper: String = p
            .as_str()
            .chars()
            .map(|c| {
                let mut upper = c.to_uppercase();
                match (upper.next(), upper.next()) {
                    (Some(u), None) => u,
                    _ => c,
                }
            })
            .collect();
        let upper = RelPath::new(&upper).expect("case does not change validity");
        prop_assert_eq!(upper.collision_key(), p.collision_key());
    }
}
