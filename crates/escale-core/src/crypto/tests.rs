//! Tests of the crypto module, including known-answer vectors computed
//! independently (Python's `cryptography` package, from the text of
//! `docs/crypto.md`) so that the specification and the code cannot drift
//! apart unnoticed.

use proptest::prelude::*;

use super::*;
use crate::ids::ObjectId;

/// Cheapest parameters `validate` accepts, so tests do not wait on Argon2.
fn fast_params() -> KdfParams {
    KdfParams {
        algorithm: "argon2id".into(),
        memory_kib: 8 * 1024,
        iterations: 1,
        parallelism: 1,
        salt: Salt::random(),
    }
}

fn repo(byte: u8) -> RepositoryId {
    RepositoryId([byte; 16])
}

fn client(byte: u8) -> ClientId {
    ClientId([byte; 16])
}

/// Fixed keys for the vectors: master key 00 01 … 1f, repository a0 … af.
fn vector_master() -> MasterKey {
    let mut key = SecretBytes::zeroed();
    for (i, byte) in key.0.iter_mut().enumerate() {
        *byte = i as u8;
    }
    MasterKey(key)
}

fn vector_repo() -> RepositoryId {
    RepositoryId(std::array::from_fn(|i| 0xa0 + i as u8))
}

fn vector_client() -> ClientId {
    ClientId(std::array::from_fn(|i| 0xc0 + i as u8))
}

fn keys() -> Keys {
    MasterKey::generate().keys(&repo(1))
}

fn aad() -> Aad {
    Aad::new(
        &repo(1),
        &client(2),
        RecordKind::Journal,
        &7u64.to_be_bytes(),
    )
}

// ---- Known answers -------------------------------------------------------

#[test]
fn argon2id_matches_the_reference() {
    let params = KdfParams {
        algorithm: "argon2id".into(),
        memory_kib: 8192,
        iterations: 1,
        parallelism: 1,
        salt: Salt(*b"escale-test-salt"),
    };
    let key = params.derive("correct horse battery staple").unwrap();
    assert_eq!(
        hex::encode(*key.0.0),
        "c1a138375c339ff1546494ba70c901ea714b29525315c5fbf6dedfadddc7cd36"
    );
}

#[test]
fn subkeys_match_the_reference() {
    let keys = vector_master().keys(&vector_repo());
    assert_eq!(
        keys.chunk_id(b"hello escale").to_string(),
        "cd3ef5b16ade4ee2924f68e1428593bfa15df7f75c0c007d03c774e379c98688"
    );
    let chunks = [keys.chunk_id(b"hello "), keys.chunk_id(b"escale")];
    assert_eq!(
        keys.content_id(&chunks, 12).to_string(),
        "b1a6eb37daa1c1369a01f78b033093ae203919682c8728de595dd278f94ad5d4"
    );
}

#[test]
fn envelope_matches_the_reference() {
    let keys = vector_master().keys(&vector_repo());
    let aad = Aad::new(
        &vector_repo(),
        &vector_client(),
        RecordKind::Chunk,
        b"position",
    );
    let sealed = keys.seal_with_nonce(&aad, b"hello escale", [0x42; NONCE_LEN]);
    assert_eq!(
        hex::encode(&sealed),
        "01424242424242424242424242cd0612830bc0dc12df15d777ebdac0f622ad49b188bfe453d3a6728e"
    );
    assert_eq!(keys.open(&aad, &sealed).unwrap(), b"hello escale");
}

#[test]
fn master_key_wrap_matches_the_reference() {
    let mut passphrase_key = SecretBytes::zeroed();
    passphrase_key.0.fill(0x55);
    let wrapped =
        vector_master().wrap_with_nonce(&PassphraseKey(passphrase_key), &vector_repo(), [0x24; 12]);
    assert_eq!(
        serde_json::to_string(&wrapped).unwrap(),
        "\"JCQkJCQkJCQkJCQktprBb1k/4NhpOTOa+72UxkZkX22996B/NRQoMAF7Md03QmmfBxidbJBa4Ha4f9Uq\""
    );
}

