//! STUB
use super::{DecodeError, MsgError, Schema, FieldPath};
use crate::Time;
pub struct Extractor;
impl Extractor {
    pub fn new(_s: &Schema, _p: &FieldPath, _j: Option<&[String]>) -> Result<Extractor, MsgError> { todo!() }
    pub fn extract(&self, _d: &[u8], _o: &mut Vec<f32>) -> Result<(), DecodeError> { todo!() }
    pub fn names(&self, _d: &[u8]) -> Result<Vec<String>, DecodeError> { todo!() }
}
pub struct StampReader;
impl StampReader {
    pub fn new(_s: &Schema) -> Result<StampReader, MsgError> { todo!() }
    pub fn read(&self, _d: &[u8]) -> Result<Time, DecodeError> { todo!() }
}
