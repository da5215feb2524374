pub mod convert;
pub mod embed;
pub mod info;
