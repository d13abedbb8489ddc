//! STUB
use super::MsgError;
pub struct FieldPath;
impl FieldPath { pub fn parse(_s: &str) -> Result<FieldPath, MsgError> { todo!() } }