#[test]
fn aad_layout_is_canonical() {
    let aad = Aad::new(&vector_repo(), &vector_client(), RecordKind::Head, &[1]);
    let mut expected = b"escale/v1".to_vec();
    expected.extend(0xa0..=0xaf);
    expected.extend(0xc0..=0xcf);
    expected.extend([1, 0, 0, 0, 1, 1]);
    assert_eq!(aad.0, expected);

    let empty = Aad::new(&repo(0), &client(0), RecordKind::Chunk, &[]);
    assert_eq!(empty.0.len(), 9 + 16 + 16 + 1 + 4);
    assert_eq!(empty.0[41..], [3, 0, 0, 0, 0]);
    assert_eq!(RecordKind::Journal as u8, 2);
}

// ---- Passphrase and master key -------------------------------------------

#[test]
fn wrap_unwrap_round_trip() {
    let params = fast_params();
    let master = MasterKey::generate();
    let wrapped = master.wrap(&params.derive("hunter2 but longer").unwrap(), &repo(1));
    let again = params.derive("hunter2 but longer").unwrap();
    let unwrapped = wrapped.unwrap(&again, &repo(1)).unwrap();
    assert_eq!(*unwrapped.0.0, *master.0.0);
}

#[test]
fn wrong_passphrase_is_reported_as_such() {
    let params = fast_params();
    let wrapped = MasterKey::generate().wrap(&params.derive("right").unwrap(), &repo(1));
    let err = wrapped
        .unwrap(&params.derive("wrong").unwrap(), &repo(1))
        .unwrap_err();
    assert_eq!(err, CryptoError::WrongPassphrase);
    assert!(err.to_string().contains("passphrase"));
}

#[test]
fn wrapped_key_does_not_unwrap_for_another_repository() {
    let key = fast_params().derive("same passphrase").unwrap();
    let wrapped = MasterKey::generate().wrap(&key, &repo(0xa));
    assert_eq!(
        wrapped.unwrap(&key, &repo(0xb)).unwrap_err(),
        CryptoError::WrongPassphrase
    );
    assert!(wrapped.unwrap(&key, &repo(0xa)).is_ok());
}

#[test]
fn every_bit_of_a_wrapped_key_is_authenticated() {
    let key = fast_params().derive("pass").unwrap();
    let bytes = MasterKey::generate().wrap(&key, &repo(1)).to_bytes();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes;
        flipped[bit / 8] ^= 1 << (bit % 8);
        let err = WrappedKey::from_bytes(&flipped)
            .unwrap(&key, &repo(1))
            .unwrap_err();
        assert_eq!(err, CryptoError::WrongPassphrase, "bit {bit}");
    }
}

#[test]
fn wrapping_twice_uses_fresh_nonces() {
    let key = fast_params().derive("pass").unwrap();
    let master = MasterKey::generate();
    assert_ne!(master.wrap(&key, &repo(1)), master.wrap(&key, &repo(1)));
}

#[test]
fn wrapped_key_json_is_one_base64_string() {
    let key = fast_params().derive("pass").unwrap();
    let wrapped = MasterKey::generate().wrap(&key, &repo(1));
    let json = serde_json::to_string(&wrapped).unwrap();
    // 60 bytes are exactly 80 base64 characters, with no padding.
    assert_eq!(json.len(), 82);
    assert!(json.starts_with('"') && json.ends_with('"'));
    assert_eq!(serde_json::from_str::<WrappedKey>(&json).unwrap(), wrapped);
    assert!(format!("{wrapped:?}").starts_with("WrappedKey("));

    let too_short = format!("\"{}\"", BASE64.encode([0u8; 59]));
    let too_long = format!("\"{}\"", BASE64.encode([0u8; 61]));
    for bad in [
        too_short.as_str(),
        too_long.as_str(),
        "\"not base64!\"",
        "42",
        "\"\"",
    ] {
        assert!(serde_json::from_str::<WrappedKey>(bad).is_err(), "{bad}");
    }
}

#[test]
fn derivation_depends_on_passphrase_and_salt() {
    let params = fast_params();
    let a = params.derive("passphrase").unwrap();
    assert_eq!(*a.0.0, *params.derive("passphrase").unwrap().0.0);
    assert_ne!(*a.0.0, *params.derive("passphrase ").unwrap().0.0);
    let other_salt = KdfParams {
        salt: Salt::random(),
        ..params
    };
    assert_ne!(*a.0.0, *other_salt.derive("passphrase").unwrap().0.0);
}

