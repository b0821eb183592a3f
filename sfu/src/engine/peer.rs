//! One participant's WebRTC connection, on the sans-IO `rtc` stack.
//!
//! The engine is the ICE-lite, DTLS-answering side of every connection. Each peer gets its
//! own random ICE credentials, so the shard can route a connectivity check to the right peer
//! by the ufrag in its USERNAME. The local candidates are the node's UDP socket and, when
//! configured, its ICE-TCP port as a passive TCP candidate (RFC 6544).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rand::distr::{Alphanumeric, SampleString};
use rtc::ice::tcp_type::TcpType;
use rtc::interceptor::{NackGeneratorBuilder, SenderReportBuilder};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::{
    Registry, Slot, configure_simulcast_extension_headers, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind, TYPE_RTCP_FB_CCM,
    TYPE_RTCP_FB_GOOG_REMB, TYPE_RTCP_FB_NACK,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::codecs;
use super::deliver_rtcp::{self, DeliverRtcp, TwccFeedbackQueue};
use crate::error::SfuError;
use crate::forward::codec::VideoCodec;
use crate::sdp::{AUDIO_LEVEL_URI, MediaSection};

/// The engine's local sockets and the addresses peers reach them at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddrs {
    /// Bound address of the UDP socket.
    pub udp: SocketAddr,
    /// Address advertised in the UDP host candidate.
    pub udp_advertised: SocketAddr,
    /// Bound and advertised address of the ICE-TCP listener, when there is one.
    pub tcp: Option<(SocketAddr, SocketAddr)>,
}

impl LocalAddrs {
    /// Addresses of a UDP socket only.
    pub fn udp(local: SocketAddr, advertised: SocketAddr) -> Self {
        Self {
            udp: local,
            udp_advertised: advertised,
            tcp: None,
        }
    }
}

/// A packet for a peer, with the transport and remote address to send it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub protocol: TransportProtocol,
    pub to: SocketAddr,
    pub payload: BytesMut,
}

/// A participant's peer connection and the addresses it is reached on.
pub struct Peer {
    pub(crate) pc: RTCPeerConnection,
    /// Local ICE username fragment, unique in the engine; it starts with the shard prefix.
    pub ufrag: String,
    /// TWCC feedback received from the participant, not yet read.
    pub(crate) twcc_feedback: TwccFeedbackQueue,
    local: LocalAddrs,
    rejected: super::RateLimitedLog,
}

impl Peer {
    /// Creates a peer with a ufrag that starts with `ufrag_prefix` and host candidates for
    /// the advertised addresses in `local`.
    pub fn new(now: Instant, local: LocalAddrs, ufrag_prefix: &str) -> Result<Self, SfuError> {
        let random_len = 16usize.saturating_sub(ufrag_prefix.len());
        let ufrag = format!(
            "{ufrag_prefix}{}",
            Alphanumeric.sample_string(&mut rand::rng(), random_len)
        );
        let password = Alphanumeric.sample_string(&mut rand::rng(), 32);

        // NOTE: an ICE restart keeps these credentials (`rtc` reuses the configured ones), so
        // the shard's route by ufrag stays valid. A browser would change its own on a restart.
        let settings = SettingEngineBuilder::new()
            .with_lite(true)
            .with_ice_credentials(ufrag.clone(), password)
            .with_include_loopback_candidate(true)
            .build();
        let mut media_engine = MediaEngine::default();
        let twcc_feedback = TwccFeedbackQueue::default();
        let registry = configure_media(&mut media_engine, twcc_feedback.clone())?;

        // No ICE servers: the engine only responds to connectivity checks on its own socket.
        let configuration = RTCConfigurationBuilder::new().build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_setting_engine(settings)
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .build(now)?;

        add_host_candidate(&mut pc, "udp", local.udp_advertised, TcpType::Unspecified)?;
        if let Some((_, advertised)) = local.tcp {
            add_host_candidate(&mut pc, "tcp", advertised, TcpType::Passive)?;
        }

        Ok(Self {
            pc,
            ufrag,
            twcc_feedback,
            local,
            rejected: super::RateLimitedLog::default(),
        })
    }

    /// Applies a remote offer and returns the answer SDP. The answer to each of the
    /// `new_video` sections keeps only the codecs in `allowed`, when it offers any of them.
    pub fn accept_offer(
        &mut self,
        now: Instant,
        sdp: String,
        new_video: &[MediaSection],
        allowed: Option<&HashSet<VideoCodec>>,
    ) -> Result<String, SfuError> {
        let offer = RTCSessionDescription::offer(crate::sdp::unify_bundle_credentials(&sdp))
            .map_err(invalid_sdp)?;
        self.pc
            .set_remote_description(now, offer)
            .map_err(invalid_sdp)?;
        if let Some(allowed) = allowed {
            codecs::restrict_publishing_codecs(&mut self.pc, new_video, allowed)?;
        }
        let answer = self.pc.create_answer(None)?;
        let answer_sdp = answer.sdp.clone();
        self.pc.set_local_description(now, answer)?;
        Ok(answer_sdp)
    }

