//! Ogg Opus files (RFC 7845): the identification and comment headers, then one Opus
//! packet of 20 ms per Ogg packet with its granule position.

use std::io::Write;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

/// Opus always runs at 48 kHz in Ogg granule positions.
pub const SAMPLE_RATE: u32 = 48_000;

/// Writes a mono Ogg Opus stream.
pub struct OggOpusWriter<W: Write> {
    packets: PacketWriter<'static, W>,
    serial: u32,
    /// Samples written so far, pre-skip included.
    granule: u64,
    /// Packets since the last page end; pages are closed about once a second so that a
    /// reader can seek and a crash loses at most that much.
    unpaged: u32,
}

/// Packets per Ogg page: 50 packets of 20 ms make one second.
const PACKETS_PER_PAGE: u32 = 50;

impl<W: Write> OggOpusWriter<W> {
    /// Writes the two header pages. `pre_skip` is the encoder's lookahead in 48 kHz
    /// samples, which players discard at the start.
    pub fn new(writer: W, serial: u32, pre_skip: u16, vendor: &str) -> std::io::Result<Self> {
        let mut packets = PacketWriter::new(writer);
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(1); // channels
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family: mono or stereo, no table
        packets.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)?;

        let mut tags = Vec::new();
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor.as_bytes());
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
        packets.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)?;
        Ok(Self {
            packets,
            serial,
            granule: u64::from(pre_skip),
            unpaged: 0,
        })
    }

    /// Appends one encoded Opus packet that carries `samples` samples at 48 kHz.
    pub fn write(&mut self, packet: &[u8], samples: u32) -> std::io::Result<()> {
        self.granule += u64::from(samples);
        self.unpaged += 1;
        let end = if self.unpaged >= PACKETS_PER_PAGE {
            self.unpaged = 0;
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        self.packets
            .write_packet(packet.to_vec(), self.serial, end, self.granule)
    }

    /// Ends the stream with `last_packet` and returns the writer.
    pub fn finish(mut self, last_packet: &[u8], samples: u32) -> std::io::Result<W> {
        self.granule += u64::from(samples);
        self.packets.write_packet(
            last_packet.to_vec(),
            self.serial,
            PacketWriteEndInfo::EndStream,
            self.granule,
        )?;
        Ok(self.packets.into_inner())
    }
}

/// Length in milliseconds of the audio in an Ogg Opus stream, from the granule position
/// of its last complete page minus the pre-skip of its identification header. A stream
/// cut in the middle of a page (the writer was killed) counts up to its last complete
/// page. Returns `None` when not even the identification header can be read.
pub fn measure<R: std::io::Read + std::io::Seek>(reader: R) -> Option<u64> {
    let mut packets = ogg::reading::PacketReader::new(reader);
    let head = packets.read_packet().ok()??;
    if !head.data.starts_with(b"OpusHead") || head.data.len() < 12 {
        return None;
    }
    let pre_skip = u64::from(u16::from_le_bytes([head.data[10], head.data[11]]));
    let mut granule = pre_skip;
    // A read error is the cut end of the file; the pages before it count.
    while let Ok(Some(packet)) = packets.read_packet() {
        if packet.last_in_page() {
            granule = granule.max(packet.absgp_page());
        }
    }
    Some(granule.saturating_sub(pre_skip) * 1000 / u64::from(SAMPLE_RATE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_whole_and_cut_streams() {
        let mut writer = OggOpusWriter::new(Vec::new(), 7, 312, "test").unwrap();
        for _ in 0..120 {
            writer.write(&[0xf8, 0xff, 0xfe], 960).unwrap();
        }
        let whole = writer.finish(&[0xf8, 0xff, 0xfe], 960).unwrap();
        assert_eq!(measure(std::io::Cursor::new(&whole)), Some(2420));

        // Cut inside the last page: the two complete pages of 50 packets count.
        let cut = &whole[..whole.len() - 20];
        assert_eq!(measure(std::io::Cursor::new(cut)), Some(2000));
        assert_eq!(measure(std::io::Cursor::new(&whole[..10])), None);
    }
}