#[test]
fn recommended_parameters_derive() {
    let params = KdfParams::recommended();
    assert_eq!(params.algorithm, "argon2id");
    assert_eq!(
        (params.memory_kib, params.iterations, params.parallelism),
        (65536, 3, 1)
    );
    assert_ne!(params.salt, KdfParams::recommended().salt);
    params.validate().unwrap();
    let key = params.derive("a passphrase").unwrap();
    assert_ne!(*key.0.0, [0; 32]);
}

#[test]
fn secret_bytes_are_erased_by_the_drop_code() {
    let mut secret = SecretBytes::random();
    assert_ne!(*secret.0, [0; KEY_LEN]);
    // What `Drop` runs; the memory itself cannot be inspected after a drop
    // without `unsafe`.
    secret.0.zeroize();
    assert_eq!(*secret.0, [0; KEY_LEN]);
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let master = MasterKey::generate();
    assert_eq!(format!("{master:?}"), "MasterKey(..)");
    assert_eq!(format!("{:?}", master.keys(&repo(1))), "Keys(..)");
    let key = fast_params().derive("pass").unwrap();
    assert_eq!(format!("{key:?}"), "PassphraseKey(..)");
}

// ---- KDF parameters --------------------------------------------------------

#[test]
fn kdf_params_json_round_trip() {
    let params = KdfParams {
        salt: Salt(*b"0123456789abcdef"),
        ..KdfParams::recommended()
    };
    let json = serde_json::to_value(&params).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "algorithm": "argon2id",
            "memory_kib": 65536,
            "iterations": 3,
            "parallelism": 1,
            "salt": "MDEyMzQ1Njc4OWFiY2RlZg==",
        })
    );
    assert_eq!(serde_json::from_value::<KdfParams>(json).unwrap(), params);
}

#[test]
fn salts_of_the_wrong_length_are_refused() {
    for salt in [
        "MDEyMzQ1Njc4OWFiY2Rl",
        "MDEyMzQ1Njc4OWFiY2RlZmc=",
        "not base64",
        "",
    ] {
        let json = serde_json::json!({
            "algorithm": "argon2id", "memory_kib": 65536, "iterations": 3,
            "parallelism": 1, "salt": salt,
        });
        assert!(serde_json::from_value::<KdfParams>(json).is_err(), "{salt}");
    }
}

#[test]
fn validate_accepts_the_bounds() {
    for (memory_kib, iterations, parallelism) in [(8192, 1, 1), (4 * 1024 * 1024, 16, 16)] {
        let params = KdfParams {
            memory_kib,
            iterations,
            parallelism,
            ..fast_params()
        };
        params.validate().unwrap();
    }
}

#[test]
fn validate_refuses_each_bad_field() {
    let bad = [
        KdfParams {
            algorithm: "argon2i".into(),
            ..fast_params()
        },
        KdfParams {
            algorithm: "ARGON2ID".into(),
            ..fast_params()
        },
        KdfParams {
            algorithm: String::new(),
            ..fast_params()
        },
        KdfParams {
            memory_kib: 8191,
            ..fast_params()
        },
        KdfParams {
            memory_kib: 0,
            ..fast_params()
        },
        KdfParams {
            memory_kib: 4 * 1024 * 1024 + 1,
            ..fast_params()
        },
        KdfParams {
            memory_kib: u32::MAX,
            ..fast_params()
        },
        KdfParams {
            iterations: 0,
            ..fast_params()
        },
        KdfParams {
            iterations: 17,
            ..fast_params()
        },
        KdfParams {
            parallelism: 0,
            ..fast_params()
        },
        KdfParams {
            parallelism: 17,
            ..fast_params()
        },
    ];
    for params in bad {
        let err = params.validate().unwrap_err();
        assert!(matches!(err, CryptoError::BadKdfParams(_)), "{params:?}");
        // derive must refuse before doing any work.
        assert_eq!(params.derive("pass").unwrap_err(), err);
    }
}

// ---- Envelopes ------------------------------------------------------------

#[test]
fn seal_open_round_trip() {
    let keys = keys();
    for plaintext in [&b""[..], b"x", &[0xff; 1000]] {
        let sealed = keys.seal(&aad(), plaintext);
        assert_eq!(sealed.len(), plaintext.len() + Keys::OVERHEAD);
        assert_eq!(sealed[0], 0x01);
        assert_eq!(keys.open(&aad(), &sealed).unwrap(), plaintext);
    }
}

