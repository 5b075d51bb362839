//! Receiving crafted batches: what a malicious or broken client (anyone
//! holding the passphrase) could publish.

use std::collections::BTreeMap;
use std::fs;

use bytes::Bytes;

use crate::format::{self, Batch, ChunkPlacement, Head, ObjectEntry, WireRecord};
use crate::ids::{ClientId, ObjectId};
use crate::repository::{open_relay_at, read_header, unlock};
use crate::state::ChunkRef;
use crate::version::VersionVector;
use crate::{ConfigDir, NewRepository, Passphrase};

const PASSPHRASE: &str = "hostile test passphrase";

#[test]
fn records_with_hostile_paths_are_refused_and_the_rest_is_applied() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    fs::create_dir(&relay_dir).unwrap();
    let relay_url = format!("file://{}", relay_dir.display());
    let folder = dir.path().join("outer/folder");
    let config = ConfigDir::new(dir.path().join("config"));
    runtime
        .block_on(crate::init(
            &config,
            NewRepository {
                name: "target".into(),
                folder: folder.clone(),
                relay: relay_url.clone(),
                client_name: Some("victim".into()),
                mode: crate::SyncMode::default(),
                quota: None,
                access: crate::RelayAccess::default(),
            },
            Passphrase::new(PASSPHRASE.into()),
        ))
        .unwrap();

    // A second client, forged by hand, publishes one good record and many
    // hostile ones, all pointing at the same valid content.
    let relay = open_relay_at(&relay_url, None, runtime.handle().clone()).unwrap();
    let codec = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let header = read_header(&relay, &relay_url).unwrap();
                unlock(&header, &Passphrase::new(PASSPHRASE.into()), &relay_url).unwrap()
            })
            .join()
            .unwrap()
    });
    let forger = ClientId::random();
    let object = ObjectId::random();
    let content = b"planted";
    let chunk = codec.keys().chunk_id(content);
    let sealed = codec.seal_chunk(&forger, &object, &chunk, content);
    let version = VersionVector::default().bump(forger, 1);
    let file = |path: &str| WireRecord::File {
        path: path.to_owned(),
        size: content.len() as u64,
        mtime_ns: 1_700_000_000_000_000_000,
        executable: false,
        content: codec.keys().content_id(&[chunk], content.len() as u64),
        chunks: vec![ChunkRef {
            id: chunk,
            size: content.len() as u64,
        }],
        version: version.clone(),
        origin: forger,
    };
    let hostile = [
        "../escaped.txt",
        "sub/../../escaped-too.txt",
        "/etc/passwd-planted",
        "C:\\planted.txt",
        "a\0b.txt",
        "CON",
        "aux.txt",
        "docs/LPT1.log",
        ".escale/state",
        "",
    ];
    let mut records: Vec<WireRecord> = hostile.iter().map(|path| file(path)).collect();
    records.push(file("fine.txt"));
    let batch = Batch {
        seq: 1,
        objects: vec![ObjectEntry {
            id: object,
            size: sealed.len() as u64,
            chunks: vec![ChunkPlacement {
                id: chunk,
                offset: 0,
                length: sealed.len() as u64,
            }],
        }],
        records,
        prefetch: false,
        requests: Vec::new(),
        supplies: Vec::new(),
    };
    let head = Head {
        client: forger,
        name: "forger".into(),
        generation: 1,
        journal: 1,
        acks: BTreeMap::new(),
        stored_bytes: sealed.len() as u64,
        updated: 0,
        retired: Vec::new(),
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                relay.create_dir(&format::objects_dir(&forger)).unwrap();
                relay.create_dir(&format::journal_dir(&forger)).unwrap();
                relay
                    .write(&format::object_path(&forger, &object), Bytes::from(sealed))
                    .unwrap();
                relay
                    .write(
                        &format::batch_path(&forger, 1),
                        Bytes::from(codec.seal_batch(&forger, &batch)),
                    )
                    .unwrap();
                relay
                    .write(
                        &format::head_path(&forger, format::head_slot(1)),
                        Bytes::from(codec.seal_head(&head)),
                    )
                    .unwrap();
            })
            .join()
            .unwrap();
    });

    let report = runtime
        .block_on(crate::sync(
            &config,
            "target",
            Passphrase::new(PASSPHRASE.into()),
        ))
        .unwrap();
    let refused: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.code == "unsafe_path")
        .collect();
    assert_eq!(refused.len(), hostile.len(), "{:#?}", report.problems);
    assert_eq!(
        report.problems.len(),
        hostile.len(),
        "{:#?}",
        report.problems
    );
    assert_eq!(fs::read(folder.join("fine.txt")).unwrap(), content);
    assert!(!dir.path().join("outer/escaped.txt").exists());
    assert!(!dir.path().join("escaped-too.txt").exists());
    assert!(!folder.join("CON").exists() && !folder.join("aux.txt").exists());
    // Only the good file arrived (and nothing inside the work folder's state).
    let names: Vec<_> = fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != ".escale")
        .collect();
    assert_eq!(names, ["fine.txt"]);
    assert!(!folder.join(".escale/state").exists());
}
