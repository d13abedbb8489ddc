//! STUB
use super::MsgError;
pub struct Schema;
impl Schema {
    pub fn parse(_datatype: &str, _definition: &str) -> Result<Schema, MsgError> { todo!() }
    pub fn numeric_fields(&self) -> Vec<String> { todo!() }
}