#[test]
fn cloned_keys_open_what_the_original_sealed() {
    let keys = keys();
    let sealed = keys.seal(&aad(), b"shared");
    assert_eq!(keys.clone().open(&aad(), &sealed).unwrap(), b"shared");
}

#[test]
fn sealing_twice_differs() {
    let keys = keys();
    assert_ne!(keys.seal(&aad(), b"same"), keys.seal(&aad(), b"same"));
}

#[test]
fn every_single_bit_flip_fails_to_open() {
    let keys = keys();
    let sealed = keys.seal(&aad(), b"short message");
    for bit in 0..sealed.len() * 8 {
        let mut flipped = sealed.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let expected = if bit < 8 {
            CryptoError::Truncated
        } else {
            CryptoError::Tampered
        };
        assert_eq!(
            keys.open(&aad(), &flipped).unwrap_err(),
            expected,
            "bit {bit}"
        );
    }
}

#[test]
fn every_truncation_fails_to_open() {
    let keys = keys();
    let sealed = keys.seal(&aad(), b"a message long enough to cut in many places");
    for len in 0..sealed.len() {
        let expected = if len < Keys::OVERHEAD {
            CryptoError::Truncated
        } else {
            CryptoError::Tampered
        };
        assert_eq!(
            keys.open(&aad(), &sealed[..len]).unwrap_err(),
            expected,
            "length {len}"
        );
    }
    let mut extended = sealed.clone();
    extended.push(0);
    assert_eq!(
        keys.open(&aad(), &extended).unwrap_err(),
        CryptoError::Tampered
    );
}

#[test]
fn a_record_does_not_open_in_another_place() {
    let keys = keys();
    let position = 7u64.to_be_bytes();
    let sealed = keys.seal(&aad(), b"record");
    let elsewhere = [
        Aad::new(&repo(9), &client(2), RecordKind::Journal, &position),
        Aad::new(&repo(1), &client(9), RecordKind::Journal, &position),
        Aad::new(&repo(1), &client(2), RecordKind::Head, &position),
        Aad::new(&repo(1), &client(2), RecordKind::Chunk, &position),
        Aad::new(
            &repo(1),
            &client(2),
            RecordKind::Journal,
            &8u64.to_be_bytes(),
        ),
        Aad::new(&repo(1), &client(2), RecordKind::Journal, &position[1..]),
        Aad::new(&repo(1), &client(2), RecordKind::Journal, &[]),
    ];
    for other in elsewhere {
        assert_eq!(
            keys.open(&other, &sealed).unwrap_err(),
            CryptoError::Tampered,
            "{other:?}"
        );
    }
}

#[test]
fn chunk_positions_bind_object_and_chunk() {
    let keys = keys();
    let position = |object: &ObjectId, chunk: &ChunkId| {
        let mut bytes = object.as_bytes().to_vec();
        bytes.extend_from_slice(chunk.as_bytes());
        Aad::new(&repo(1), &client(2), RecordKind::Chunk, &bytes)
    };
    let (object, chunk) = (ObjectId::random(), keys.chunk_id(b"data"));
    let sealed = keys.seal(&position(&object, &chunk), b"data");
    assert!(keys.open(&position(&object, &chunk), &sealed).is_ok());
    assert!(
        keys.open(&position(&ObjectId::random(), &chunk), &sealed)
            .is_err()
    );
    assert!(
        keys.open(&position(&object, &keys.chunk_id(b"other")), &sealed)
            .is_err()
    );
}

#[test]
fn keys_of_another_repository_do_not_open() {
    let master = MasterKey::generate();
    let sealed = master.keys(&repo(1)).seal(&aad(), b"record");
    let err = master.keys(&repo(2)).open(&aad(), &sealed).unwrap_err();
    assert_eq!(err, CryptoError::Tampered);
    let err = MasterKey::generate()
        .keys(&repo(1))
        .open(&aad(), &sealed)
        .unwrap_err();
    assert_eq!(err, CryptoError::Tampered);
}

#[test]
fn unknown_format_byte_is_refused_before_decrypting() {
    let keys = keys();
    let mut sealed = keys.seal(&aad(), b"record");
    sealed[0] = 0x02;
    assert_eq!(
        keys.open(&aad(), &sealed).unwrap_err(),
        CryptoError::Truncated
    );
}

// ---- Keyed identifiers ------------------------------------------------------

