//! A minimal MCAP record walker for tests of the message layer (not the reader bagstream
//! ships): schemas, channels and the messages of uncompressed chunks, straight from the
//! record layout of the MCAP specification. Compressed chunks are counted and skipped; the
//! summary section repeats every schema and channel, so those are complete regardless.

#![allow(dead_code)]

use std::path::Path;

pub struct Schema {
    pub id: u16,
    pub name: String,
    pub encoding: String,
    pub data: Vec<u8>,
}

pub struct Channel {
    pub id: u16,
    pub schema_id: u16,
    pub topic: String,
    pub message_encoding: String,
}

pub struct Message {
    pub channel_id: u16,
    pub log_time: u64,
    pub data: Vec<u8>,
}

#[derive(Default)]
pub struct Mcap {
    pub schemas: Vec<Schema>,
    pub channels: Vec<Channel>,
    /// Messages of uncompressed chunks (and outside chunks), in file order.
    pub messages: Vec<Message>,
    pub compressed_chunks: usize,
}

impl Mcap {
    pub fn channel(&self, topic: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.topic == topic)
    }
    pub fn schema(&self, id: u16) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.id == id)
    }
    pub fn messages_on(&self, channel: u16) -> impl Iterator<Item = &Message> {
        self.messages
            .iter()
            .filter(move |m| m.channel_id == channel)
    }
}

struct Rd<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Rd<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p.checked_add(n)?)?;
        self.p += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.bytes(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        Some(String::from_utf8_lossy(self.bytes(n)?).into_owned())
    }
}

fn walk(b: &[u8], out: &mut Mcap, seen_schema: &mut Vec<u16>, seen_channel: &mut Vec<u16>) {
    let mut r = Rd { b, p: 0 };
    while r.p + 9 <= b.len() {
        let op = b[r.p];
        r.p += 1;
        let Some(len) = r.u64() else { return };
        let Some(body) = r.bytes(len as usize) else {
            return;
        };
        let mut f = Rd { b: body, p: 0 };
        match op {
            0x03 => {
                let (Some(id), Some(name), Some(encoding), Some(n)) =
                    (f.u16(), f.string(), f.string(), f.u32())
                else {
                    continue;
                };
                if !seen_schema.contains(&id) {
                    seen_schema.push(id);
                    out.schemas.push(Schema {
                        id,
                        name,
                        encoding,
                        data: f.bytes(n as usize).unwrap_or_default().to_vec(),
                    });
                }
            }
            0x04 => {
                let (Some(id), Some(schema_id), Some(topic), Some(message_encoding)) =
                    (f.u16(), f.u16(), f.string(), f.string())
                else {
                    continue;
                };
                if !seen_channel.contains(&id) {
                    seen_channel.push(id);
                    out.channels.push(Channel {
                        id,
                        schema_id,
                        topic,
                        message_encoding,
                    });
                }
            }
            0x05 => {
                let (Some(channel_id), Some(_seq), Some(log_time), Some(_publish)) =
                    (f.u16(), f.u32(), f.u64(), f.u64())
                else {
                    continue;
                };
                out.messages.push(Message {
                    channel_id,
                    log_time,
                    data: body[f.p..].to_vec(),
                });
            }
            0x06 => {
                let (Some(_), Some(_), Some(_), Some(_), Some(compression), Some(n)) =
                    (f.u64(), f.u64(), f.u64(), f.u32(), f.string(), f.u64())
                else {
                    continue;
                };
                if compression.is_empty() {
                    if let Some(records) = f.bytes(n as usize) {
                        walk(records, out, seen_schema, seen_channel);
                    }
                } else {
                    out.compressed_chunks += 1;
                }
            }
            _ => {}
        }
    }
}

/// Reads `path`; None when it is not an MCAP file.
pub fn read(path: &Path) -> Option<Mcap> {
    let b = std::fs::read(path).ok()?;
    if !b.starts_with(b"\x89MCAP0\r\n") {
        return None;
    }
    let mut out = Mcap::default();
    walk(&b[8..], &mut out, &mut Vec::new(), &mut Vec::new());
    Some(out)
}
