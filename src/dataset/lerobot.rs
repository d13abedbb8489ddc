//! STUB
use super::*;
pub struct LeRobotWriter;
impl LeRobotWriter { pub fn create(_s: &DatasetSpec, _o: &WriterOptions) -> Result<Self, DatasetError> { todo!() } }
impl DatasetWriter for LeRobotWriter {
    fn begin_episode(&mut self, _t: &str) -> Result<(), DatasetError> { todo!() }
    fn write_frame(&mut self, _f: &Frame) -> Result<(), DatasetError> { todo!() }
    fn end_episode(&mut self, _s: serde_json::Value) -> Result<EpisodeSummary, DatasetError> { todo!() }
    fn finish(self: Box<Self>) -> Result<(), DatasetError> { todo!() }
}