#[test]
fn chunk_ids_are_deterministic_and_keyed() {
    let master = MasterKey::generate();
    let keys = master.keys(&repo(1));
    assert_eq!(keys.chunk_id(b"content"), keys.chunk_id(b"content"));
    assert_eq!(
        keys.chunk_id(b"content"),
        master.keys(&repo(1)).chunk_id(b"content")
    );
    assert_ne!(keys.chunk_id(b"content"), keys.chunk_id(b"Content"));
    assert_ne!(
        keys.chunk_id(b"content"),
        master.keys(&repo(2)).chunk_id(b"content")
    );
    assert_ne!(
        keys.chunk_id(b"content"),
        MasterKey::generate().keys(&repo(1)).chunk_id(b"content")
    );
    // Not a plain hash: nobody without the key can recompute it.
    use sha2::Digest as _;
    let plain: [u8; 32] = Sha256::digest(b"content").into();
    assert_ne!(*keys.chunk_id(b"content").as_bytes(), plain);
}

#[test]
fn content_ids_cover_size_order_and_chunks() {
    let keys = keys();
    let (a, b) = (keys.chunk_id(b"a"), keys.chunk_id(b"b"));
    let id = keys.content_id(&[a, b], 2);
    assert_eq!(id, keys.content_id(&[a, b], 2));
    assert_ne!(id, keys.content_id(&[b, a], 2));
    assert_ne!(id, keys.content_id(&[a, b], 3));
    assert_ne!(id, keys.content_id(&[a], 2));
    assert_ne!(
        id,
        MasterKey::generate().keys(&repo(1)).content_id(&[a, b], 2)
    );
    // Separate keys: the content id of an empty file is not the chunk id of
    // the same eight bytes.
    assert_ne!(
        keys.content_id(&[], 0).as_bytes(),
        keys.chunk_id(&0u64.to_be_bytes()).as_bytes()
    );
}

#[test]
fn hash_ids_are_hex_everywhere() {
    let id = keys().chunk_id(b"x");
    let text = id.to_string();
    assert_eq!(text.len(), 64);
    assert_eq!(text.parse::<ChunkId>().unwrap(), id);
    assert_eq!(format!("{id:?}"), format!("ChunkId({text})"));
    assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{text}\""));
    assert_eq!(
        serde_json::from_str::<ChunkId>(&format!("\"{text}\"")).unwrap(),
        id
    );
    assert_eq!(ChunkId::from_bytes(*id.as_bytes()), id);

    let content = ContentId::from_bytes([0xab; 32]);
    assert_eq!(content.to_string(), "ab".repeat(32));
    assert_eq!(content.to_string().parse::<ContentId>().unwrap(), content);

    for bad in ["", "ab", &"zz".repeat(32), &"ab".repeat(33)] {
        let err = bad.parse::<ContentId>().unwrap_err();
        assert!(err.to_string().contains("ContentId"));
    }
    assert!(serde_json::from_str::<ChunkId>("\"00\"").is_err());
}

// ---- Properties -------------------------------------------------------------

proptest! {
    #[test]
    fn sealed_records_open_to_what_was_sealed(
        plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
        position in proptest::collection::vec(any::<u8>(), 0..64),
        kind in prop_oneof![Just(RecordKind::Head), Just(RecordKind::Journal), Just(RecordKind::Chunk)],
    ) {
        let keys = keys();
        let aad = Aad::new(&repo(3), &client(4), kind, &position);
        let sealed = keys.seal(&aad, &plaintext);
        prop_assert_eq!(sealed.len(), plaintext.len() + Keys::OVERHEAD);
        prop_assert_eq!(keys.open(&aad, &sealed).unwrap(), plaintext);
    }

    #[test]
    fn arbitrary_input_never_opens_and_never_panics(
        input in proptest::collection::vec(any::<u8>(), 0..512),
        format_byte in any::<bool>(),
    ) {
        let mut input = input;
        if format_byte && !input.is_empty() {
            input[0] = ENVELOPE_FORMAT;
        }
        prop_assert!(keys().open(&aad(), &input).is_err());
    }

    #[test]
    fn any_change_to_a_sealed_record_is_detected(
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        index in any::<prop::sample::Index>(),
        xor in 1..=255u8,
    ) {
        let keys = keys();
        let mut sealed = keys.seal(&aad(), &plaintext);
        let at = index.index(sealed.len());
        sealed[at] ^= xor;
        prop_assert!(keys.open(&aad(), &sealed).is_err());
    }
}
