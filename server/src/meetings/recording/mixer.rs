//! The mix of a meeting's speakers: each speaker's Opus is decoded into a buffer of its
//! own as it arrives, and every 20 ms one frame of each buffer is summed into one mono
//! frame.

use std::collections::{HashMap, VecDeque};

use opus::{Channels, Decoder};

/// Samples in one 20 ms frame at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;

/// Largest packet duration Opus allows (120 ms), as decode buffer size.
const MAX_PACKET_SAMPLES: usize = 5760;

/// A speaker's buffer starts playing once it contains this much (40 ms), so that network
/// jitter does not cut the speech into pieces.
const PRIMING_SAMPLES: usize = 2 * FRAME_SAMPLES;

/// Audio beyond this (200 ms) is dropped from the front of a speaker's buffer, so that a
/// burst of late packets cannot delay the speaker for the rest of the meeting.
const MAX_BUFFERED_SAMPLES: usize = 10 * FRAME_SAMPLES;

/// Missing packets up to this many are filled in by the decoder's loss concealment;
/// a longer gap is silence.
const MAX_CONCEALED_PACKETS: u16 = 5;

struct Speaker {
    decoder: Decoder,
    pcm: VecDeque<i16>,
    last_sequence: Option<u16>,
    playing: bool,
}

/// A mixer of any number of speakers, keyed by their RTP SSRC.
#[derive(Default)]
pub struct Mixer {
    speakers: HashMap<u32, Speaker>,
}

impl Mixer {
    /// Decodes one received Opus packet into its speaker's buffer. Duplicates and packets
    /// older than the newest one are ignored.
    pub fn push(&mut self, ssrc: u32, sequence: u16, payload: &[u8]) -> Result<(), opus::Error> {
        let speaker = match self.speakers.entry(ssrc) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(Speaker {
                decoder: Decoder::new(48_000, Channels::Mono)?,
                pcm: VecDeque::new(),
                last_sequence: None,
                playing: false,
            }),
        };
        let mut decoded = [0i16; MAX_PACKET_SAMPLES];
        if let Some(last) = speaker.last_sequence {
            let step = sequence.wrapping_sub(last);
            // Half the sequence space apart or more means older: RTP sequence numbers wrap.
            if step == 0 || step >= 0x8000 {
                return Ok(());
            }
            let missing = step - 1;
            if missing > 0 && missing <= MAX_CONCEALED_PACKETS {
                for _ in 0..missing {
                    let samples =
                        speaker
                            .decoder
                            .decode(&[], &mut decoded[..FRAME_SAMPLES], false)?;
                    speaker.pcm.extend(&decoded[..samples]);
                }
            }
        }
        speaker.last_sequence = Some(sequence);
        let samples = speaker.decoder.decode(payload, &mut decoded, false)?;
        speaker.pcm.extend(&decoded[..samples]);
        let excess = speaker.pcm.len().saturating_sub(MAX_BUFFERED_SAMPLES);
        speaker.pcm.drain(..excess);
        Ok(())
    }

    /// Takes the next 20 ms of every playing speaker and returns their sum, clipped to
    /// 16 bits. A speaker whose buffer runs dry is silent until it is primed again.
    pub fn mix(&mut self) -> [i16; FRAME_SAMPLES] {
        self.mix_frame().total()
    }

    /// Takes the next 20 ms of every playing speaker and returns their sum together with
    /// each speaker's part, so that mixes leaving out one speaker cost one subtraction.
    pub fn mix_frame(&mut self) -> MixedFrame {
        let mut frame = MixedFrame {
            sum: [0i32; FRAME_SAMPLES],
            parts: HashMap::new(),
        };
        for (ssrc, speaker) in self.speakers.iter_mut() {
            if !speaker.playing && speaker.pcm.len() >= PRIMING_SAMPLES {
                speaker.playing = true;
            }
            if !speaker.playing {
                continue;
            }
            let available = speaker.pcm.len().min(FRAME_SAMPLES);
            let mut part = [0i16; FRAME_SAMPLES];
            for ((slot, own), sample) in frame
                .sum
                .iter_mut()
                .zip(part.iter_mut())
                .zip(speaker.pcm.drain(..available))
            {
                *slot += i32::from(sample);
                *own = sample;
            }
            frame.parts.insert(*ssrc, part);
            if available < FRAME_SAMPLES {
                speaker.playing = false;
            }
        }
        frame
    }
}

/// One 20 ms frame of a mix: the unclipped sum and the part of each speaker in it.
pub struct MixedFrame {
    sum: [i32; FRAME_SAMPLES],
    parts: HashMap<u32, [i16; FRAME_SAMPLES]>,
}

impl MixedFrame {
    /// Returns the mix of every speaker, clipped to 16 bits.
    pub fn total(&self) -> [i16; FRAME_SAMPLES] {
        self.sum.map(clip)
    }

