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