    /// Creates an offer for the current set of senders and returns its SDP.
    pub fn create_offer(&mut self, now: Instant) -> Result<String, SfuError> {
        let offer = self.pc.create_offer(None)?;
        let sdp = offer.sdp.clone();
        self.pc.set_local_description(now, offer)?;
        Ok(sdp)
    }

    /// Applies the remote answer to an offer from [`Peer::create_offer`].
    pub fn accept_answer(&mut self, now: Instant, sdp: String) -> Result<(), SfuError> {
        let answer = RTCSessionDescription::answer(sdp).map_err(invalid_sdp)?;
        self.pc
            .set_remote_description(now, answer)
            .map_err(invalid_sdp)
    }

    /// Feeds one packet received from `from`: a UDP datagram, or one RFC 4571 frame's
    /// payload of an ICE-TCP connection.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        protocol: TransportProtocol,
        from: SocketAddr,
        packet: &[u8],
    ) {
        // rtc's ICE agent discards STUN that does not arrive on the address of one of its
        // local candidates, so packets carry the advertised address. The bound one differs
        // with `public_ip` or an unspecified bind address.
        let local_addr = match (protocol, self.local.tcp) {
            (TransportProtocol::TCP, Some((_, advertised))) => advertised,
            _ => self.local.udp_advertised,
        };
        let message = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: protocol,
            },
            message: BytesMut::from(packet),
        };
        if let Err(err) = self.pc.handle_read(message) {
            self.rejected
                .warn("datagram rejected by the WebRTC stack", err);
        }
    }

    /// Returns the next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.pc.poll_write().map(|out| Transmit {
            protocol: out.transport.transport_protocol,
            to: out.transport.peer_addr,
            payload: out.message,
        })
    }

    /// Closes the connection; pending datagrams (a DTLS close alert) remain to be sent.
    pub fn close(&mut self) {
        if let Err(err) = self.pc.close() {
            tracing::debug!(ufrag = %self.ufrag, error = %err, "close failed");
        }
    }
}

/// Adds a host candidate on `network` ("udp" or "tcp") at `address`.
fn add_host_candidate(
    pc: &mut RTCPeerConnection,
    network: &str,
    address: SocketAddr,
    tcp_type: TcpType,
) -> Result<(), SfuError> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: network.to_owned(),
            address: address.ip().to_string(),
            port: address.port(),
            component: 1,
            ..Default::default()
        },
        tcp_type,
    }
    .new_candidate_host()
    .map_err(|err| SfuError::WebRtc(err.to_string()))?;
    pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
    Ok(())
}

fn invalid_sdp(err: rtc::shared::error::Error) -> SfuError {
    SfuError::InvalidSdp(err.to_string())
}

/// Registers codecs, header extensions and interceptors.
///
/// The engine serves subscribers' NACKs from its own packet cache, because retransmissions
/// must use RTX and the rewritten sequence numbers. So only the NACK generator toward
/// publishers is installed, not the responder. For the same reason of control, the engine
/// numbers its packets for transport-wide feedback itself (`engine::media`), and `rtc`'s
/// TWCC sender is not installed. TWCC feedback from the participant goes to `twcc_feedback`.
fn configure_media(
    media_engine: &mut MediaEngine,
    twcc_feedback: TwccFeedbackQueue,
) -> Result<Registry, SfuError> {
    media_engine.register_default_codecs()?;
    for (kind, feedback, parameter) in [
        (RtpCodecKind::Video, TYPE_RTCP_FB_NACK, ""),
        (RtpCodecKind::Video, TYPE_RTCP_FB_NACK, "pli"),
        (RtpCodecKind::Video, TYPE_RTCP_FB_CCM, "fir"),
        // Subscribers report their downlink estimate in REMB messages, which choose the
        // simulcast layer they receive.
        (RtpCodecKind::Video, TYPE_RTCP_FB_GOOG_REMB, ""),
    ] {
        media_engine.register_feedback(
            RTCPFeedback {
                typ: feedback.to_owned(),
                parameter: parameter.to_owned(),
            },
            kind,
        );
    }
    media_engine.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.to_owned(),
        },
        RtpCodecKind::Audio,
        None,
    )?;
    configure_simulcast_extension_headers(media_engine)?;

    // NOTE: no receiver reports. Chromium stops sending the rid header extension once a
    // report acknowledges the SSRC, and rtc 0.21.1 drops rid-learned SSRCs whenever it
    // applies a remote description, so after any renegotiation the simulcast layers could
    // not be identified again. Without reports Chromium keeps the extension on every packet.
    // TODO: install `ReceiverReportBuilder` again once rtc keeps learned SSRCs.
    let registry = Registry::new()
        .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
        .with(Slot::SenderReport, SenderReportBuilder::new().build())
        .with(
            Slot::from(deliver_rtcp::SLOT),
            DeliverRtcp::new(twcc_feedback),
        );
    Ok(configure_twcc_receiver_only(registry, media_engine)?)
}
