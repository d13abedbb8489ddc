//! STUB
use super::*;
pub struct Ros1Bag;
impl Ros1Bag { pub fn open(_p: &Path) -> Result<Self, BagError> { todo!() } }
impl BagSource for Ros1Bag {
    fn summary(&self) -> &BagSummary { todo!() }
    fn read_window(&mut self, _s: Time, _e: Time, _w: &[bool], _o: &mut Vec<RawMessage>) -> Result<(), BagError> { todo!() }
    fn first_and_last(&mut self, _c: usize) -> Result<Option<(RawMessage, RawMessage)>, BagError> { todo!() }
}
