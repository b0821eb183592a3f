//! Reading the audio the server sends or records: Ogg Opus files, Opus decoding and the
//! power of one tone in the decoded signal.

/// Reads the Opus packets of a mono Ogg Opus file, checking its two header packets.
pub fn opus_packets(file: &[u8]) -> Vec<Vec<u8>> {
    let mut reader = ogg::reading::PacketReader::new(std::io::Cursor::new(file));
    let head = reader.read_packet_expected().unwrap();
    assert!(head.data.starts_with(b"OpusHead"), "identification header");
    assert_eq!(head.data[9], 1, "mono");
    let tags = reader.read_packet_expected().unwrap();
    assert!(tags.data.starts_with(b"OpusTags"), "comment header");
    let mut packets = Vec::new();
    while let Some(packet) = reader.read_packet().unwrap() {
        packets.push(packet.data);
    }
    packets
}

/// Decodes Opus packets into one mono 48 kHz signal.
pub fn decode_all<P: AsRef<[u8]>>(packets: &[P]) -> Vec<i16> {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut pcm = Vec::new();
    for packet in packets {
        let mut frame = [0i16; 5760];
        let samples = decoder.decode(packet.as_ref(), &mut frame, false).unwrap();
        pcm.extend_from_slice(&frame[..samples]);
    }
    pcm
}

/// Returns the mean power of `pcm` at `hz` (Goertzel's algorithm).
pub fn tone_power(pcm: &[i16], hz: f32) -> f64 {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * f64::from(hz) / 48_000.0).cos();
    let (mut previous, mut before) = (0.0f64, 0.0f64);
    for &sample in pcm {
        let current = f64::from(sample) + coefficient * previous - before;
        before = previous;
        previous = current;
    }
    (previous * previous + before * before - coefficient * previous * before) / pcm.len() as f64
}
