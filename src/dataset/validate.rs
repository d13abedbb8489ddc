//! STUB
pub fn validate(_d: &std::path::Path) -> Result<Vec<String>, super::DatasetError> { todo!() }