    /// Returns the mix without the speakers whose SSRCs are in `left_out`, clipped to 16 bits.
    pub fn without(&self, left_out: &[u32]) -> [i16; FRAME_SAMPLES] {
        let mut sum = self.sum;
        for part in left_out.iter().filter_map(|ssrc| self.parts.get(ssrc)) {
            for (slot, sample) in sum.iter_mut().zip(part) {
                *slot -= i32::from(*sample);
            }
        }
        sum.map(clip)
    }
}

fn clip(value: i32) -> i16 {
    value.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use opus::{Application, Encoder};

    /// Encodes 20 ms frames of a sine tone at `hz` and `amplitude`.
    fn tone_packets(hz: f32, amplitude: f32, count: usize) -> Vec<Vec<u8>> {
        let mut encoder = Encoder::new(48_000, Channels::Mono, Application::Voip).unwrap();
        let mut packets = Vec::new();
        for frame in 0..count {
            let pcm: Vec<i16> = (0..FRAME_SAMPLES)
                .map(|i| {
                    let t = (frame * FRAME_SAMPLES + i) as f32 / 48_000.0;
                    (amplitude * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
                })
                .collect();
            let mut out = [0u8; 1500];
            let len = encoder.encode(&pcm, &mut out).unwrap();
            packets.push(out[..len].to_vec());
        }
        packets
    }

    fn energy(frame: &[i16]) -> f64 {
        frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / frame.len() as f64
    }

    #[test]
    fn silent_until_primed() {
        let mut mixer = Mixer::default();
        let packets = tone_packets(440.0, 8000.0, 1);
        mixer.push(1, 10, &packets[0]).unwrap();
        assert_eq!(mixer.mix(), [0; FRAME_SAMPLES], "one packet does not prime");
    }

    #[test]
    fn two_speakers_sum() {
        let one = tone_packets(440.0, 6000.0, 20);
        let two = tone_packets(660.0, 6000.0, 20);
        let mut alone = Mixer::default();
        let mut both = Mixer::default();
        let mut alone_energy = 0.0;
        let mut both_energy = 0.0;
        for (index, (a, b)) in one.iter().zip(&two).enumerate() {
            let sequence = 100 + index as u16;
            alone.push(1, sequence, a).unwrap();
            both.push(1, sequence, a).unwrap();
            both.push(2, sequence, b).unwrap();
            alone_energy += energy(&alone.mix());
            both_energy += energy(&both.mix());
        }
        assert!(alone_energy > 0.0, "a tone is heard");
        // Two uncorrelated tones of equal level carry about twice the energy of one.
        let ratio = both_energy / alone_energy;
        assert!((1.5..2.5).contains(&ratio), "energy ratio {ratio}");
    }

    #[test]
    fn mix_without_one_speaker() {
        let one = tone_packets(440.0, 6000.0, 10);
        let two = tone_packets(660.0, 6000.0, 10);
        let mut alone = Mixer::default();
        let mut both = Mixer::default();
        for (index, (a, b)) in one.iter().zip(&two).enumerate() {
            let sequence = 100 + index as u16;
            alone.push(2, sequence, b).unwrap();
            both.push(1, sequence, a).unwrap();
            both.push(2, sequence, b).unwrap();
            let expected = alone.mix();
            let frame = both.mix_frame();
            assert_eq!(
                frame.without(&[1]),
                expected,
                "frame {index} without speaker 1"
            );
            assert_eq!(frame.without(&[]), frame.total(), "nobody left out");
            assert_eq!(
                frame.without(&[1, 2]),
                [0; FRAME_SAMPLES],
                "everyone left out"
            );
        }
    }

    #[test]
    fn duplicates_and_old_packets_ignored() {
        let packets = tone_packets(440.0, 6000.0, 3);
        let mut mixer = Mixer::default();
        mixer.push(7, 65_535, &packets[0]).unwrap();
        mixer.push(7, 0, &packets[1]).unwrap();
        let buffered = mixer.speakers[&7].pcm.len();
        assert_eq!(
            buffered,
            2 * FRAME_SAMPLES,
            "wrap-around is the next packet"
        );
        mixer.push(7, 0, &packets[1]).unwrap();
        mixer.push(7, 65_535, &packets[0]).unwrap();
        assert_eq!(
            mixer.speakers[&7].pcm.len(),
            buffered,
            "duplicate and older ignored"
        );
    }

    #[test]
    fn short_gap_concealed_long_gap_skipped() {
        let packets = tone_packets(440.0, 6000.0, 3);
        let mut mixer = Mixer::default();
        mixer.push(3, 10, &packets[0]).unwrap();
        mixer.push(3, 13, &packets[1]).unwrap();
        assert_eq!(
            mixer.speakers[&3].pcm.len(),
            4 * FRAME_SAMPLES,
            "two frames concealed"
        );
        mixer.push(3, 100, &packets[2]).unwrap();
        assert_eq!(
            mixer.speakers[&3].pcm.len(),
            5 * FRAME_SAMPLES,
            "a long gap adds nothing"
        );
    }
}
